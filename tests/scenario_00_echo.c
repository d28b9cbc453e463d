/*
 * scenario_00_echo.c - the echo backend on its own, no balancer in front.
 * Every balancer scenario trusts echo's answers, so echo's contract is
 * checked first: its paths, keep-alive, HTTP/1.0, bad requests, raw TCP.
 * Tagged ch01 (echo arrived with chapter 01) and "echo".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define ECHO_LINE "echo %s %s (served by :%u)\n"

/* One request on a fresh connection and the answer expected. */
static const struct {
    const char *method, *path, *body; /* body NULL: none sent */
    int status;
    const char *want; /* the body, %u for echo's port; NULL: check want_len */
    size_t want_len;
} paths[] = {
    {"GET", "/", NULL, 200, "echo GET / (served by :%u)\n", 0},
    {"GET", "/a/b?x=1&y=2", NULL, 200,
     "echo GET /a/b?x=1&y=2 (served by :%u)\n", 0},
    {"POST", "/submit", "a body\n", 200,
     "echo POST /submit (served by :%u)\na body\n", 0},
    {"PUT", "/empty", "", 200, "echo PUT /empty (served by :%u)\n", 0},
    {"GET", "/health", NULL, 200, "ok\n", 0},
    {"GET", "/bytes/100000", NULL, 200, NULL, 100000},
    {"GET", "/bytes/0", NULL, 200, NULL, 0},
};

START_TEST(echo_answers_each_path_as_documented)
{
    struct harness_proc *echo = harness_start_echo("http", 0);
    struct harness_http_request rq = {paths[_i].method, paths[_i].path,
                                      paths[_i].body, 0, 1};
    struct harness_http_response rs;
    char want[256], served[16];
    int fd = harness_connect(echo->port);

    ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
    rq.body_len = rq.body != NULL ? strlen(rq.body) : 0;
    ck_assert_msg(harness_http(fd, &rq, &rs) == 0, "%s %s: %s", rq.method,
                  rq.path, harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, paths[_i].status);
    snprintf(served, sizeof served, ":%u", echo->port);
    ck_assert_str_eq(rs.served_by, served);
    ck_assert_str_eq(rs.content_type, "text/plain");
    ck_assert_uint_eq(rs.extra, 0);
    if (paths[_i].want != NULL) {
        snprintf(want, sizeof want, paths[_i].want, echo->port);
        ck_assert_str_eq(rs.body, want);
    } else {
        ck_assert_uint_eq(rs.body_len, paths[_i].want_len);
    }
    harness_http_response_free(&rs);
    close(fd);
    harness_stop(echo);
}
END_TEST

/* /admin/down and /admin/up flip what /health says, in this order. */
static const struct {
    const char *path;
    int status;
    const char *body; /* NULL: any */
} health_steps[] = {
    {"/health", 200, "ok\n"},   {"/admin/down", 200, NULL},
    {"/health", 503, "down\n"}, {"/health", 503, "down\n"},
    {"/admin/up", 200, NULL},   {"/health", 200, "ok\n"},
};

START_TEST(health_follows_admin_down_and_up)
{
    struct harness_proc *echo = harness_start_echo("http", 0);

    for (size_t i = 0; i < sizeof health_steps / sizeof health_steps[0]; i++) {
        struct harness_http_response rs;

        ck_assert_msg(harness_http_get(echo->port, health_steps[i].path, &rs) ==
                          0,
                      "step %zu %s: %s", i, health_steps[i].path,
                      harness_end_name(rs.end));
        ck_assert_msg(rs.status == health_steps[i].status,
                      "step %zu %s: status %d, want %d", i,
                      health_steps[i].path, rs.status, health_steps[i].status);
        if (health_steps[i].body != NULL)
            ck_assert_str_eq(rs.body, health_steps[i].body);
        harness_http_response_free(&rs);
    }
    harness_stop(echo);
}
END_TEST

START_TEST(delay_answers_after_the_delay)
{
    struct harness_proc *echo = harness_start_echo("http", 0);
    struct harness_http_response rs;
    char want[128];

    ck_assert_int_eq(harness_http_get(echo->port, "/delay/100", &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_msg(rs.elapsed_ms >= 100, "answered after %ld ms", rs.elapsed_ms);
    snprintf(want, sizeof want, ECHO_LINE, "GET", "/delay/100", echo->port);
    ck_assert_str_eq(rs.body, want);
    harness_http_response_free(&rs);
    harness_stop(echo);
}
END_TEST

START_TEST(drip_sends_n_bytes_spread_over_time)
{
    struct harness_proc *echo = harness_start_echo("http", 0);
    struct harness_http_response rs;

    ck_assert_int_eq(harness_http_get(echo->port, "/drip/3/50", &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_int_eq(rs.content_length, 3);
    ck_assert_uint_eq(rs.body_len, 3);
    /* Three bytes 50 ms apart: at least two gaps between first and last. */
    ck_assert_msg(rs.elapsed_ms >= 100, "all 3 bytes after %ld ms",
                  rs.elapsed_ms);
    harness_http_response_free(&rs);
    harness_stop(echo);
}
END_TEST

/*
 * Requests sent one after another on one connection.  The last one asks
 * for the close, so the test can wait for EOF instead of for silence.
 */
static const struct {
    const char *name;
    const char *req[3];
    const char *path[3];
} keepalive[] = {
    {"HTTP/1.1 keeps alive by default",
     {"GET /one HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /two HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
     {"/one", "/two", "/three"}},
    {"HTTP/1.0 keeps alive when asked",
     {"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "GET /c HTTP/1.0\r\n\r\n"},
     {"/a", "/b", "/c"}},
    {"HTTP/1.0 closes by default", {"GET /old HTTP/1.0\r\n\r\n"}, {"/old"}},
};

START_TEST(keep_alive_serves_requests_until_close)
{
    struct harness_proc *echo = harness_start_echo("http", 0);
    struct harness_buf rest = {0};
    enum harness_end end;
    int fd = harness_connect(echo->port);

    ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
    for (size_t i = 0; i < 3 && keepalive[_i].req[i] != NULL; i++) {
        const char *req = keepalive[_i].req[i];
        struct harness_http_response rs;
        char want[128];

        ck_assert_msg(harness_http_raw(fd, req, strlen(req), &rs) == 0,
                      "%s: request %zu: %s", keepalive[_i].name, i,
                      harness_end_name(rs.end));
        ck_assert_int_eq(rs.status, 200);
        snprintf(want, sizeof want, ECHO_LINE, "GET", keepalive[_i].path[i],
                 echo->port);
        ck_assert_str_eq(rs.body, want);
        ck_assert_uint_eq(rs.extra, 0);
        harness_http_response_free(&rs);
    }
    end = harness_read_to_end(fd, &rest, HARNESS_PROMPT_MS);
    ck_assert_msg(end == HARNESS_EOF, "%s: after the last response: %s",
                  keepalive[_i].name, harness_end_name(end));
    ck_assert_uint_eq(rest.len, 0);
    harness_buf_free(&rest);
    close(fd);
    harness_stop(echo);
}
END_TEST

static const char *const malformed[] = {
    "garbage\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\nno colon in this header\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n",
};

START_TEST(malformed_request_gets_400_and_others_are_still_served)
{
    struct harness_proc *echo = harness_start_echo("http", 0);
    struct harness_http_response rs;
    struct harness_buf rest = {0};
    enum harness_end end;
    int fd = harness_connect(echo->port);

    ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
    ck_assert_msg(
        harness_http_raw(fd, malformed[_i], strlen(malformed[_i]), &rs) == 0,
        "no response to %s: %s", malformed[_i], harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 400);
    harness_http_response_free(&rs);
    end = harness_read_to_end(fd, &rest, HARNESS_PROMPT_MS);
    ck_assert_msg(end == HARNESS_EOF, "after the 400: %s",
                  harness_end_name(end));
    harness_buf_free(&rest);
    close(fd);

    ck_assert_int_eq(harness_http_get(echo->port, "/after", &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    harness_http_response_free(&rs);
    harness_stop(echo);
}
END_TEST

START_TEST(tcp_mode_echoes_every_byte_and_half_closes)
{
    enum { N = 100 * 1024 };
    static unsigned char data[N];
    struct harness_proc *echo = harness_start_echo("tcp", 0);
    struct harness_buf in = {0};
    enum harness_end end;
    int fd = harness_connect(echo->port);

    ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
    harness_random(data, N, 0xec40);
    end = harness_exchange(fd, data, N, 1, &in, HARNESS_XFER_MS);
    ck_assert_msg(end == HARNESS_EOF, "after %zu of %d bytes: %s", in.len, N,
                  harness_end_name(end));
    ck_assert_uint_eq(in.len, N);
    ck_assert_msg(memcmp(in.data, data, N) == 0, "echoed bytes differ");
    harness_buf_free(&in);
    close(fd);
    harness_stop(echo);
}
END_TEST

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

void
scenarios_00_echo(Suite *s)
{
    TCase *tc = harness_tcase(s, "echo", 1, "echo");

    tcase_add_loop_test(tc, echo_answers_each_path_as_documented, 0,
                        COUNT(paths));
    tcase_add_test(tc, health_follows_admin_down_and_up);
    tcase_add_test(tc, delay_answers_after_the_delay);
    tcase_add_test(tc, drip_sends_n_bytes_spread_over_time);
    tcase_add_loop_test(tc, keep_alive_serves_requests_until_close, 0,
                        COUNT(keepalive));
    tcase_add_loop_test(tc,
                        malformed_request_gets_400_and_others_are_still_served,
                        0, COUNT(malformed));
    tcase_add_test(tc, tcp_mode_echoes_every_byte_and_half_closes);
}
