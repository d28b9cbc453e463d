/*
 * scenario_06.c - chapter 06 (health): active TCP and HTTP checks mark a
 * backend DOWN after HEALTH_FALL failures and UP after HEALTH_RISE passes;
 * only up backends get clients; a failed connect is retried on the next
 * backend; with none up a client is closed at once.  Checks run every
 * 100 ms here, so every state change is a log line the scenario waits for.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define INTERVAL_MS 100 /* HEALTH_INTERVAL_MS in these scenarios */

/*
 * For an UP or DOWN line.  With the default fall of 3 and rise of 2 a
 * change takes three or four intervals; thirty leave room for a loaded
 * machine and a sanitizer.
 */
#define CHANGE_WAIT_MS (30 * INTERVAL_MS)

/*
 * How long a scenario watches for a DOWN line that must not come: five
 * intervals, after a backend killed at the same moment has already been
 * marked down.  It cannot be an event: the point is that nothing happens.
 */
#define QUIET_MS (5 * INTERVAL_MS)

/* "Closed at once": far below any check interval or connect timeout. */
#define AT_ONCE_MS 1000

/*
 * Checks every INTERVAL_MS.  Every backend here either answers at once or
 * refuses at once, so the timeout never runs out on a correct Harbor; it
 * is long so that a live echo on a loaded machine, under a sanitizer,
 * never fails a check and goes down when no scenario expects it.
 */
static const char *const fast_checks[] = {
    "HEALTH_INTERVAL_MS=100",
    "HEALTH_TIMEOUT_MS=1000",
};

/* Two HTTP echo backends, A and B, and Harbor with the fast checks plus
 * env (or NULL).  A killed echo is restarted on its port, st->port[i]. */
static void
stage_up(struct harness_stage *st, const char *const env[])
{
    const char *v[16];
    int n = 0;

    for (int i = 0; i < COUNT(fast_checks); i++)
        v[n++] = fast_checks[i];
    for (int i = 0; env != NULL && env[i] != NULL && n < COUNT(v) - 1; i++)
        v[n++] = env[i];
    v[n] = NULL;
    harness_stage_up(st, 2, "http", v);
}

/* SIGKILL an echo and reap it: its port refuses connects from now on. */
static void
kill_echo(struct harness_proc **echo)
{
    harness_kill(*echo, SIGKILL);
    ck_assert_int_eq(harness_wait_exit(*echo, HARNESS_STOP_MS, NULL), 0);
    harness_stop(*echo);
    *echo = NULL;
}

/*
 * The needle of a health change of the backend on port: fmt is
 * CONTRACT_BACKEND_DOWN or CONTRACT_BACKEND_UP, filled in with the
 * backend's address as BACKENDS names it.
 */
static void
change(char *buf, size_t len, const char *fmt, unsigned port)
{
    char addr[32];

    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    snprintf(buf, len, fmt, addr);
}

START_TEST(killed_backend_is_routed_around_then_back_up_when_restarted)
{
    static const char *const env[] = {"HEALTH_CHECK=tcp", NULL};
    struct harness_stage st;
    char needle[64], line[512];
    int before[2] = {0, 0}, after[2] = {0, 0};

    stage_up(&st, env);
    kill_echo(&st.echo[1]);
    /* At once, before any check noticed: retries must cover the gap. */
    harness_tally(&st, 40, before);
    ck_assert_int_eq(before[0], 40);
    change(needle, sizeof needle, CONTRACT_BACKEND_DOWN, st.port[1]);
    harness_assert_log(st.harbor, needle, line, sizeof line, CHANGE_WAIT_MS);
    ck_assert_msg(strstr(line, CONTRACT_DOWN_REASON) != NULL,
                  "no reason given: %s", line);

    harness_stage_echo(&st, 1, "http", st.port[1]);
    change(needle, sizeof needle, CONTRACT_BACKEND_UP, st.port[1]);
    harness_assert_log(st.harbor, needle, NULL, 0, CHANGE_WAIT_MS);
    harness_tally(&st, 6, after);
    ck_assert_msg(after[1] > 0, "B back up but served %d of 6", after[1]);
    harness_stage_down(&st);
}
END_TEST

/* POST path to the echo on port directly, not through Harbor. */
static void
admin(unsigned port, const char *path)
{
    struct harness_http_request rq = {"POST", path, NULL, 0, 1};
    struct harness_http_response rs;
    int fd = harness_connect(port);

    ck_assert_msg(fd >= 0, "connect :%u: %s", port, strerror(errno));
    ck_assert_msg(harness_http(fd, &rq, &rs) == 0, "POST %s: %s", path,
                  harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 200);
    harness_http_response_free(&rs);
    close(fd);
}

/*
 * B's port stays open throughout, so only an HTTP check can see that it
 * said 503: a TCP check would keep it up.
 */
START_TEST(http_check_follows_admin_down_and_up_while_the_port_stays_open)
{
    static const char *const env[] = {"HEALTH_CHECK=http", NULL};
    struct harness_http_response rs;
    struct harness_stage st;
    char needle[64], line[512];
    int down[2] = {0, 0}, up[2] = {0, 0};

    stage_up(&st, env);
    admin(st.port[1], "/admin/down");
    change(needle, sizeof needle, CONTRACT_BACKEND_DOWN, st.port[1]);
    harness_assert_log(st.harbor, needle, line, sizeof line, CHANGE_WAIT_MS);
    ck_assert_msg(strstr(line, CONTRACT_HTTP_503) != NULL,
                  "reason is not the 503: %s", line);
    ck_assert_msg(harness_http_get(st.port[1], "/direct", &rs) == 0 &&
                      rs.status == 200,
                  "B itself stopped serving: %s", harness_end_name(rs.end));
    harness_http_response_free(&rs);
    harness_tally(&st, 6, down);
    ck_assert_msg(down[0] == 6, "while B is down: A %d, B %d", down[0],
                  down[1]);

    admin(st.port[1], "/admin/up");
    change(needle, sizeof needle, CONTRACT_BACKEND_UP, st.port[1]);
    harness_assert_log(st.harbor, needle, NULL, 0, CHANGE_WAIT_MS);
    harness_tally(&st, 6, up);
    ck_assert_msg(up[0] > 0 && up[1] > 0, "B back up: A %d, B %d", up[0],
                  up[1]);
    harness_stage_down(&st);
}
END_TEST

START_TEST(no_backend_up_closes_a_new_client_at_once)
{
    static const char say[] = "GET /anyone HTTP/1.1\r\nHost: x\r\n\r\n";
    const char *env[] = {"HEALTH_CHECK=tcp", fast_checks[0], fast_checks[1],
                         NULL};
    struct harness_proc *harbor;
    struct harness_buf in = {0};
    enum harness_end end;
    unsigned port[2];
    int dead[2], fd;
    char backends[64], needle[64];
    long start;

    for (int i = 0; i < 2; i++) {
        dead[i] = harness_refusing_port(&port[i]);
        ck_assert_msg(dead[i] >= 0, "refusing port: %s", strerror(errno));
    }
    harness_backends(backends, sizeof backends, port, 2);
    harbor = harness_start_harbor(backends, env);
    for (int i = 0; i < 2; i++) {
        change(needle, sizeof needle, CONTRACT_BACKEND_DOWN, port[i]);
        harness_assert_log(harbor, needle, NULL, 0, CHANGE_WAIT_MS);
    }

    harness_log_mark(harbor);
    start = harness_now_ms();
    fd = harness_connect(harbor->port);
    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    end = harness_exchange(fd, say, sizeof say - 1, 0, &in, AT_ONCE_MS);
    ck_assert_msg(end == HARNESS_EOF || end == HARNESS_RESET,
                  "client with no backend up: %s after %ld ms, want closed",
                  harness_end_name(end), harness_now_ms() - start);
    ck_assert_uint_eq(in.len, 0);
    harness_assert_log(harbor, CONTRACT_NO_BACKEND_UP, NULL, 0, AT_ONCE_MS);
    ck_assert(harness_alive(harbor));
    harness_buf_free(&in);
    close(fd);
    harness_stop(harbor);
    close(dead[0]);
    close(dead[1]);
}
END_TEST

/*
 * BACKENDS=refusing,live with active checks off, so that the refusing one
 * stays in the turn and every other client meets it first.  With retries
 * each such client is moved on to the live one; with RETRIES=0 it is
 * closed without a byte.
 */
static const struct {
    const char *retries; /* RETRIES=...; NULL: the default, 2 */
    int all_served;
} retry_cases[] = {
    {NULL, 1},
    {"RETRIES=1", 1},
    {"RETRIES=0", 0},
};

START_TEST(failed_connect_is_retried_on_the_next_backend)
{
    const char *env[] = {"HEALTH_CHECK=off", retry_cases[_i].retries, NULL};
    const char *name = env[1] != NULL ? env[1] : "default RETRIES";
    struct harness_stage st;
    int dead = harness_stage_up_dead(&st, 2, env), served = 0, closed = 0;

    for (int i = 0; i < 10; i++) {
        struct harness_http_response rs;

        if (harness_http_get(st.harbor->port, "/retry", &rs) == 0) {
            ck_assert_int_eq(rs.status, 200);
            ck_assert_uint_eq(harness_served_port(&rs), st.port[1]);
            served++;
        } else {
            ck_assert_msg(rs.end == HARNESS_EOF || rs.end == HARNESS_RESET,
                          "%s: client %d: %s, want served or closed", name, i,
                          harness_end_name(rs.end));
            ck_assert_uint_eq(rs.raw.len, 0);
            closed++;
        }
        harness_http_response_free(&rs);
    }
    if (retry_cases[_i].all_served)
        ck_assert_msg(served == 10, "%s: %d of 10 clients closed", name,
                      closed);
    else
        ck_assert_msg(served > 0 && closed > 0,
                      "%s: %d served, %d closed; want some of each", name,
                      served, closed);
    ck_assert(harness_alive(st.harbor));
    harness_stage_down(&st);
    close(dead);
}
END_TEST

/* Replace the BACKENDS_FILE f with one line for each port. */
static void
write_pool(const struct harness_file *f, const unsigned ports[], int n)
{
    char text[256];
    size_t off = 0;

    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(text + off, sizeof text - off, "127.0.0.1:%u\n",
                                ports[i]);
    harness_file_replace(f, text);
}

/* One client through Harbor, served. */
static void
served(struct harness_proc *harbor)
{
    struct harness_http_response rs;

    ck_assert_msg(harness_http_get(harbor->port, "/served", &rs) == 0 &&
                      rs.status == 200,
                  "client: %s; stderr: %s", harness_end_name(rs.end),
                  harness_log_tail(harbor));
    harness_http_response_free(&rs);
}

/*
 * The pool goes from {A, C} to {A, B}; then B and C are killed at the same
 * moment.  B, added by the reload, must be checked and marked down.  C,
 * removed by it, must not: its checker stopped.  B's DOWN line shows how
 * long a check that still ran would have taken; C then gets five more
 * intervals to stay quiet.
 */
START_TEST(reload_starts_checks_for_added_backends_and_stops_removed_ones)
{
    struct harness_proc *echo[3], *harbor;
    struct harness_file f;
    unsigned port[3], pool[2];
    const char *env[] = {
        f.env,          "RELOAD_INTERVAL_MS=100", "HEALTH_CHECK=tcp",
        fast_checks[0], fast_checks[1],           NULL};
    char needle[64];

    for (int i = 0; i < 3; i++) {
        echo[i] = harness_start_echo("http", 0);
        port[i] = echo[i]->port;
    }
    pool[0] = port[0];
    pool[1] = port[2];
    harness_file_init(&f, "ch06");
    write_pool(&f, pool, 2);
    harbor = harness_start_harbor("127.0.0.1:9", env); /* the file rules */
    harness_log_mark(harbor);
    served(harbor); /* Harbor is past its start-up: see scenario_05.c */
    pool[1] = port[1];
    write_pool(&f, pool, 2);
    snprintf(needle, sizeof needle, CONTRACT_RELOAD, 2, 1, 1);
    harness_assert_log(harbor, needle, NULL, 0, CHANGE_WAIT_MS);

    kill_echo(&echo[1]);
    kill_echo(&echo[2]);
    change(needle, sizeof needle, CONTRACT_BACKEND_DOWN, port[1]);
    harness_assert_log(harbor, needle, NULL, 0, CHANGE_WAIT_MS);
    change(needle, sizeof needle, CONTRACT_BACKEND_DOWN, port[2]);
    ck_assert_msg(harness_wait_log(harbor, needle, QUIET_MS) < 0,
                  "removed backend still checked: %s",
                  harness_log_tail(harbor));
    ck_assert(harness_alive(harbor));
    harness_stop(harbor);
    harness_stop(echo[0]);
    harness_file_remove(&f);
}
END_TEST

/*
 * Harbor's own shortage of descriptors is not a backend's failure.  Its
 * budget (MAX_INFLIGHT fitted to the open files limit) counts only the
 * descriptors it opens; here it inherits INHERITED more, under a limit of
 * LOW_NOFILE, so a crowd of idle clients does take every one it has.
 * With a fall of 1, one check or dial counted as failed would mark a
 * backend DOWN.  The checks give no verdict instead; no backend goes DOWN;
 * once the crowd leaves, clients are served again within RECOVER_MS.  Not
 * at once: while the shortage lasts a client may still meet it and be
 * closed, and it lasts a while after the crowd - its last connections
 * pass through (accept() backs off 100 ms at each EMFILE), and from
 * chapter 08 on, parked threads keep their pipes until they expire.
 */
#define LOW_NOFILE 256
#define INHERITED  232 /* leaving Harbor about twenty of its own */
#define CROWD      300 /* at most, one at a time until a check meets EMFILE */
#define CROWD_MS   3000
#define RECOVER_MS HARNESS_XFER_MS

/* 1 if a GET through Harbor is served with a 200 within RECOVER_MS. */
static int
served_again(const struct harness_stage *st)
{
    long deadline = harness_now_ms() + RECOVER_MS;
    struct harness_http_response rs;
    int ok = 0;

    while (!ok && harness_now_ms() < deadline) {
        ok = harness_http_get(st->harbor->port, "/after", &rs) == 0 &&
             rs.status == 200;
        harness_http_response_free(&rs);
        if (!ok)
            poll(NULL, 0, 50); /* a client closed at once: try again soon */
    }
    return ok;
}

START_TEST(own_shortage_of_descriptors_marks_no_backend_down)
{
    const char *env[] = {fast_checks[0],           fast_checks[1],
                         "HEALTH_FALL=1",          "MAX_INFLIGHT=2",
                         "QUEUE_TIMEOUT_MS=20000", NULL};
    struct harness_stage st = {.n = 2};
    int crowd[CROWD], inherited[INHERITED], held[2], n, b;

    harness_stage_echo(&st, 0, "http", 0);
    harness_stage_echo(&st, 1, "http", 0);
    for (int i = 0; i < INHERITED; i++) /* no O_CLOEXEC: Harbor gets them */
        ck_assert_int_ge(inherited[i] = open("/dev/null", O_RDONLY), 0);
    harness_next_nofile(LOW_NOFILE);
    harness_stage_harbor(&st, env);
    for (int i = 0; i < INHERITED; i++)
        close(inherited[i]);
    /*
     * Two held clients take both slots (MAX_INFLIGHT=2) with everything a
     * bridge needs.  Then the crowd grows until a check has met the
     * shortage, so that whether it counted is known: each waits for a
     * slot, holding a descriptor and dialling nothing, so nothing fails
     * and gives one back, and the shortage stays.  One client every 10 ms,
     * for CROWD_MS at most.
     */
    for (int i = 0; i < 2; i++)
        held[i] = harness_stage_hold(&st, &b);
    for (n = 0;
         n < CROWD && harness_wait_log(st.harbor, CONTRACT_NO_VERDICT, 0) < 0;
         n++) {
        crowd[n] = harness_connect(st.harbor->port);
        ck_assert_msg(crowd[n] >= 0, "client %d: connect: %s", n,
                      strerror(errno));
        poll(NULL, 0, CROWD_MS / CROWD);
    }
    harness_assert_log(st.harbor, CONTRACT_NO_VERDICT, NULL, 0, CHANGE_WAIT_MS);
    ck_assert_msg(harness_wait_log(st.harbor, CONTRACT_DOWN_REASON, 0) < 0,
                  "a backend marked down for Harbor's own shortage: %s",
                  harness_log_tail(st.harbor));

    for (int i = 0; i < n; i++)
        close(crowd[i]);
    close(held[0]);
    close(held[1]);
    ck_assert_msg(served_again(&st), "no client served %d ms after: %s",
                  RECOVER_MS, harness_log_tail(st.harbor));
    ck_assert_msg(harness_wait_log(st.harbor, CONTRACT_DOWN_REASON, 0) < 0,
                  "a backend marked down: %s", harness_log_tail(st.harbor));
    ck_assert(harness_alive(st.harbor));
    harness_stage_down(&st);
}
END_TEST

/* Each row sets one chapter 06 variable to a value Harbor must refuse. */
static const struct {
    const char *var, *value;
} bad_health[] = {
    {"HEALTH_CHECK", "bogus"},     /* not tcp, http or off */
    {"HEALTH_CHECK", ""},          /* set, but empty */
    {"HEALTH_PATH", "nopath"},     /* not a path */
    {"HEALTH_PATH", ""},           /* not a path either */
    {"HEALTH_INTERVAL_MS", "0"},   /* a checker that never sleeps */
    {"HEALTH_INTERVAL_MS", "abc"}, /* not a number */
    {"HEALTH_TIMEOUT_MS", "x"},    /* not a number */
    {"HEALTH_RISE", "0"},          /* up without a check */
    {"HEALTH_FALL", "-1"},         /* negative */
    {"RETRIES", "17"},             /* above the cap of 16 */
    {"RETRIES", "abc"},            /* not a number */
};

START_TEST(bad_health_configuration_exits_2_with_one_stderr_line)
{
    harness_assert_config_error(bad_health[_i].var, bad_health[_i].value, NULL,
                                NULL);
}
END_TEST

void
scenarios_06(Suite *s)
{
    TCase *tc;

    tc = harness_tcase(s, "health", 6, NULL);
    tcase_add_test(tc,
                   killed_backend_is_routed_around_then_back_up_when_restarted);
    tcase_add_test(
        tc, http_check_follows_admin_down_and_up_while_the_port_stays_open);
    tcase_add_test(tc, no_backend_up_closes_a_new_client_at_once);
    tcase_add_loop_test(tc, failed_connect_is_retried_on_the_next_backend, 0,
                        COUNT(retry_cases));
    tcase_add_test(
        tc, reload_starts_checks_for_added_backends_and_stops_removed_ones);
    tcase_add_test(tc, own_shortage_of_descriptors_marks_no_backend_down);

    tc = harness_tcase(s, "health-config", 6, NULL);
    tcase_add_loop_test(tc,
                        bad_health_configuration_exits_2_with_one_stderr_line,
                        0, COUNT(bad_health));
}
