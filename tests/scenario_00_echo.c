/*
 * scenario_00_echo.c - the echo backend on its own, no balancer in front.
 * Every balancer scenario trusts echo's answers, so echo's contract is
 * checked first: its paths, keep-alive, HTTP/1.0, chunked bodies, /headers,
 * X-Echo-Conn, bad requests, raw TCP.
 * Tagged ch01 (echo arrived with chapter 01) and "echo".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
    /* Two framings at once: the way requests are smuggled (RFC 9112 §6.1). */
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    "zz\r\nhello\r\n0\r\n\r\n",
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

/* The value of field name in rs's head, trimmed, into out ("" if none). */
static void
field_of(const struct harness_http_response *rs, const char *name, char *out,
         size_t len)
{
    const char *p = (const char *)rs->raw.data, *end = rs->body;
    size_t nlen = strlen(name);

    out[0] = '\0';
    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *v, *e;

        if (eol == NULL)
            break;
        if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 &&
            p[nlen] == ':') {
            for (v = p + nlen + 1; *v == ' ' || *v == '\t'; v++)
                ;
            for (e = eol; e > v && (e[-1] == '\r' || e[-1] == ' '); e--)
                ;
            snprintf(out, len, "%.*s", (int)(e - v), v);
            return;
        }
        p = eol + 1;
    }
}

/*
 * Chunked request bodies, each on a fresh connection: the data of the
 * chunks is echoed as a Content-Length body would be, whatever extensions
 * and trailers come with it.
 */
static const struct {
    const char *name;
    const char *req;
    const char *body; /* what follows the echo line */
} chunked[] = {
    {"two chunks",
     "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
     "hello world"},
    {"extensions and trailers",
     "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     "3;a=1\r\nabc\r\nA ; b = \"q;\\\"x\" ; c\r\n0123456789\r\n"
     "0;end\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
     "abc0123456789"},
    {"hex digits in any case",
     "POST /c HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\n\r\n"
     "0a\r\n0123456789\r\n00000\r\n\r\n",
     "0123456789"},
    {"no data at all",
     "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0\r\n\r\n",
     ""},
};

START_TEST(a_chunked_body_is_echoed)
{
    struct harness_proc *echo = harness_start_echo("http", 0);
    struct harness_http_response rs;
    char want[256];
    int fd = harness_connect(echo->port);

    ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
    ck_assert_msg(harness_http_raw(fd, chunked[_i].req, strlen(chunked[_i].req),
                                   &rs) == 0,
                  "%s: %s", chunked[_i].name, harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 200);
    snprintf(want, sizeof want, ECHO_LINE "%s", "POST", "/c", echo->port,
             chunked[_i].body);
    ck_assert_msg(strcmp(rs.body, want) == 0, "%s: body \"%s\", want \"%s\"",
                  chunked[_i].name, rs.body, want);
    ck_assert_uint_eq(rs.extra, 0);
    harness_http_response_free(&rs);
    close(fd);
    harness_stop(echo);
}
END_TEST

/*
 * A body in pieces cut at every awkward place: in a size, in an extension,
 * between CR and LF, in the data, in a trailer.  Asking for 100-continue
 * makes echo say it has the head and waits for the body, so the pieces
 * surely come after the head; then a pipelined request follows the last
 * piece, and must be answered on the same connection.
 */
static const char *const pieces[] = {
    "1",
    "4;x=y\r",
    "\nabcdefghij",
    "klmnopqrst\r",
    "\n",
    "3\r\nuvw",
    "\r\n0\r\nX-T: v",
    "\r\n\r\nGET /next HTTP/1.1\r\n"
    "Host: x\r\nConnection: close\r\n\r\n",
};

START_TEST(a_chunked_body_split_across_writes_is_echoed)
{
    static const char head[] = "POST /split HTTP/1.1\r\nHost: x\r\n"
                               "Transfer-Encoding: chunked\r\n"
                               "Expect: 100-continue\r\n\r\n";
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct harness_proc *echo = harness_start_echo("http", 0);
    struct harness_http_response rs;
    enum harness_end end;
    struct harness_buf rest = {0};
    char got[sizeof cont], want[128], tail[512];
    size_t n = sizeof pieces / sizeof pieces[0];
    int fd = harness_connect(echo->port);

    ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
    ck_assert(harness_send_all(fd, head, sizeof head - 1) == 0);
    end = harness_read_n(fd, got, sizeof cont - 1, HARNESS_XFER_MS);
    ck_assert_msg(end == HARNESS_DONE, "waiting for the 100: %s",
                  harness_end_name(end));
    ck_assert(memcmp(got, cont, sizeof cont - 1) == 0);
    for (size_t i = 0; i + 1 < n; i++)
        ck_assert(harness_send_all(fd, pieces[i], strlen(pieces[i])) == 0);
    ck_assert_msg(
        harness_http_raw(fd, pieces[n - 1], strlen(pieces[n - 1]), &rs) == 0,
        "after the last piece: %s", harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 200);
    snprintf(want, sizeof want, ECHO_LINE "%s", "POST", "/split", echo->port,
             "abcdefghijklmnopqrstuvw");
    ck_assert_int_eq(rs.content_length, (long)strlen(want));
    ck_assert_msg(strncmp(rs.body, want, strlen(want)) == 0, "body \"%.*s\"",
                  (int)rs.body_len, rs.body);
    /* The pipelined GET came in one write with the body's end; its
     * answer follows, then the close it asked for. */
    end = harness_read_to_end(fd, &rest, HARNESS_PROMPT_MS);
    ck_assert_msg(end == HARNESS_EOF, "after the pipelined GET: %s",
                  harness_end_name(end));
    snprintf(tail, sizeof tail, "%.*s%s", (int)rs.extra, rs.body + rs.body_len,
             rest.len > 0 ? (const char *)rest.data : "");
    snprintf(want, sizeof want, ECHO_LINE, "GET", "/next", echo->port);
    ck_assert_msg(strstr(tail, want) != NULL,
                  "no answer to the pipelined GET: \"%s\"", tail);
    harness_buf_free(&rest);
    harness_http_response_free(&rs);
    close(fd);
    harness_stop(echo);
}
END_TEST

/*
 * Hundreds of chunks of every size from 1 byte up, far more than one read
 * of echo's takes, so its reads end anywhere in the framing.
 */
START_TEST(a_large_chunked_body_spans_many_reads)
{
    enum { CHUNKS = 700 };
    static const char head[] = "POST /large HTTP/1.1\r\nHost: x\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    struct harness_proc *echo = harness_start_echo("http", 0);
    struct harness_http_response rs;
    struct harness_buf data = {0};
    char *req, *p, line[128];
    size_t total = CHUNKS * (CHUNKS + 1) / 2, off;
    int fd = harness_connect(echo->port);

    ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
    /* The head, each chunk with its size line and CRLF, the last chunk. */
    req = malloc(sizeof head + total + CHUNKS * 16 + 8);
    ck_assert(req != NULL);
    data.data = malloc(total + 1);
    ck_assert(data.data != NULL);
    harness_random(data.data, total, 0xc4c4);
    p = req + sprintf(req, "%s", head);
    for (size_t k = 1, at = 0; k <= CHUNKS; at += k, k++) {
        p += sprintf(p, "%zx\r\n", k);
        memcpy(p, data.data + at, k);
        p += k;
        p += sprintf(p, "\r\n");
    }
    p += sprintf(p, "0\r\n\r\n");
    ck_assert_msg(harness_http_raw(fd, req, (size_t)(p - req), &rs) == 0, "%s",
                  harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 200);
    off = (size_t)snprintf(line, sizeof line, ECHO_LINE, "POST", "/large",
                           echo->port);
    ck_assert_uint_eq(rs.body_len, off + total);
    ck_assert(memcmp(rs.body, line, off) == 0);
    ck_assert_msg(memcmp(rs.body + off, data.data, total) == 0,
                  "echoed data differs");
    harness_http_response_free(&rs);
    harness_buf_free(&data);
    free(req);
    close(fd);
    harness_stop(echo);
}
END_TEST

/* /headers: the field lines as they came, in order, "Name: value\n" each. */
START_TEST(headers_answers_the_field_lines_in_order)
{
    static const char req[] =
        "GET /headers?q=1 HTTP/1.1\r\nHost: x\r\nX-B: 2\r\n"
        "x-a:   spaced out \t\r\nX-B: again\r\nAccept: */*\r\n"
        "Connection: close\r\n\r\n";
    static const char want[] = "Host: x\nX-B: 2\nx-a: spaced out\n"
                               "X-B: again\nAccept: */*\nConnection: close\n";
    struct harness_proc *echo = harness_start_echo("http", 0);
    struct harness_http_response rs;
    int fd = harness_connect(echo->port);

    ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
    ck_assert_msg(harness_http_raw(fd, req, sizeof req - 1, &rs) == 0, "%s",
                  harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 200);
    ck_assert_str_eq(rs.content_type, "text/plain");
    ck_assert_str_eq(rs.body, want);
    ck_assert_uint_eq(rs.extra, 0);
    harness_http_response_free(&rs);
    close(fd);
    harness_stop(echo);
}
END_TEST

/*
 * X-Echo-Conn numbers echo's connections from 1: the same on every
 * response of one keep-alive connection, the next number on the next one.
 */
START_TEST(x_echo_conn_numbers_the_connections)
{
    static const char *const want[] = {"1", "1", "1", "2", "2"};
    struct harness_proc *echo = harness_start_echo("http", 0);
    int fd = -1;

    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        /* Requests 0-2 on the first connection, 3-4 on the second. */
        int last = i == 2 || i == 4;
        struct harness_http_request rq = {"GET", "/conn", NULL, 0, last};
        struct harness_http_response rs;
        char got[32];

        if (fd < 0)
            fd = harness_connect(echo->port);
        ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
        ck_assert_msg(harness_http(fd, &rq, &rs) == 0, "request %zu: %s", i,
                      harness_end_name(rs.end));
        ck_assert_int_eq(rs.status, 200);
        field_of(&rs, "X-Echo-Conn", got, sizeof got);
        ck_assert_msg(strcmp(got, want[i]) == 0,
                      "request %zu: X-Echo-Conn \"%s\", want \"%s\"", i, got,
                      want[i]);
        harness_http_response_free(&rs);
        if (last) {
            harness_finish(fd);
            fd = -1;
        }
    }
    harness_stop(echo);
}
END_TEST

/* A coding echo cannot undo is not guessed at: 501, then the close. */
START_TEST(an_unknown_transfer_coding_gets_501_and_a_close)
{
    static const char req[] = "POST / HTTP/1.1\r\nHost: x\r\n"
                              "Transfer-Encoding: gzip\r\n\r\nxxxx";
    struct harness_proc *echo = harness_start_echo("http", 0);
    struct harness_http_response rs;
    struct harness_buf rest = {0};
    enum harness_end end;
    char got[32];
    int fd = harness_connect(echo->port);

    ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
    ck_assert_msg(harness_http_raw(fd, req, sizeof req - 1, &rs) == 0,
                  "no response: %s", harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 501);
    ck_assert_str_eq(rs.connection, "close");
    field_of(&rs, "X-Echo-Conn", got, sizeof got);
    ck_assert_str_eq(got, "1");
    harness_http_response_free(&rs);
    end = harness_read_to_end(fd, &rest, HARNESS_PROMPT_MS);
    ck_assert_msg(end == HARNESS_EOF, "after the 501: %s",
                  harness_end_name(end));
    harness_buf_free(&rest);
    close(fd);
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
    tcase_add_loop_test(tc, a_chunked_body_is_echoed, 0, COUNT(chunked));
    tcase_add_test(tc, a_chunked_body_split_across_writes_is_echoed);
    tcase_add_test(tc, a_large_chunked_body_spans_many_reads);
    tcase_add_test(tc, headers_answers_the_field_lines_in_order);
    tcase_add_test(tc, x_echo_conn_numbers_the_connections);
    tcase_add_test(tc, an_unknown_transfer_coding_gets_501_and_a_close);
    tcase_add_test(tc, tcp_mode_echoes_every_byte_and_half_closes);
}
