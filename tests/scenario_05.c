/*
 * scenario_05.c - chapter 05 (reload): the pool comes from BACKENDS_FILE,
 * which is read again when it changes (looked at every RELOAD_INTERVAL_MS)
 * and on SIGHUP.  A good file takes effect for new clients at once while
 * live connections keep their backend; a bad or empty file is rejected
 * whole and the pool stays.  Each scenario keeps its file in a mkdtemp()
 * directory of its own and waits for Harbor's reload line, never a clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define RELOAD_MS      "100" /* RELOAD_INTERVAL_MS in these scenarios */
#define RELOAD_WAIT_MS 3000  /* for a reload line: thirty intervals */
#define START_TRIES    8     /* see change_right_after_start_up_is_noticed */

/*
 * How long a scenario watches for a reload that must not happen.  Three
 * of the intervals the other scenarios use: a Harbor that polled anyway
 * would have reloaded by then.  It cannot be an event: the point is that
 * nothing happens.
 */
#define QUIET_MS 300

/*
 * BACKENDS is ignored when BACKENDS_FILE is set.  Point it at a port
 * nobody serves, so a Harbor that used it would fail every request.
 */
#define IGNORED_BACKENDS "127.0.0.1:9"

/* "127.0.0.1:<port>\n" for each port, after an optional header. */
static void
backend_lines(char *buf, size_t len, const char *header, const unsigned ports[],
              int n)
{
    size_t off = (size_t)snprintf(buf, len, "%s", header);

    for (int i = 0; i < n && off < len; i++)
        off +=
            (size_t)snprintf(buf + off, len - off, "127.0.0.1:%u\n", ports[i]);
}

/*
 * Up to three HTTP echo backends, and the BACKENDS_FILE that names some of
 * them to Harbor; Harbor is started on the file, not on the stage's ports.
 */
struct stage {
    struct harness_stage h;
    struct harness_file file;
};

static void
stage_echoes(struct stage *st, int n)
{
    memset(st, 0, sizeof *st);
    st->h.n = n;
    for (int i = 0; i < n; i++)
        harness_stage_echo(&st->h, i, "http", 0);
    harness_file_init(&st->file, "ch05");
}

/* Write the file naming the backends in which[], and start Harbor on it. */
static void
stage_harbor(struct stage *st, const char *header, const int which[], int n,
             const char *interval)
{
    char text[512], reload[48];
    const char *env[] = {st->file.env, reload, NULL};
    unsigned ports[3];

    for (int i = 0; i < n; i++)
        ports[i] = st->h.port[which[i]];
    backend_lines(text, sizeof text, header, ports, n);
    harness_file_replace(&st->file, text);
    snprintf(reload, sizeof reload, "RELOAD_INTERVAL_MS=%s", interval);
    st->h.harbor = harness_start_harbor(IGNORED_BACKENDS, env);
    harness_log_mark(st->h.harbor);
}

/* Replace the file, by writer, with one naming the backends in which[]. */
static void
stage_rewrite(struct stage *st,
              void (*writer)(const struct harness_file *, const char *),
              const int which[], int n)
{
    char text[512];
    unsigned ports[3];

    for (int i = 0; i < n; i++)
        ports[i] = st->h.port[which[i]];
    backend_lines(text, sizeof text, "", ports, n);
    writer(&st->file, text);
}

static void
stage_down(struct stage *st)
{
    harness_stage_down(&st->h);
    harness_file_remove(&st->file);
}

/* Wait for needle on Harbor's stderr (after the mark), or fail. */
static void
assert_log(struct harness_proc *harbor, const char *needle, char *line,
           size_t len)
{
    harness_assert_log(harbor, needle, line, len, RELOAD_WAIT_MS);
}

/* Wait for the CONTRACT_RELOAD line of a reload to n backends, or fail. */
static void
assert_reload(struct harness_proc *harbor, int n, int added, int removed)
{
    char needle[64];

    snprintf(needle, sizeof needle, CONTRACT_RELOAD, n, added, removed);
    assert_log(harbor, needle, NULL, 0);
}

/*
 * What a scenario checks in the reason for a rejected file: that it names
 * the bad line, or (line 0) that it says the file has no backends.
 */
static const char *
file_reason(char *buf, size_t len, int line)
{
    if (line == 0)
        return CONTRACT_NO_BACKENDS;
    snprintf(buf, len, CONTRACT_BAD_LINE, line);
    return buf;
}

/* The two ways a file gets rewritten; Harbor must notice either. */
static const struct {
    const char *name;
    void (*write)(const struct harness_file *, const char *);
} rewrites[] = {
    {"rename over", harness_file_replace},
    {"in place", harness_file_rewrite},
};

START_TEST(file_change_adds_a_backend_that_gets_new_clients)
{
    static const int a[] = {0}, ab[] = {0, 1};
    struct stage st;
    int before[2] = {0, 0}, after[2] = {0, 0};

    stage_echoes(&st, 2);
    /* Comments and blank lines are allowed from the first read on. */
    stage_harbor(&st, "# the reload scenario's pool\n\n", a, 1, RELOAD_MS);
    harness_tally(&st.h, 4, before);
    ck_assert_int_eq(before[0], 4);

    stage_rewrite(&st, rewrites[_i].write, ab, 2);
    assert_reload(st.h.harbor, 2, 1, 0);
    harness_tally(&st.h, 6, after);
    ck_assert_msg(after[0] > 0 && after[1] > 0,
                  "%s: after the reload A served %d, B %d of 6",
                  rewrites[_i].name, after[0], after[1]);
    stage_down(&st);
}
END_TEST

/*
 * A change made right after Harbor printed "listening on" must not be
 * lost.  Harbor reads the file before it listens and starts watching it
 * after; unless the watch starts from the file as it was read, a change in
 * between goes unnoticed until the next one.  The window is short, so each
 * try starts a fresh Harbor and changes the file at once: a correct Harbor
 * passes every try, a racy one fails one try in a few.  (The other
 * scenarios have a client served before they change the file - Harbor
 * serves only once it has started - so that they test their own point.)
 */
START_TEST(change_right_after_start_up_is_noticed)
{
    static const int a[] = {0}, ab[] = {0, 1};
    struct stage st;
    char want[64];

    snprintf(want, sizeof want, CONTRACT_RELOAD, 2, 1, 0);
    stage_echoes(&st, 2);
    for (int i = 0; i < START_TRIES; i++) {
        stage_harbor(&st, "", a, 1, RELOAD_MS);
        stage_rewrite(&st, harness_file_replace, ab, 2);
        ck_assert_msg(harness_wait_log(st.h.harbor, want, RELOAD_WAIT_MS) == 0,
                      "try %d: a change right after start-up was never "
                      "noticed; stderr: %s",
                      i, harness_log_tail(st.h.harbor));
        harness_stop(st.h.harbor);
        st.h.harbor = NULL;
    }
    stage_down(&st);
}
END_TEST

/*
 * The live connection is an HTTP keep-alive one: its first request, before
 * the reload, and its second, after it, must both be served by A, the
 * backend the reload removed, while new clients all go to B.
 */
START_TEST(removed_backend_keeps_its_live_connection_and_gets_no_new_ones)
{
    static const int a[] = {0}, b[] = {1};
    struct harness_http_request first = {"GET", "/first", NULL, 0, 0};
    struct harness_http_request second = {"GET", "/second", NULL, 0, 1};
    struct harness_http_response rs;
    struct stage st;
    int count[2] = {0, 0}, fd;

    stage_echoes(&st, 2);
    stage_harbor(&st, "", a, 1, RELOAD_MS);
    fd = harness_connect(st.h.harbor->port);
    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    ck_assert_msg(harness_http(fd, &first, &rs) == 0,
                  "first request on the live connection: %s",
                  harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 200);
    ck_assert_int_eq(harness_stage_backend(&st.h, &rs), 0);
    harness_http_response_free(&rs);

    stage_rewrite(&st, harness_file_replace, b, 1);
    assert_reload(st.h.harbor, 1, 1, 1);
    harness_tally(&st.h, 4, count);
    ck_assert_msg(count[1] == 4, "new clients after the reload: A %d, B %d",
                  count[0], count[1]);

    ck_assert_msg(harness_http(fd, &second, &rs) == 0,
                  "second request on the live connection: %s; stderr: %s",
                  harness_end_name(rs.end), harness_log_tail(st.h.harbor));
    ck_assert_int_eq(rs.status, 200);
    ck_assert_msg(harness_stage_backend(&st.h, &rs) == 0,
                  "the live connection moved to \"%s\"", rs.served_by);
    harness_http_response_free(&rs);
    close(fd);
    stage_down(&st);
}
END_TEST

/* RELOAD_INTERVAL_MS=0: the file is not watched; SIGHUP alone reloads. */
START_TEST(sighup_reloads_when_the_file_is_not_watched)
{
    static const int a[] = {0}, b[] = {1};
    struct stage st;
    int before[2] = {0, 0}, after[2] = {0, 0}, quiet;

    stage_echoes(&st, 2);
    stage_harbor(&st, "", a, 1, "0");
    harness_tally(&st.h, 2, before); /* served: Harbor is past its start-up */
    stage_rewrite(&st, harness_file_replace, b, 1);
    /* No line about a reload at all may come without SIGHUP. */
    quiet = harness_wait_log(st.h.harbor, CONTRACT_ANY_RELOAD, QUIET_MS) < 0;
    ck_assert_msg(quiet, "reloaded without SIGHUP: %s",
                  harness_log_tail(st.h.harbor));
    harness_tally(&st.h, 2, before);
    ck_assert_msg(before[0] == 4, "before SIGHUP: A %d, B %d", before[0],
                  before[1]);

    harness_kill(st.h.harbor, SIGHUP);
    assert_reload(st.h.harbor, 1, 1, 1);
    harness_tally(&st.h, 4, after);
    ck_assert_msg(after[1] == 4, "after SIGHUP: A %d, B %d", after[0],
                  after[1]);
    ck_assert(harness_alive(st.h.harbor));
    stage_down(&st);
}
END_TEST

/*
 * Each row replaces a good file naming A with a bad one.  %u is the port
 * of C, a live backend that must get no client, since a file with a bad
 * line is rejected whole.  line is what the error line's reason must
 * say: see file_reason().
 */
static const struct {
    const char *name, *text;
    int line;
} bad_files[] = {
    {"a bad port on line 2", "127.0.0.1:%u\n127.0.0.1:notaport\n", 2},
    {"no port on line 3 after a comment",
     "# C, then a mistake\n127.0.0.1:%u\n127.0.0.1\n", 3},
    {"an empty file", "", 0},
    {"comments and blank lines only", "# nobody\n\n   \n# here\n", 0},
};

START_TEST(bad_file_is_rejected_whole_and_the_pool_stays)
{
    static const int a[] = {0}, ac[] = {0, 2};
    struct stage st;
    int count[3] = {0, 0, 0}, later[3] = {0, 0, 0};
    char text[256], line[512], buf[32];
    const char *want = file_reason(buf, sizeof buf, bad_files[_i].line);

    stage_echoes(&st, 3);
    stage_harbor(&st, "", a, 1, RELOAD_MS);
    harness_tally(&st.h, 2, count); /* served: Harbor is past its start-up */
    snprintf(text, sizeof text, bad_files[_i].text, st.h.port[2]);
    harness_file_replace(&st.file, text);
    assert_log(st.h.harbor, CONTRACT_KEEPING, line, sizeof line);
    ck_assert_msg(strstr(line, want) != NULL &&
                      strstr(line, st.file.path) != NULL,
                  "%s: want the file and \"%s\" named in: %s",
                  bad_files[_i].name, want, line);
    harness_tally(&st.h, 6, count);
    ck_assert_msg(count[0] == 8, "%s: after the rejection A %d, B %d, C %d",
                  bad_files[_i].name, count[0], count[1], count[2]);

    /* A rejected file does not stop the next good one being read. */
    harness_log_mark(st.h.harbor);
    stage_rewrite(&st, harness_file_replace, ac, 2);
    assert_reload(st.h.harbor, 2, 1, 0);
    harness_tally(&st.h, 6, later);
    ck_assert_msg(later[0] > 0 && later[2] > 0,
                  "%s: after the good file A %d, C %d", bad_files[_i].name,
                  later[0], later[2]);
    stage_down(&st);
}
END_TEST

/*
 * Start-up refuses what a reload would reject: exit 2 before binding,
 * with one stderr line, harbor: <VAR>: <reason>: "<value>".  text is the
 * file to write (NULL: there is none); value NULL stands for its path.
 * line is what the reason must say, as in bad_files, or ANY_REASON.
 */
#define ANY_REASON (-1)

static const struct {
    const char *name, *text, *var, *value;
    int line;
} bad_startup[] = {
    {"a BACKENDS_FILE that does not exist", NULL, "BACKENDS_FILE", NULL,
     ANY_REASON},
    {"a bad line 2", "127.0.0.1:9001\n127.0.0.1:notaport\n", "BACKENDS_FILE",
     NULL, 2},
    {"a file with no backends", "# none yet\n", "BACKENDS_FILE", NULL, 0},
    {"RELOAD_INTERVAL_MS not a number", "127.0.0.1:9001\n",
     "RELOAD_INTERVAL_MS", "abc", ANY_REASON},
    {"RELOAD_INTERVAL_MS negative", "127.0.0.1:9001\n", "RELOAD_INTERVAL_MS",
     "-1", ANY_REASON},
    {"RELOAD_INTERVAL_MS empty", "127.0.0.1:9001\n", "RELOAD_INTERVAL_MS", "",
     ANY_REASON},
};

START_TEST(bad_start_up_configuration_exits_2_with_one_stderr_line)
{
    const char *var = bad_startup[_i].var, *value = bad_startup[_i].value;
    struct harness_file f;
    const char *env[] = {"BACKENDS=" IGNORED_BACKENDS,
                         "RELOAD_INTERVAL_MS=" RELOAD_MS, f.env, NULL};
    int line = bad_startup[_i].line;
    char buf[32];

    harness_file_init(&f, "ch05");
    if (bad_startup[_i].text != NULL)
        harness_file_replace(&f, bad_startup[_i].text);
    harness_assert_config_error(
        var, value != NULL ? value : f.path, env,
        line == ANY_REASON ? NULL : file_reason(buf, sizeof buf, line));
    harness_file_remove(&f);
}
END_TEST

void
scenarios_05(Suite *s)
{
    TCase *tc;

    tc = harness_tcase(s, "reload", 5, NULL);
    tcase_add_loop_test(tc, file_change_adds_a_backend_that_gets_new_clients, 0,
                        COUNT(rewrites));
    tcase_add_test(tc, change_right_after_start_up_is_noticed);
    tcase_add_test(
        tc, removed_backend_keeps_its_live_connection_and_gets_no_new_ones);
    tcase_add_test(tc, sighup_reloads_when_the_file_is_not_watched);
    tcase_add_loop_test(tc, bad_file_is_rejected_whole_and_the_pool_stays, 0,
                        COUNT(bad_files));

    tc = harness_tcase(s, "reload-config", 5, NULL);
    tcase_add_loop_test(tc,
                        bad_start_up_configuration_exits_2_with_one_stderr_line,
                        0, COUNT(bad_startup));
}
