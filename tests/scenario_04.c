/*
 * scenario_04.c - chapter 04 (shutdown): on SIGTERM or SIGINT Harbor stops
 * accepting at once, lets live connections finish for DRAIN_TIMEOUT_MS,
 * closes the rest and exits 0; a second signal skips the drain.  Each
 * scenario holds its client open through a raw TCP echo, signals Harbor,
 * and watches the listener, the client and the exit status.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/*
 * "Promptly": loose enough for a loaded machine under a sanitizer (TSan
 * alone sleeps a second at exit: its atexit_sleep_ms), yet far short of
 * the drain deadlines the scenarios set when they expect a prompt exit.
 */
#define PROMPT_EXIT_MS 3000

/* Harbor with DRAIN_TIMEOUT_MS=drain_timeout, and one MODE=tcp echo. */
static void
stage_up(struct harness_stage *st, const char *drain_timeout)
{
    char drain[48];
    const char *env[] = {drain, NULL};

    snprintf(drain, sizeof drain, "DRAIN_TIMEOUT_MS=%s", drain_timeout);
    harness_stage_up(st, 1, "tcp", env);
}

/*
 * Send msg and read its echo within HARNESS_PROMPT_MS; HARNESS_DONE when
 * it came back whole, otherwise how the reading ended.
 */
static enum harness_end
echo_round(int fd, const char *msg)
{
    size_t n = strlen(msg);
    enum harness_end end;
    char buf[64];

    if (n > sizeof buf)
        return HARNESS_ERROR; /* a test's own mistake: keep msgs short */
    if (harness_send_all(fd, msg, n) < 0)
        return errno == ECONNRESET || errno == EPIPE ? HARNESS_RESET
                                                     : HARNESS_ERROR;
    if ((end = harness_read_n(fd, buf, n, HARNESS_PROMPT_MS)) != HARNESS_DONE)
        return end;
    return memcmp(buf, msg, n) == 0 ? HARNESS_DONE : HARNESS_ERROR;
}

/* A client through Harbor to the echo, proven live by one round trip. */
static int
held_client(const struct harness_stage *st)
{
    int fd = harness_connect(st->harbor->port);
    enum harness_end end;

    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    end = echo_round(fd, "hold");
    ck_assert_msg(end == HARNESS_DONE, "held client before the signal: %s",
                  harness_end_name(end));
    return fd;
}

/* Wait for needle on Harbor's stderr, or fail showing it. */
static void
assert_log(struct harness_proc *harbor, const char *needle)
{
    harness_assert_log(harbor, needle, NULL, 0, HARNESS_PROMPT_MS);
}

/* Wait for the CONTRACT_DRAINING line of n connections, or fail. */
static void
assert_draining(struct harness_proc *harbor, int n)
{
    char needle[64];

    snprintf(needle, sizeof needle, CONTRACT_DRAINING, n);
    assert_log(harbor, needle);
}

/*
 * Harbor exits 0 within timeout_ms of the call, or the test fails with its
 * stderr.  Returns how long the exit took.
 */
static long
assert_exits_0_within(struct harness_proc *harbor, int timeout_ms)
{
    long start = harness_now_ms();
    int status = 0;
    char log[4096];

    if (harness_wait_exit(harbor, timeout_ms, &status) < 0) {
        harness_log(harbor, log, sizeof log);
        ck_abort_msg("harbor did not exit within %d ms; stderr: %s", timeout_ms,
                     log);
    }
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "wait status %#x, want exit 0", (unsigned)status);
    return harness_now_ms() - start;
}

START_TEST(sigterm_refuses_new_clients_and_drains_the_held_one)
{
    struct harness_stage st;
    char log[4096], cut[64];
    int fd, late;

    stage_up(&st, "5000");
    fd = held_client(&st);
    harness_log_mark(st.harbor);
    harness_kill(st.harbor, SIGTERM);
    assert_draining(st.harbor, 1);

    /* The listener was closed before the drain began: refused at once. */
    late = harness_connect(st.harbor->port);
    ck_assert_msg(late < 0 && errno == ECONNREFUSED,
                  "connect during the drain: %s, want refused",
                  late >= 0 ? "accepted" : strerror(errno));

    ck_assert_msg(echo_round(fd, "during the drain") == HARNESS_DONE,
                  "held client stopped working during the drain");
    ck_assert(harness_alive(st.harbor));
    close(fd);
    assert_exits_0_within(st.harbor, PROMPT_EXIT_MS);
    assert_log(st.harbor, CONTRACT_SHUTDOWN);
    harness_log(st.harbor, log, sizeof log);
    snprintf(cut, sizeof cut, CONTRACT_CLOSING, 1);
    ck_assert_msg(strstr(log, cut) == NULL,
                  "the drained connection was cut instead: %s", log);
    harness_stage_down(&st);
}
END_TEST

START_TEST(drain_deadline_closes_held_idle_client_and_exits_0)
{
    struct harness_stage st;
    struct harness_buf in = {0};
    enum harness_end end;
    long ms;
    int fd;

    stage_up(&st, "500");
    fd = held_client(&st);
    harness_log_mark(st.harbor);
    harness_kill(st.harbor, SIGTERM);
    ms = assert_exits_0_within(st.harbor, 500 + PROMPT_EXIT_MS);
    ck_assert_msg(ms >= 400,
                  "exited %ld ms after SIGTERM, before the "
                  "500 ms drain deadline",
                  ms);
    end = harness_read_to_end(fd, &in, HARNESS_PROMPT_MS);
    ck_assert_msg(end == HARNESS_EOF || end == HARNESS_RESET,
                  "held client after the exit: %s, want closed",
                  harness_end_name(end));
    ck_assert_uint_eq(in.len, 0);
    harness_buf_free(&in);
    assert_draining(st.harbor, 1);
    assert_log(st.harbor, CONTRACT_SHUTDOWN);
    close(fd);
    harness_stage_down(&st);
}
END_TEST

/* SIGTERM then SIGINT, or the other way round. */
static const int first_signal[] = {SIGTERM, SIGINT};

START_TEST(second_signal_skips_the_drain)
{
    int first = first_signal[_i], second = first == SIGTERM ? SIGINT : SIGTERM;
    struct harness_stage st;
    struct harness_buf in = {0};
    enum harness_end end;
    int fd;

    stage_up(&st, "20000");
    fd = held_client(&st);
    harness_log_mark(st.harbor);
    harness_kill(st.harbor, first);
    /* Only once the drain has begun is the next signal a second one. */
    assert_draining(st.harbor, 1);
    harness_kill(st.harbor, second);
    assert_exits_0_within(st.harbor, PROMPT_EXIT_MS);
    assert_log(st.harbor, CONTRACT_SHUTDOWN);
    end = harness_read_to_end(fd, &in, HARNESS_PROMPT_MS);
    ck_assert_msg(end == HARNESS_EOF || end == HARNESS_RESET,
                  "held client after the exit: %s, want closed",
                  harness_end_name(end));
    harness_buf_free(&in);
    close(fd);
    harness_stage_down(&st);
}
END_TEST

START_TEST(signal_with_no_connections_exits_0_promptly)
{
    struct harness_stage st;

    stage_up(&st, "10000");
    harness_log_mark(st.harbor);
    harness_kill(st.harbor, first_signal[_i]);
    assert_exits_0_within(st.harbor, PROMPT_EXIT_MS);
    assert_draining(st.harbor, 0);
    assert_log(st.harbor, CONTRACT_SHUTDOWN);
    harness_stage_down(&st);
}
END_TEST

static const char *const bad_drain[] = {"abc", "-1"};

/* How many descriptors pid has open (Linux: /proc/<pid>/fd). */
static int
fd_count(pid_t pid)
{
    char path[64];
    struct dirent *e;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Wait until pid has more than n descriptors open: a client accepted. */
static int
fd_count_above(pid_t pid, int n, int timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms;
    struct timespec step = {0, 5 * 1000 * 1000};

    while (fd_count(pid) <= n) {
        if (harness_now_ms() > deadline)
            return -1;
        nanosleep(&step, NULL);
    }
    return 0;
}

/*
 * At the drain deadline the held connection is cut, and its slot comes
 * back; a client still queued for a slot must be closed then, not handed
 * the freed slot and a backend.  The backend is the test's own listener,
 * never accepting, so any dial would wait in its queue to be seen.
 */
START_TEST(queued_client_is_closed_at_the_cut_without_a_dial)
{
    const char *env[] = {"MAX_INFLIGHT=1", "QUEUE_TIMEOUT_MS=20000",
                         "DRAIN_TIMEOUT_MS=300", "HEALTH_CHECK=off", NULL};
    struct harness_proc *harbor;
    struct pollfd pfd;
    struct harness_buf in = {0};
    char backends[32];
    unsigned port;
    int lfd = harness_busy_port(&port), held, queued, bfd, status, open;
    enum harness_end end;
    char c;

    ck_assert_msg(lfd >= 0, "backend listener: %s", strerror(errno));
    snprintf(backends, sizeof backends, "127.0.0.1:%u", port);
    harbor = harness_start_harbor(backends, env);
    held = harness_connect(harbor->port);
    ck_assert_msg(held >= 0, "connect harbor: %s", strerror(errno));
    pfd = (struct pollfd){lfd, POLLIN, 0};
    ck_assert_msg(poll(&pfd, 1, HARNESS_PROMPT_MS) == 1,
                  "the held client was never dialled through");
    ck_assert_int_ge(bfd = accept(lfd, NULL, NULL), 0);
    /* A byte each way: both pumps are running, with all they hold open. */
    ck_assert_int_eq(write(held, "u", 1), 1);
    ck_assert_int_eq(read(bfd, &c, 1), 1);
    ck_assert_int_eq(write(bfd, "d", 1), 1);
    ck_assert_int_eq(read(held, &c, 1), 1);
    open = fd_count(harbor->pid);
    queued = harness_connect(harbor->port);
    ck_assert_msg(queued >= 0, "connect harbor: %s", strerror(errno));
    /* connect() returns once the kernel has queued us; wait for accept. */
    ck_assert_msg(fd_count_above(harbor->pid, open, HARNESS_PROMPT_MS) == 0,
                  "harbor never accepted the second client");

    harness_log_mark(harbor);
    harness_kill(harbor, SIGTERM);
    assert_draining(harbor, 2);
    ck_assert_msg(harness_wait_exit(harbor, HARNESS_PROMPT_MS, &status) == 0,
                  "harbor still running %d ms after the drain deadline",
                  HARNESS_PROMPT_MS);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "wait status %#x, want exit 0", (unsigned)status);
    end = harness_read_to_end(queued, &in, HARNESS_PROMPT_MS);
    ck_assert_msg(end == HARNESS_EOF || end == HARNESS_RESET,
                  "queued client: %s, want closed", harness_end_name(end));
    pfd = (struct pollfd){lfd, POLLIN, 0};
    ck_assert_msg(poll(&pfd, 1, 0) == 0,
                  "the queued client was dialled through after the cut");
    harness_buf_free(&in);
    close(queued);
    close(held);
    close(bfd);
    close(lfd);
}
END_TEST

START_TEST(bad_drain_timeout_exits_2_with_one_stderr_line)
{
    harness_assert_config_error("DRAIN_TIMEOUT_MS", bad_drain[_i], NULL, NULL);
}
END_TEST

void
scenarios_04(Suite *s)
{
    TCase *tc;

    tc = harness_tcase(s, "shutdown", 4, NULL);
    tcase_add_test(tc, sigterm_refuses_new_clients_and_drains_the_held_one);
    tcase_add_test(tc, drain_deadline_closes_held_idle_client_and_exits_0);
    tcase_add_test(tc, queued_client_is_closed_at_the_cut_without_a_dial);
    tcase_add_loop_test(tc, second_signal_skips_the_drain, 0,
                        COUNT(first_signal));
    tcase_add_loop_test(tc, signal_with_no_connections_exits_0_promptly, 0,
                        COUNT(first_signal));

    tc = harness_tcase(s, "shutdown-config", 4, NULL);
    tcase_add_loop_test(tc, bad_drain_timeout_exits_2_with_one_stderr_line, 0,
                        COUNT(bad_drain));
}
