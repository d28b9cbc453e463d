/*
 * scenario_00_echo.c - the echo backend on its own, no balancer in front.
 * Every balancer scenario trusts echo's answers, so echo's contract is
 * checked first: its paths, keep-alive, HTTP/1.0, chunked bodies, /headers,
 * X-Echo-Conn, bad requests, raw TCP, and MODE=model's latencies (case
 * echo-model).  Tagged ch01 (echo arrived with chapter 01) and "echo".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
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
    /* Only MODE=model knows /admin/slow/; elsewhere it is a path to echo. */
    {"GET", "/admin/slow/5", NULL, 200,
     "echo GET /admin/slow/5 (served by :%u)\n", 0},
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

/*
 * MODE=model: echo as a fake inference server.  Each test names every
 * MODEL_* setting it depends on, most often MODEL_JITTER_PCT=0, so that
 * X-Model-Ms is exact; times are checked from below only, with seconds to
 * spare above.
 */

/* echo with env ("K=V", NULL-terminated; PORT=0 unless it says), started. */
static struct harness_proc *
start_echo_env(const char *const env[])
{
    const char *all[16] = {"PORT=0"};
    struct harness_proc *p;
    char line[256];
    size_t n = 1;

    for (; env != NULL && *env != NULL && n < 15; env++)
        all[n++] = *env;
    all[n] = NULL;
    p = harness_spawn("echo", getenv("ECHO_BIN"), all);
    ck_assert_msg(p != NULL, "spawn echo: %s", strerror(errno));
    line[0] = '\0';
    if (harness_read_line(p, line, sizeof line, HARNESS_START_MS) < 0 ||
        strncmp(line, "echo listening on :", 19) != 0 ||
        (p->port = harness_port_of(line)) == 0)
        ck_abort_msg("echo did not start: \"%s\"; stderr: %s", line,
                     harness_log_tail(p));
    return p;
}

/*
 * One request on a fresh connection, with Connection: close: a POST of
 * body, or a GET when body is NULL, with field as one more field line
 * unless it is NULL.  Fails the test unless a whole response came back.
 */
static void
model_ask(unsigned port, const char *path, const char *field, const char *body,
          struct harness_http_response *rs)
{
    char req[1024];
    size_t n;
    int fd = harness_connect(port);

    ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
    n = (size_t)snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n",
                         body != NULL ? "POST" : "GET", path);
    if (field != NULL)
        n += (size_t)snprintf(req + n, sizeof req - n, "%s\r\n", field);
    if (body != NULL)
        n += (size_t)snprintf(req + n, sizeof req - n,
                              "Content-Length: %zu\r\n", strlen(body));
    n +=
        (size_t)snprintf(req + n, sizeof req - n, "Connection: close\r\n\r\n%s",
                         body != NULL ? body : "");
    ck_assert_msg(harness_http_raw(fd, req, n, rs) == 0, "%s %s: %s",
                  body != NULL ? "POST" : "GET", path,
                  harness_end_name(rs->end));
    close(fd);
}

/* A numeric field of rs's head, or -1 when it is absent. */
static long
field_number(const struct harness_http_response *rs, const char *name)
{
    char v[32];

    field_of(rs, name, v, sizeof v);
    return v[0] != '\0' ? strtol(v, NULL, 10) : -1;
}

/* X-Tokens: X-Token-Estimate when there is one, else (body bytes + 3) / 4. */
static const struct {
    const char *field; /* NULL: none */
    const char *body;  /* NULL: a GET */
    long tokens;
} tokens[] = {
    {"X-Token-Estimate: 42", NULL, 42},
    {"x-token-estimate:  7 ", "a body of 25 bytes, more.", 7},
    {"X-Token-Estimate: 0", NULL, 0},
    {"X-Token-Estimate: 1000000", NULL, 1000000},
    {NULL, NULL, 1},
    {NULL, "", 1},
    {NULL, "abcd", 1},
    {NULL, "abcde", 2},
    {NULL, "0123456789012345678901234567890123456789", 10},
};

START_TEST(model_counts_tokens_from_the_estimate_or_the_body)
{
    static const char *const env[] = {"MODE=model", "MODEL_BASE_MS=0",
                                      "MODEL_TOKEN_US=0", "MODEL_JITTER_PCT=0",
                                      NULL};
    struct harness_proc *echo = start_echo_env(env);
    struct harness_http_response rs;
    char want[128], served[16];

    model_ask(echo->port, "/v1/generate", tokens[_i].field, tokens[_i].body,
              &rs);
    ck_assert_int_eq(rs.status, 200);
    snprintf(served, sizeof served, ":%u", echo->port);
    ck_assert_str_eq(rs.served_by, served);
    ck_assert_int_eq(field_number(&rs, "X-Echo-Conn"), 1);
    ck_assert_int_eq(field_number(&rs, "X-Tokens"), tokens[_i].tokens);
    ck_assert_int_eq(field_number(&rs, "X-Model-Ms"), 0);
    snprintf(want, sizeof want, "model :%u tokens %ld ms 0\n", echo->port,
             tokens[_i].tokens);
    ck_assert_str_eq(rs.body, want);
    ck_assert_uint_eq(rs.extra, 0);
    harness_http_response_free(&rs);
    harness_stop(echo);
}
END_TEST

/* X-Model-Ms from lo to hi, and the answer no sooner than 95% of it. */
static const struct {
    const char *name;
    const char *env[5];
    const char *field; /* NULL: none */
    long lo, hi;
} latency[] = {
    {"the base",
     {"MODEL_BASE_MS=100", "MODEL_JITTER_PCT=0", NULL},
     NULL,
     100,
     100},
    {"1 token at 1 ms",
     {"MODEL_BASE_MS=10", "MODEL_TOKEN_US=1000", "MODEL_JITTER_PCT=0", NULL},
     "X-Token-Estimate: 1",
     11,
     11},
    {"200 tokens at 1 ms",
     {"MODEL_BASE_MS=10", "MODEL_TOKEN_US=1000", "MODEL_JITTER_PCT=0", NULL},
     "X-Token-Estimate: 200",
     210,
     210},
    {"the defaults: 20 ms and 100 us a token, +-10%", {NULL}, NULL, 18, 22},
};

START_TEST(model_sleeps_for_its_latency)
{
    const char *env[8] = {"MODE=model"};
    struct harness_proc *echo;
    struct harness_http_response rs;
    long ms;

    for (size_t i = 0; latency[_i].env[i] != NULL; i++)
        env[i + 1] = latency[_i].env[i];
    echo = start_echo_env(env);
    model_ask(echo->port, "/v1/generate", latency[_i].field, NULL, &rs);
    ck_assert_int_eq(rs.status, 200);
    ms = field_number(&rs, "X-Model-Ms");
    ck_assert_msg(ms >= latency[_i].lo && ms <= latency[_i].hi,
                  "%s: X-Model-Ms %ld, want %ld to %ld", latency[_i].name, ms,
                  latency[_i].lo, latency[_i].hi);
    ck_assert_msg(rs.elapsed_ms >= ms * 95 / 100 &&
                      rs.elapsed_ms < ms + HARNESS_PROMPT_MS,
                  "%s: %ld ms for X-Model-Ms %ld", latency[_i].name,
                  rs.elapsed_ms, ms);
    harness_http_response_free(&rs);
    harness_stop(echo);
}
END_TEST

/* /admin/slow/<factor> multiplies every latency after it, until /1. */
static const struct {
    const char *path;
    const char *body; /* the answer; NULL: a model request */
    long ms;          /* its X-Model-Ms; unused with a body */
} slow_steps[] = {
    {"/gen", NULL, 40},
    {"/admin/slow/5", "slow 5\n", 0},
    {"/gen", NULL, 200},
    {"/gen?again", NULL, 200},
    {"/admin/slow/1", "slow 1\n", 0},
    {"/gen", NULL, 40},
};

START_TEST(admin_slow_multiplies_the_latency_until_reset)
{
    static const char *const env[] = {"MODE=model", "MODEL_BASE_MS=40",
                                      "MODEL_TOKEN_US=0", "MODEL_JITTER_PCT=0",
                                      NULL};
    struct harness_proc *echo = start_echo_env(env);

    for (size_t i = 0; i < sizeof slow_steps / sizeof slow_steps[0]; i++) {
        struct harness_http_response rs;
        long ms = slow_steps[i].ms;

        model_ask(echo->port, slow_steps[i].path, NULL, NULL, &rs);
        ck_assert_msg(rs.status == 200, "step %zu %s: status %d", i,
                      slow_steps[i].path, rs.status);
        if (slow_steps[i].body != NULL) {
            ck_assert_str_eq(rs.body, slow_steps[i].body);
            ck_assert_int_eq(field_number(&rs, "X-Model-Ms"), -1);
        } else {
            ck_assert_msg(field_number(&rs, "X-Model-Ms") == ms,
                          "step %zu %s: X-Model-Ms %ld, want %ld", i,
                          slow_steps[i].path, field_number(&rs, "X-Model-Ms"),
                          ms);
            ck_assert_msg(rs.elapsed_ms >= ms * 95 / 100 &&
                              rs.elapsed_ms < ms + HARNESS_PROMPT_MS,
                          "step %zu %s: %ld ms for X-Model-Ms %ld", i,
                          slow_steps[i].path, rs.elapsed_ms, ms);
        }
        harness_http_response_free(&rs);
    }
    harness_stop(echo);
}
END_TEST

/*
 * MODEL_CAPACITY=1 and two requests at once: the second to start finds 2
 * active, so its latency doubles.  Whatever the order the two start in,
 * and even if the first were done before the second began, the pair
 * cannot be done in less than two base latencies; one alone takes one.
 */
START_TEST(model_past_its_capacity_slows_down)
{
    enum { BASE = 150 };
    static const char req[] = "GET /gen HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n";
    static const char *const env[] = {"MODE=model",       "MODEL_BASE_MS=150",
                                      "MODEL_TOKEN_US=0", "MODEL_JITTER_PCT=0",
                                      "MODEL_CAPACITY=1", NULL};
    struct harness_proc *echo = start_echo_env(env);
    struct harness_http_response one, a, b;
    long start, pair;
    int fa, fb;

    model_ask(echo->port, "/gen", NULL, NULL, &one);
    ck_assert_int_eq(one.status, 200);
    ck_assert_int_eq(field_number(&one, "X-Model-Ms"), BASE);
    harness_http_response_free(&one);

    fa = harness_connect(echo->port);
    fb = harness_connect(echo->port);
    ck_assert_msg(fa >= 0 && fb >= 0, "connect echo: %s", strerror(errno));
    start = harness_now_ms();
    ck_assert(harness_send_all(fa, req, sizeof req - 1) == 0);
    ck_assert_msg(harness_http_raw(fb, req, sizeof req - 1, &b) == 0, "b: %s",
                  harness_end_name(b.end));
    ck_assert_msg(harness_http_raw(fa, "", 0, &a) == 0, "a: %s",
                  harness_end_name(a.end));
    pair = harness_now_ms() - start;
    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(b.status, 200);
    ck_assert_msg(pair >= 2 * BASE * 95 / 100 &&
                      pair < 2 * BASE + HARNESS_PROMPT_MS,
                  "the pair took %ld ms (X-Model-Ms %ld and %ld), one alone "
                  "%d",
                  pair, field_number(&a, "X-Model-Ms"),
                  field_number(&b, "X-Model-Ms"), BASE);
    harness_http_response_free(&a);
    harness_http_response_free(&b);
    close(fa);
    close(fb);
    harness_stop(echo);
}
END_TEST

static const char *const bad_model_requests[] = {
    "GET /admin/slow/0 HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /admin/slow/1001 HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /admin/slow/x HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /admin/slow/-1 HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /admin/slow/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /gen HTTP/1.1\r\nHost: x\r\nX-Token-Estimate: abc\r\n\r\n",
    "GET /gen HTTP/1.1\r\nHost: x\r\nX-Token-Estimate: 1000001\r\n\r\n",
    "GET /gen HTTP/1.1\r\nHost: x\r\nX-Token-Estimate: -1\r\n\r\n",
    "GET /gen HTTP/1.1\r\nHost: x\r\nX-Token-Estimate: 1.5\r\n\r\n",
    "GET /gen HTTP/1.1\r\nHost: x\r\nX-Token-Estimate:\r\n\r\n",
};

/* A 400 and the close; the slow factor is as it was. */
START_TEST(model_bad_request_gets_400)
{
    static const char *const env[] = {"MODE=model", "MODEL_BASE_MS=20",
                                      "MODEL_TOKEN_US=0", "MODEL_JITTER_PCT=0",
                                      NULL};
    const char *req = bad_model_requests[_i];
    struct harness_proc *echo = start_echo_env(env);
    struct harness_http_response rs;
    struct harness_buf rest = {0};
    enum harness_end end;
    int fd = harness_connect(echo->port);

    ck_assert_msg(fd >= 0, "connect echo: %s", strerror(errno));
    ck_assert_msg(harness_http_raw(fd, req, strlen(req), &rs) == 0,
                  "no response to %s: %s", req, harness_end_name(rs.end));
    ck_assert_msg(rs.status == 400, "%s: status %d", req, rs.status);
    harness_http_response_free(&rs);
    end = harness_read_to_end(fd, &rest, HARNESS_PROMPT_MS);
    ck_assert_msg(end == HARNESS_EOF, "after the 400: %s",
                  harness_end_name(end));
    harness_buf_free(&rest);
    close(fd);

    model_ask(echo->port, "/gen", NULL, NULL, &rs);
    ck_assert_int_eq(rs.status, 200);
    ck_assert_int_eq(field_number(&rs, "X-Model-Ms"), 20);
    harness_http_response_free(&rs);
    harness_stop(echo);
}
END_TEST

static const struct {
    const char *var, *value;
} bad_model_settings[] = {
    {"MODEL_CAPACITY", "0"},       {"MODEL_CAPACITY", "100001"},
    {"MODEL_JITTER_PCT", "91"},    {"MODEL_JITTER_PCT", ""},
    {"MODEL_BASE_MS", "x"},        {"MODEL_BASE_MS", "60001"},
    {"MODEL_TOKEN_US", "1000001"}, {"MODEL_TOKEN_US", "-1"},
    {"MODEL_SEED", "2147483648"},
};

/* The usual bad-setting contract: exit 2, no stdout, one stderr line. */
START_TEST(model_bad_setting_exits_2_with_one_line)
{
    const char *env[] = {"MODE=model", "PORT=0", NULL};

    harness_assert_exits_2(getenv("ECHO_BIN"), env, bad_model_settings[_i].var,
                           bad_model_settings[_i].value, NULL);
}
END_TEST

/* MODE=http reads no MODEL_* setting: a bad one does not stop it. */
START_TEST(http_mode_ignores_model_settings)
{
    static const char *const env[] = {"MODE=http", "MODEL_CAPACITY=0", NULL};
    struct harness_proc *echo = start_echo_env(env);
    struct harness_http_response rs;
    char want[128];

    ck_assert_int_eq(harness_http_get(echo->port, "/gen", &rs), 0);
    ck_assert_int_eq(rs.status, 200);
    snprintf(want, sizeof want, ECHO_LINE, "GET", "/gen", echo->port);
    ck_assert_str_eq(rs.body, want);
    ck_assert_int_eq(field_number(&rs, "X-Model-Ms"), -1);
    harness_http_response_free(&rs);
    harness_stop(echo);
}
END_TEST

/*
 * The jitter is drawn from MODEL_SEED and the request's number: two echoes
 * with one seed answer the same requests, in the same order, with the
 * same X-Model-Ms, each within 30% of the base, and not all alike.
 */
START_TEST(model_jitter_is_reproducible_from_the_seed)
{
    enum { N = 3 };
    static const char *const env[] = {"MODE=model",       "MODEL_BASE_MS=100",
                                      "MODEL_TOKEN_US=0", "MODEL_JITTER_PCT=30",
                                      "MODEL_SEED=12345", NULL};
    struct harness_proc *echo[2];
    long ms[2][N];

    echo[0] = start_echo_env(env);
    echo[1] = start_echo_env(env);
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 2; k++) {
            struct harness_http_response rs;

            model_ask(echo[k]->port, "/gen", NULL, NULL, &rs);
            ck_assert_int_eq(rs.status, 200);
            ms[k][i] = field_number(&rs, "X-Model-Ms");
            ck_assert_msg(ms[k][i] >= 70 && ms[k][i] <= 130,
                          "echo %d request %d: X-Model-Ms %ld", k, i, ms[k][i]);
            harness_http_response_free(&rs);
        }
        ck_assert_msg(ms[0][i] == ms[1][i],
                      "request %d: X-Model-Ms %ld and %ld", i, ms[0][i],
                      ms[1][i]);
    }
    ck_assert_msg(ms[0][0] != ms[0][1] || ms[0][1] != ms[0][2],
                  "no jitter: X-Model-Ms %ld each time", ms[0][0]);
    harness_stop(echo[0]);
    harness_stop(echo[1]);
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

    tc = harness_tcase(s, "echo-model", 1, "echo");
    tcase_add_loop_test(tc, model_counts_tokens_from_the_estimate_or_the_body,
                        0, COUNT(tokens));
    tcase_add_loop_test(tc, model_sleeps_for_its_latency, 0, COUNT(latency));
    tcase_add_test(tc, admin_slow_multiplies_the_latency_until_reset);
    tcase_add_test(tc, model_past_its_capacity_slows_down);
    tcase_add_loop_test(tc, model_bad_request_gets_400, 0,
                        COUNT(bad_model_requests));
    tcase_add_loop_test(tc, model_bad_setting_exits_2_with_one_line, 0,
                        COUNT(bad_model_settings));
    tcase_add_test(tc, http_mode_ignores_model_settings);
    tcase_add_test(tc, model_jitter_is_reproducible_from_the_seed);
}
