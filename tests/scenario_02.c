/*
 * scenario_02.c - chapter 02 (deadlines): a backend that never answers the
 * handshake, a connection where nothing moves, a peer that stopped reading
 * are each cut within their window - while a slow transfer that moves
 * bytes one way only is left alone.  Windows are set to a few hundred ms
 * and checked from both sides: not before the deadline, and long before
 * the minutes a balancer without deadlines would wait.
 */
#define _GNU_SOURCE /* accept4 */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/*
 * The deadline every timing scenario sets, and the bounds it is checked
 * against: never before WINDOW_MIN_MS (the deadline, less clock slack),
 * and before WINDOW_MAX_MS, which is loose enough for a loaded machine
 * under a sanitizer yet far short of the kernel's own minutes.
 */
#define DEADLINE      "300" /* ms, as the environment spells it */
#define DEADLINE_MS   300
#define WINDOW_MIN_MS 250
#define WINDOW_MAX_MS 2500

static const char *const idle_env[] = {"IDLE_TIMEOUT_MS=" DEADLINE, NULL};

/*
 * For a backend that is a socket of the test's own, which accepts exactly
 * the connections it expects: from chapter 06 on, health checks would be
 * connections too.  Earlier chapters ignore the variable.
 */
static const char *const own_backend_env[] = {"IDLE_TIMEOUT_MS=" DEADLINE,
                                              "HEALTH_CHECK=off", NULL};

/* Read from fd until it is closed; check that came within the window. */
static void
assert_closed_in_window(int fd, long start, const char *what)
{
    struct harness_buf in = {0};
    enum harness_end end = harness_read_to_end(fd, &in, WINDOW_MAX_MS);
    long ms = harness_now_ms() - start;

    ck_assert_msg(end == HARNESS_EOF || end == HARNESS_RESET,
                  "%s: %s after %ld ms, want closed within %d ms", what,
                  harness_end_name(end), ms, WINDOW_MAX_MS);
    ck_assert_msg(ms >= WINDOW_MIN_MS,
                  "%s: closed after %ld ms, before the %d ms deadline", what,
                  ms, DEADLINE_MS);
    ck_assert_msg(in.len == 0, "%s: %zu unexpected bytes", what, in.len);
    harness_buf_free(&in);
}

START_TEST(idle_connection_is_closed_within_window)
{
    struct harness_proc *echo = harness_start_echo("tcp", 0), *harbor;
    char backends[32], needle[64];
    long start;
    int fd;

    snprintf(backends, sizeof backends, "127.0.0.1:%u", echo->port);
    harbor = harness_start_harbor(backends, idle_env);
    fd = harness_connect(harbor->port);
    start = harness_now_ms();
    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    assert_closed_in_window(fd, start, "client that says nothing");
    snprintf(needle, sizeof needle, CONTRACT_NO_PROGRESS, DEADLINE_MS);
    ck_assert_msg(harness_wait_log(harbor, needle, HARNESS_PROMPT_MS) == 0,
                  "no \"%s\" log line", needle);
    close(fd);
    harness_stop(harbor);
    harness_stop(echo);
}
END_TEST

/*
 * /drip/20/100 takes 2 s, longer than the 1500 ms idle window, and the
 * client says nothing after its request: a balancer that timed each
 * direction on its own would cut the quiet upload side and the download
 * with it.  The window is 15 drips wide, so that drips delayed by a loaded
 * machine (gaps of most of a second have been seen) never look like
 * silence.
 */
START_TEST(slow_one_way_download_outlives_idle_timeout)
{
    static const char *const env[] = {"IDLE_TIMEOUT_MS=1500", NULL};
    struct harness_proc *echo = harness_start_echo("http", 0), *harbor;
    struct harness_http_response rs;
    char backends[32], log[4096];

    snprintf(backends, sizeof backends, "127.0.0.1:%u", echo->port);
    harbor = harness_start_harbor(backends, env);
    if (harness_http_get(harbor->port, "/drip/20/100", &rs) < 0) {
        harness_log(harbor, log, sizeof log);
        ck_abort_msg("GET /drip/20/100: %s after %ld ms with %zu bytes; "
                     "stderr: %s",
                     harness_end_name(rs.end), rs.elapsed_ms, rs.raw.len, log);
    }
    ck_assert_int_eq(rs.status, 200);
    ck_assert_int_eq(rs.content_length, 20);
    ck_assert_uint_eq(rs.body_len, 20);
    ck_assert_str_eq(rs.body, "abcdefghijklmnopqrst");
    ck_assert_msg(rs.elapsed_ms > 1500, "20 drips in %ld ms: not slow",
                  rs.elapsed_ms);
    harness_http_response_free(&rs);
    harness_stop(harbor);
    harness_stop(echo);
}
END_TEST

/*
 * The client sends a few bytes and half-closes; the backend (a socket of
 * the test's own) reads them and the forwarded EOF, then neither writes
 * nor closes.  One direction is over, the other is silent: that is idle.
 */
START_TEST(half_closed_connection_is_still_closed_when_idle)
{
    unsigned port;
    int lfd = harness_busy_port(&port), fd, bfd;
    struct harness_proc *harbor;
    struct harness_buf in = {0};
    enum harness_end end;
    char backends[32];
    long start;

    ck_assert_msg(lfd >= 0, "backend listener: %s", strerror(errno));
    snprintf(backends, sizeof backends, "127.0.0.1:%u", port);
    harbor = harness_start_harbor(backends, own_backend_env);
    fd = harness_connect(harbor->port);
    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    start = harness_now_ms();
    ck_assert_int_eq(harness_send_all(fd, "hello", 5), 0);
    ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);

    bfd = harness_accept(lfd, HARNESS_PROMPT_MS);
    ck_assert_msg(bfd >= 0, "harbor never dialled the backend");
    end = harness_read_to_end(bfd, &in, HARNESS_PROMPT_MS);
    ck_assert_msg(end == HARNESS_EOF, "backend: %s after %zu bytes, want EOF",
                  harness_end_name(end), in.len);
    ck_assert_msg(in.len == 5 && memcmp(in.data, "hello", 5) == 0,
                  "backend got %zu bytes, want \"hello\"", in.len);
    harness_buf_free(&in);

    assert_closed_in_window(fd, start, "half-closed client");
    close(bfd);
    close(fd);
    close(lfd);
    harness_stop(harbor);
}
END_TEST

/*
 * The client asks for 64 MiB and never reads.  Every buffer on the way
 * fills within milliseconds; then Harbor's write to the client makes no
 * progress, and after the idle window it must give up on the connection.
 */
START_TEST(client_that_stops_reading_is_cut_after_write_stall)
{
    enum { N = 64 << 20 };
    static const char req[] = "GET /bytes/67108864 HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n";
    struct harness_proc *echo = harness_start_echo("http", 0), *harbor;
    struct harness_buf in = {0};
    enum harness_end end;
    char backends[32], log[4096], needle[64];
    int fd;

    snprintf(backends, sizeof backends, "127.0.0.1:%u", echo->port);
    harbor = harness_start_harbor(backends, idle_env);
    fd = harness_connect(harbor->port);
    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    ck_assert_int_eq(harness_send_all(fd, req, sizeof req - 1), 0);
    /* The second round half-closes first: with the client's side done,
     * no read tick on it can notice the stall; only SO_SNDTIMEO can. */
    if (_i == 1)
        ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
    snprintf(needle, sizeof needle, CONTRACT_NO_PROGRESS, DEADLINE_MS);
    if (harness_wait_log(harbor, needle, 5000) < 0) {
        harness_log(harbor, log, sizeof log);
        ck_abort_msg("stalled write not cut within 5 s; stderr: %s", log);
    }
    /* Now read: what was buffered, then the close - never all 64 MiB. */
    end = harness_read_to_end(fd, &in, HARNESS_XFER_MS);
    ck_assert_msg(end == HARNESS_EOF || end == HARNESS_RESET,
                  "after %zu bytes: %s, want closed", in.len,
                  harness_end_name(end));
    ck_assert_msg(in.len < N, "got all %zu bytes: the write was not cut",
                  in.len);
    harness_buf_free(&in);
    close(fd);
    harness_stop(harbor);
    harness_stop(echo);
}
END_TEST

/*
 * A backend that never completes the handshake.  On Linux, a listener
 * whose accept queue is full silently drops new SYNs rather than refusing
 * them (net.ipv4.tcp_abort_on_overflow=0, the default), and the client
 * resends its SYN for minutes.  So: listen with backlog 0, never accept,
 * and connect to it until the queue is full - with a backlog of 0, one
 * connection fills it.  From then on every connect, Harbor's too, hangs.
 */
static int
accept_queue_full(int lfd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;

    /* On a listener, tcpi_unacked is the accept queue's length and
     * tcpi_sacked its limit; the kernel drops SYNs once it is over. */
    if (getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return 0;
    return ti.tcpi_unacked > ti.tcpi_sacked;
}

static int
stalled_backend(unsigned *port, int fill[], int nfill)
{
    struct sockaddr_in sin = {0};
    socklen_t len = sizeof sin;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_msg(lfd >= 0, "socket: %s", strerror(errno));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(bind(lfd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
                      getsockname(lfd, (struct sockaddr *)&sin, &len) == 0 &&
                      listen(lfd, 0) == 0,
                  "stalled listener: %s", strerror(errno));
    *port = ntohs(sin.sin_port);
    for (int i = 0; i < nfill; i++) {
        long deadline = harness_now_ms() + HARNESS_PROMPT_MS;
        struct pollfd pfd;

        fill[i] =
            socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        ck_assert_msg(fill[i] >= 0, "socket: %s", strerror(errno));
        if (connect(fill[i], (struct sockaddr *)&sin, sizeof sin) < 0)
            ck_assert_msg(errno == EINPROGRESS, "fill connect %d: %s", i,
                          strerror(errno));
        /* Until this connect is queued, or its SYN was dropped. */
        pfd = (struct pollfd){fill[i], POLLOUT, 0};
        while (!accept_queue_full(lfd) && poll(&pfd, 1, 10) == 0 &&
               harness_now_ms() < deadline)
            ;
        if (accept_queue_full(lfd))
            return lfd;
    }
    ck_abort_msg("%d connects did not fill a backlog-0 accept queue", nfill);
    return -1;
}

START_TEST(backend_that_never_answers_is_given_up_on_in_time)
{
    enum { NFILL = 4 };
    static const char *const env[] = {"CONNECT_TIMEOUT_MS=" DEADLINE, NULL};
    int fill[NFILL], lfd, fd;
    unsigned port;
    struct harness_proc *harbor;
    char backends[32], want[96], log[4096];
    long start;

    for (int i = 0; i < NFILL; i++)
        fill[i] = -1;
    lfd = stalled_backend(&port, fill, NFILL);
    snprintf(backends, sizeof backends, "127.0.0.1:%u", port);
    harbor = harness_start_harbor(backends, env);
    fd = harness_connect(harbor->port);
    start = harness_now_ms();
    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    assert_closed_in_window(fd, start, "client of a silent backend");

    snprintf(want, sizeof want, CONTRACT_NO_ANSWER, backends, DEADLINE_MS);
    if (harness_wait_log(harbor, want, HARNESS_PROMPT_MS) < 0) {
        harness_log(harbor, log, sizeof log);
        ck_abort_msg("no log line \"%s\"; stderr: %s", want, log);
    }
    close(fd);
    harness_stop(harbor);
    for (int i = 0; i < NFILL; i++)
        if (fill[i] >= 0)
            close(fill[i]);
    close(lfd);
}
END_TEST

/* Each row: one deadline variable set to a value Harbor must refuse. */
static const struct {
    const char *var, *value;
} bad_deadline[] = {
    {"CONNECT_TIMEOUT_MS", "abc"},
    {"CONNECT_TIMEOUT_MS", "-1"},
    {"CONNECT_TIMEOUT_MS", ""},
    {"CONNECT_TIMEOUT_MS", "99999999999999999999"},
    {"IDLE_TIMEOUT_MS", "abc"},
    {"IDLE_TIMEOUT_MS", "-1"},
    {"IDLE_TIMEOUT_MS", ""},
    {"IDLE_TIMEOUT_MS", "99999999999999999999"},
};

START_TEST(bad_deadline_exits_2_with_one_stderr_line)
{
    harness_assert_config_error(bad_deadline[_i].var, bad_deadline[_i].value,
                                NULL, NULL);
}
END_TEST

void
scenarios_02(Suite *s)
{
    TCase *tc;

    tc = harness_tcase(s, "deadlines", 2, NULL);
    tcase_add_test(tc, idle_connection_is_closed_within_window);
    tcase_add_test(tc, slow_one_way_download_outlives_idle_timeout);
    tcase_add_test(tc, half_closed_connection_is_still_closed_when_idle);
    tcase_add_loop_test(tc, client_that_stops_reading_is_cut_after_write_stall,
                        0, 2);
    tcase_add_test(tc, backend_that_never_answers_is_given_up_on_in_time);

    tc = harness_tcase(s, "deadlines-config", 2, NULL);
    tcase_add_loop_test(tc, bad_deadline_exits_2_with_one_stderr_line, 0,
                        COUNT(bad_deadline));
}
