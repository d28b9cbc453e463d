/*
 * echo.c - the backend Harbor balances across (build/echo).
 *
 * A small HTTP/1.1 server whose answers say who served them, plus a few
 * paths that misbehave on purpose (slow, large, dripping, unhealthy), so the
 * tests and the demo can watch a balancer cope.  MODE=tcp turns it into a
 * raw byte echo instead.  It is shaped like chapter 01 - blocking accept,
 * one thread per connection - so that reading it needs nothing new.
 *
 * DESIGN: main() accepts and echo_spawn() hands the client fd, inside a
 * malloc'd struct echo_conn, to a new detached thread.  From then on that
 * thread owns both: echo_conn_main() closes the fd and frees the struct on
 * its single way out, and nobody else touches them.  The thread ends when
 * the client closes or resets, after a response that closes the connection,
 * or after a malformed request (answered with 4xx).  An idle keep-alive
 * client keeps its thread blocked in read() for as long as it stays
 * connected: a test backend can afford that.  The only state threads share
 * is struct echo_server: fields set before the first thread starts, and the
 * /health flag, an atomic.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "net.h"

/*
 * Same reasoning as chapter 01's CONN_STACK_SIZE: the default stack is
 * 8 MiB of address space per thread.  Our buffers live in the heap-allocated
 * struct echo_conn, so a thread needs only a few small frames and libc's
 * printf; 64 KiB is room to spare, sanitizers included.
 */
#define ECHO_STACK_SIZE (64 * 1024)

#define ECHO_HEAD_MAX  (16 * 1024)  /* request line + headers, else 431 */
#define ECHO_OUT_MAX   (16 * 1024)  /* response buffer (see echo_out) */
#define ECHO_BODY_MAX  (16UL << 20) /* request bodies, else 413 */
#define ECHO_BYTES_MAX (1ULL << 30) /* n in /bytes/<n> and /drip/<n>/.. */
#define ECHO_MS_MAX    600000ULL    /* ms in /delay and /drip: 10 min */
#define ECHO_LINGER_MS 2000         /* see echo_linger() */
#define ECHO_PATTERN   (26 * 600)   /* /bytes chunk: whole a..z runs */

enum echo_mode { ECHO_HTTP, ECHO_TCP }; /* the order of MODE's choices */

struct echo_server {
    unsigned port;       /* the real port, for X-Served-By */
    enum echo_mode mode; /* MODE */
    pthread_attr_t attr; /* detached, ECHO_STACK_SIZE */
    atomic_int down;     /* /health says 503 while set; any thread sets it */
};

struct echo_conn {
    struct echo_server *srv;
    int fd;                   /* the client; echo_conn_main() closes it */
    char peer[ADDR_TEXT_MAX]; /* the client's address, for the logs */
    size_t len;               /* bytes in in[] not consumed yet */
    size_t out_len;           /* bytes in out[] not written yet */
    int drop_body;            /* answering HEAD: echo_out() drops the body */
    int failed;               /* a write failed: drop all further output */
    char in[ECHO_HEAD_MAX];   /* a request head, then what follows it */
    char out[ECHO_OUT_MAX];   /* a response head and the start of its body */
};

/* One parsed request.  method and target point into conn->in. */
struct echo_req {
    size_t head_len;           /* request line, headers and blank line */
    size_t in_used;            /* bytes of conn->in this request took */
    const char *method;        /* not NUL-terminated: use the lengths */
    size_t method_len;         /* 1 or more */
    const char *target;        /* as sent, query included */
    size_t target_len;         /* 1 or more */
    int minor;                 /* HTTP/1.<minor>: 0 or 1 */
    int has_length;            /* a Content-Length was seen */
    unsigned long long length; /* its value; 0 when absent */
    int conn_close;            /* Connection: close */
    int conn_keep;             /* Connection: keep-alive */
    int expect_continue;       /* Expect: 100-continue */
    int keep_alive;            /* read another request after this one */
    int no_body;               /* HEAD: the head of the response only */
};

/*
 * Request parsing.  Each step from here to echo_route() returns 0 to go
 * on, an HTTP status (4xx, 5xx) to answer with before closing, or -1 when
 * nobody is left to answer (the client closed or reset).
 */

/* RFC 9110 token characters: what a method or a header name is made of. */
static int
echo_is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
           (ch >= 'A' && ch <= 'Z') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/*
 * Parse 1*DIGIT from s[0..len) into *out; -1 if empty, not all digits, or
 * above max.  number_parse() wants a NUL-terminated string; HTTP hands us
 * slices of a buffer, and its grammar is exactly this.
 */
static int
echo_digits(const char *s, size_t len, unsigned long long max,
            unsigned long long *out)
{
    unsigned long long v = 0, d;
    size_t i;

    if (len == 0)
        return -1;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned long long)(s[i] - '0');
        if (d > max || v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Is s[0..len) equal to the lowercase word, ignoring case? */
static int
echo_word_is(const char *s, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(s, word, len) == 0;
}

/* The length of the line from p to eol (its '\n'), without a final '\r'. */
static size_t
echo_line_len(const char *p, const char *eol)
{
    size_t n = (size_t)(eol - p);

    return n > 0 && p[n - 1] == '\r' ? n - 1 : n;
}

/*
 * Where the head in buf ends (just past its blank line), or 0 if it has not
 * all arrived.  Lines end in CRLF; a bare LF is accepted too (RFC 9112 §2.2
 * allows it), which is kind to people typing requests into nc.
 */
static size_t
echo_head_end(const char *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* "GET /path?q HTTP/1.1": exactly one space between the three parts. */
static int
echo_parse_request_line(const char *line, size_t len, struct echo_req *rq)
{
    const char *p = line, *end = line + len;

    rq->method = p;
    while (p < end && echo_is_tchar((unsigned char)*p))
        p++;
    rq->method_len = (size_t)(p - rq->method);
    if (rq->method_len == 0 || p == end || *p++ != ' ')
        return -1;
    /* The target: any visible ASCII, no spaces or control characters. */
    rq->target = p;
    while (p < end && (unsigned char)*p > ' ' && (unsigned char)*p < 0x7f)
        p++;
    rq->target_len = (size_t)(p - rq->target);
    if (rq->target_len == 0 || p == end || *p++ != ' ')
        return -1;
    if (end - p != 8 || memcmp(p, "HTTP/1.", 7) != 0 ||
        (p[7] != '0' && p[7] != '1'))
        return -1;
    rq->minor = p[7] - '0';
    rq->no_body = echo_word_is(rq->method, rq->method_len, "head");
    return 0;
}

/* One "Name: value" line.  Only the fields that frame the request matter. */
static int
echo_parse_field(const char *line, size_t len, struct echo_req *rq)
{
    const char *colon, *v, *end = line + len, *tok;
    unsigned long long n;
    size_t i, vlen;

    /*
     * The name is a token right up to the colon.  This also rejects a space
     * before the colon and obsolete line folding (a line starting with a
     * space): both have been used to smuggle requests past proxies.
     */
    if ((colon = memchr(line, ':', len)) == NULL || colon == line)
        return 400;
    for (i = 0; line + i < colon; i++)
        if (!echo_is_tchar((unsigned char)line[i]))
            return 400;
    for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
        ;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    vlen = (size_t)(end - v);
    for (i = 0; i < vlen; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < ' ' && ch != '\t') /* CR, NUL and friends */
            return 400;
        if (ch == 0x7f)
            return 400;
    }

    if (echo_word_is(line, (size_t)(colon - line), "content-length")) {
        /* A second Content-Length must agree, or framing is ambiguous. */
        if (echo_digits(v, vlen, ~0ULL, &n) < 0)
            return 400;
        if (rq->has_length && n != rq->length)
            return 400;
        rq->has_length = 1;
        rq->length = n;
    } else if (echo_word_is(line, (size_t)(colon - line),
                            "transfer-encoding")) {
        /*
         * Chunked bodies are refused rather than supported: bodies are
         * framed by Content-Length only (design.md), and a body we cannot
         * frame would leave the next request's bytes mixed with this one's.
         */
        return 400;
    } else if (echo_word_is(line, (size_t)(colon - line), "connection")) {
        /* A comma-separated list of options: "keep-alive, Upgrade". */
        for (tok = v; tok < end;) {
            const char *comma = memchr(tok, ',', (size_t)(end - tok));
            const char *stop = comma != NULL ? comma : end, *t = stop;
            while (tok < t && (*tok == ' ' || *tok == '\t'))
                tok++;
            while (t > tok && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if (echo_word_is(tok, (size_t)(t - tok), "close"))
                rq->conn_close = 1;
            else if (echo_word_is(tok, (size_t)(t - tok), "keep-alive"))
                rq->conn_keep = 1;
            tok = stop + 1;
        }
    } else if (echo_word_is(line, (size_t)(colon - line), "expect")) {
        rq->expect_continue = echo_word_is(v, vlen, "100-continue");
    }
    /* Host is not required: hand-typed requests should just work. */
    return 0;
}

/* Parse the complete head in buf[0..rq->head_len). */
static int
echo_parse_head(const char *buf, struct echo_req *rq)
{
    const char *p = buf, *end = buf + rq->head_len, *eol;
    size_t n;
    int rc;

    /* echo_head_end() found the blank line, so every line has its '\n'. */
    eol = memchr(p, '\n', (size_t)(end - p));
    if (echo_parse_request_line(p, echo_line_len(p, eol), rq) < 0)
        return 400;
    for (p = eol + 1; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if ((n = echo_line_len(p, eol)) == 0)
            break; /* the blank line */
        if ((rc = echo_parse_field(p, n, rq)) != 0)
            return rc;
    }
    if (rq->length > ECHO_BODY_MAX)
        return 413;
    /* HTTP/1.1 keeps the connection unless told not to; 1.0 the reverse. */
    rq->keep_alive = !rq->conn_close && (rq->minor == 1 || rq->conn_keep);
    return 0;
}

/*
 * Read until conn->in holds a whole request head; sets rq->head_len.  Bytes
 * after the head (a body, a pipelined request) stay in conn->in.
 */
static int
echo_read_head(struct echo_conn *c, struct echo_req *rq)
{
    const char *eol;
    size_t skip;
    ssize_t n;

    for (;;) {
        /* RFC 9112 §2.2: ignore empty lines before a request line. */
        for (skip = 0; skip < c->len; skip++)
            if (c->in[skip] != '\r' && c->in[skip] != '\n')
                break;
        if (skip > 0) {
            memmove(c->in, c->in + skip, c->len - skip);
            c->len -= skip;
        }
        if ((rq->head_len = echo_head_end(c->in, c->len)) > 0)
            return 0;
        /*
         * A bad request line is answered now, not after a blank line that
         * may never come.  (rq is scratch here; echo_parse_head() redoes it.)
         */
        eol = memchr(c->in, '\n', c->len);
        if (eol != NULL &&
            echo_parse_request_line(c->in, echo_line_len(c->in, eol), rq) < 0)
            return 400;
        if (c->len == sizeof(c->in))
            return 431;
        n = read(c->fd, c->in + c->len, sizeof(c->in) - c->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) /* EOF between requests is the normal end */
            return c->len == 0 ? -1 : 400;
        c->len += (size_t)n;
    }
}

/*
 * Read the whole body into *body (malloc'd; the caller frees it).
 *
 * Why not stream it back as it arrives?  A client may write its whole body
 * before reading anything, as simple test clients do.  A streaming echo
 * then fills the socket buffers both ways and both sides block in write()
 * for ever.  Reading first, up to ECHO_BODY_MAX, cannot deadlock.
 */
static int
echo_read_body(struct echo_conn *c, struct echo_req *rq, char **body)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    size_t want = (size_t)rq->length, avail = c->len - rq->head_len, got;
    ssize_t n;

    got = avail < want ? avail : want;
    rq->in_used = rq->head_len + got;
    if (want == 0)
        return 0;
    if ((*body = malloc(want)) == NULL) {
        log_warn("%s: %s: %zu-byte body: %s", __func__, c->peer, want,
                 strerror(errno));
        return 500;
    }
    memcpy(*body, c->in + rq->head_len, got);
    /*
     * curl asks before it sends a large body ("Expect: 100-continue") and
     * waits a second for our go-ahead; answer at once.
     */
    if (got < want && rq->expect_continue && rq->minor == 1 &&
        write_all(c->fd, cont, sizeof(cont) - 1) < 0)
        return -1;
    while (got < want) {
        n = read(c->fd, *body + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 400; /* the body was cut short */
        got += (size_t)n;
    }
    return 0;
}

/*
 * Writing responses.  echo_out() gathers a response in conn->out so that a
 * head and a short body leave in one write(); echo_flush() sends what is
 * gathered.  A failed write sets conn->failed and later output is dropped,
 * so callers check once, at the flush, as with stdio's ferror().
 */

static int
echo_flush(struct echo_conn *c)
{
    if (!c->failed && c->out_len > 0 &&
        write_all(c->fd, c->out, c->out_len) < 0) {
        log_debug("%s: %s: write: %s", __func__, c->peer, strerror(errno));
        c->failed = 1;
    }
    c->out_len = 0;
    return c->failed ? -1 : 0;
}

static void
echo_out(struct echo_conn *c, const void *p, size_t n)
{
    if (c->failed || c->drop_body || n == 0)
        return;
    if (n > sizeof(c->out) - c->out_len) {
        echo_flush(c);
        if (n >= sizeof(c->out)) { /* large: no point in copying it */
            if (!c->failed && write_all(c->fd, p, n) < 0)
                c->failed = 1;
            return;
        }
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static const char *
echo_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* Start a response whose body will be length bytes long. */
static void
echo_out_head(struct echo_conn *c, const struct echo_req *rq, int status,
              unsigned long long length)
{
    const char *conn = "";
    int n;

    if (!rq->keep_alive)
        conn = "Connection: close\r\n";
    else if (rq->minor == 0)
        conn = "Connection: keep-alive\r\n"; /* 1.0 must be told it stays */
    n = snprintf(c->out + c->out_len, sizeof(c->out) - c->out_len,
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: text/plain\r\n"
                 "Content-Length: %llu\r\n"
                 "X-Served-By: :%u\r\n"
                 "%s\r\n",
                 status, echo_reason(status), length, c->srv->port, conn);
    c->out_len += (size_t)n; /* a head is < 200 bytes and out[] was empty */
    c->drop_body = rq->no_body;
}

static int
echo_send_text(struct echo_conn *c, const struct echo_req *rq, int status,
               const char *text)
{
    echo_out_head(c, rq, status, strlen(text));
    echo_out(c, text, strlen(text));
    return echo_flush(c);
}

/* A 4xx or 5xx: the connection closes after it, whatever the client asked. */
static void
echo_send_error(struct echo_conn *c, struct echo_req *rq, int status)
{
    char text[64];

    log_debug("%s: %s: %d, closing", __func__, c->peer, status);
    rq->keep_alive = 0;
    snprintf(text, sizeof(text), "%s\n", echo_reason(status));
    (void)echo_send_text(c, rq, status, text);
}

/* "echo GET /x?y (served by :9001)\n", then the request body. */
static int
echo_send_echo(struct echo_conn *c, const struct echo_req *rq, const char *body)
{
    char tail[32];
    size_t tail_len;

    tail_len = (size_t)snprintf(tail, sizeof(tail), " (served by :%u)\n",
                                c->srv->port);
    echo_out_head(c, rq, 200,
                  5 + rq->method_len + 1 + rq->target_len + tail_len +
                      rq->length);
    echo_out(c, "echo ", 5);
    echo_out(c, rq->method, rq->method_len);
    echo_out(c, " ", 1);
    echo_out(c, rq->target, rq->target_len);
    echo_out(c, tail, tail_len);
    echo_out(c, body, (size_t)rq->length);
    return echo_flush(c);
}

/* n bytes of "abc...z" repeated, written in chunks: never held in memory. */
static int
echo_send_bytes(struct echo_conn *c, const struct echo_req *rq,
                unsigned long long n)
{
    size_t i, k;

    echo_out_head(c, rq, 200, n);
    if (echo_flush(c) < 0 || rq->no_body)
        return c->failed ? -1 : 0;
    /* ECHO_PATTERN is whole a..z runs, so chunk after chunk continues it. */
    for (i = 0; i < ECHO_PATTERN; i++)
        c->out[i] = (char)('a' + i % 26);
    for (; n > 0; n -= k) {
        k = n < ECHO_PATTERN ? (size_t)n : ECHO_PATTERN;
        if (write_all(c->fd, c->out, k) < 0)
            return -1;
    }
    return 0;
}

static void
echo_sleep_ms(unsigned long long ms)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ; /* a signal woke us early: sleep the rest */
}

/* n bytes, one every ms milliseconds: a slow backend, as a test needs one. */
static int
echo_send_drip(struct echo_conn *c, const struct echo_req *rq,
               unsigned long long n, unsigned long long ms)
{
    unsigned long long i;
    char ch;

    echo_out_head(c, rq, 200, n);
    if (echo_flush(c) < 0 || rq->no_body)
        return c->failed ? -1 : 0;
    for (i = 0; i < n; i++) {
        echo_sleep_ms(ms);
        ch = (char)('a' + i % 26);
        /* TCP_NODELAY (echo_http) puts each byte on the wire at once. */
        if (write_all(c->fd, &ch, 1) < 0)
            return -1;
    }
    return 0;
}

/* If path[0..len) is prefix followed by something, point at what follows. */
static const char *
echo_path_arg(const char *path, size_t len, const char *prefix, size_t *arg_len)
{
    size_t n = strlen(prefix);

    if (len < n || memcmp(path, prefix, n) != 0)
        return NULL;
    *arg_len = len - n;
    return path + n;
}

/* Answer one request.  Routing looks at the path, without the query. */
static int
echo_route(struct echo_conn *c, const struct echo_req *rq, const char *body)
{
    struct echo_server *srv = c->srv;
    const char *path = rq->target, *q, *arg, *slash;
    size_t len = rq->target_len, alen;
    unsigned long long n, ms;

    if ((q = memchr(path, '?', len)) != NULL)
        len = (size_t)(q - path);
    if (len == 7 && memcmp(path, "/health", 7) == 0) {
        if (atomic_load(&srv->down))
            return echo_send_text(c, rq, 503, "down\n");
        return echo_send_text(c, rq, 200, "ok\n");
    }
    if (len == 11 && memcmp(path, "/admin/down", 11) == 0) {
        atomic_store(&srv->down, 1);
        log_info("marked down by %s", c->peer);
        return echo_send_text(c, rq, 200, "down\n");
    }
    if (len == 9 && memcmp(path, "/admin/up", 9) == 0) {
        atomic_store(&srv->down, 0);
        log_info("marked up by %s", c->peer);
        return echo_send_text(c, rq, 200, "up\n");
    }
    if ((arg = echo_path_arg(path, len, "/delay/", &alen)) != NULL) {
        if (echo_digits(arg, alen, ECHO_MS_MAX, &ms) < 0)
            return 400;
        echo_sleep_ms(ms);
        return echo_send_echo(c, rq, body);
    }
    if ((arg = echo_path_arg(path, len, "/bytes/", &alen)) != NULL) {
        if (echo_digits(arg, alen, ECHO_BYTES_MAX, &n) < 0)
            return 400;
        return echo_send_bytes(c, rq, n);
    }
    if ((arg = echo_path_arg(path, len, "/drip/", &alen)) != NULL) {
        if ((slash = memchr(arg, '/', alen)) == NULL ||
            echo_digits(arg, (size_t)(slash - arg), ECHO_BYTES_MAX, &n) < 0 ||
            echo_digits(slash + 1, alen - (size_t)(slash - arg) - 1,
                        ECHO_MS_MAX, &ms) < 0)
            return 400;
        return echo_send_drip(c, rq, n, ms);
    }
    return echo_send_echo(c, rq, body);
}

/*
 * Read, answer and consume one request.  Returns 1 to read the next one,
 * 0 when we chose to close (Connection: close, an error answered), -1 when
 * the client is gone.
 */
static int
echo_serve_one(struct echo_conn *c)
{
    struct echo_req rq;
    char *body = NULL;
    int rc;

    memset(&rq, 0, sizeof(rq));
    rc = echo_read_head(c, &rq);
    if (rc == 0)
        rc = echo_parse_head(c->in, &rq);
    if (rc == 0)
        rc = echo_read_body(c, &rq, &body);
    if (rc == 0)
        rc = echo_route(c, &rq, body);
    if (rc > 0)
        echo_send_error(c, &rq, rc);
    free(body);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    /* Keep what follows this request: the start of a pipelined next one. */
    memmove(c->in, c->in + rq.in_used, c->len - rq.in_used);
    c->len -= rq.in_used;
    return rq.keep_alive;
}

/*
 * Close politely after our last answer.  close() on a socket with unread
 * input sends a RST, and a RST can destroy a response the client has not
 * read yet (RFC 9112 §9.6).  So send our FIN first, then read and discard
 * what the client still sends until its EOF, for ECHO_LINGER_MS at most.
 */
static void
echo_linger(struct echo_conn *c)
{
    struct timeval tv = {ECHO_LINGER_MS / 1000, 0};
    struct timespec start, now;

    if (shutdown(c->fd, SHUT_WR) < 0)
        return;
    /* A receive timeout now, only to bound this wait; never while serving. */
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        return;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        if (read(c->fd, c->in, sizeof(c->in)) <= 0)
            return; /* EOF, reset or timeout: done */
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 +
                 (now.tv_nsec - start.tv_nsec) / 1000000 <
             ECHO_LINGER_MS);
}

static void
echo_http(struct echo_conn *c)
{
    int one = 1, rc;

    /*
     * Each response leaves in one or a few whole writes, so Nagle's
     * algorithm can only add delay; and /drip must send each byte alone.
     */
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        log_debug("%s: %s: TCP_NODELAY: %s", __func__, c->peer,
                  strerror(errno));
    while ((rc = echo_serve_one(c)) == 1)
        ;
    if (rc == 0)
        echo_linger(c);
}

/* MODE=tcp: every byte read is written back, until the client's EOF. */
static void
echo_tcp(struct echo_conn *c)
{
    ssize_t n;

    for (;;) {
        n = read(c->fd, c->in, sizeof(c->in));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (write_all(c->fd, c->in, (size_t)n) < 0)
            return;
    }
    /*
     * The half-close: at the client's EOF everything it sent has been
     * written back, so send our EOF too (shutdown(SHUT_WR)).  A client
     * still reading sees all its bytes, then the end.
     */
    if (n == 0)
        shutdown(c->fd, SHUT_WR);
}

static void *
echo_conn_main(void *arg)
{
    struct echo_conn *c = arg;

    if (c->srv->mode == ECHO_TCP)
        echo_tcp(c);
    else
        echo_http(c);
    log_debug("%s: %s: closed", __func__, c->peer);
    close(c->fd);
    free(c);
    return NULL;
}

/* Serve the client on fd from a new thread; fd is the thread's now. */
static void
echo_spawn(struct echo_server *srv, int fd, const struct sockaddr *peer)
{
    struct echo_conn *c;
    pthread_t tid;
    int err = ENOMEM;

    if ((c = malloc(sizeof(*c))) == NULL)
        goto fail;
    c->srv = srv;
    c->fd = fd;
    c->len = c->out_len = 0;
    c->drop_body = c->failed = 0;
    net_ntop(peer, c->peer, sizeof(c->peer));
    /* pthread_create returns the error number; it does not set errno. */
    if ((err = pthread_create(&tid, &srv->attr, echo_conn_main, c)) == 0)
        return;
fail:
    /* Out of threads or memory: this client is closed, the rest go on. */
    log_warn("%s: %s", __func__, strerror(err));
    free(c);
    close(fd);
}

/* PORT and MODE; exits 2 with the usual one line on a bad value. */
static void
echo_config(struct echo_server *srv, struct addr *a)
{
    static const char *const modes[] = {"http", "tcp", NULL};
    const char *v = getenv("PORT"), *why;
    unsigned long port = 9001;

    log_init();
    /* config_number() allows up to CONFIG_NUMBER_MAX; a port stops lower. */
    if (v != NULL && number_parse(v, 65535, &port, &why) < 0)
        config_fail("PORT",
                    strcmp(why, "too large") == 0 ? "port out of range" : why,
                    v);
    srv->mode = (enum echo_mode)config_choice("MODE", "http", modes);
    memset(a, 0, sizeof(*a));
    snprintf(a->text, sizeof(a->text), ":%lu", port);
    a->host[0] = '\0'; /* any address, IPv4 and IPv6 (net_listen) */
    a->port = (unsigned)port;
}

int
main(void)
{
    struct echo_server srv;
    struct sockaddr_storage peer, self;
    socklen_t peerlen, selflen = sizeof(self);
    struct addr addr;
    char bound[ADDR_TEXT_MAX];
    int lfd, cfd;

    echo_config(&srv, &addr);
    atomic_init(&srv.down, 0);

    /*
     * A write to a client that has gone away raises SIGPIPE, whose default
     * action kills the whole process.  Ignored, the write fails with EPIPE
     * instead and only that connection ends.
     */
    signal(SIGPIPE, SIG_IGN);

    if (pthread_attr_init(&srv.attr) != 0 ||
        pthread_attr_setstacksize(&srv.attr, ECHO_STACK_SIZE) != 0 ||
        pthread_attr_setdetachstate(&srv.attr, PTHREAD_CREATE_DETACHED) != 0) {
        log_error("%s: thread attributes", __func__);
        exit(1);
    }
    if ((lfd = net_listen(&addr, bound, sizeof(bound))) < 0) {
        log_error("listen %s: %s", addr.text, strerror(errno));
        exit(1);
    }
    /* The real port, which PORT=0 left to the kernel. */
    if (getsockname(lfd, (struct sockaddr *)&self, &selflen) < 0) {
        log_error("getsockname: %s", strerror(errno));
        exit(1);
    }
    srv.port = net_port((struct sockaddr *)&self);
    printf("echo listening on :%u\n", srv.port);
    fflush(stdout);
    log_info("echo listening on %s, mode %s", bound,
             srv.mode == ECHO_TCP ? "tcp" : "http");

    for (;;) {
        peerlen = sizeof(peer);
        if ((cfd = net_accept(lfd, &peer, &peerlen)) < 0) {
            /* Only a broken listener gets here (EBADF, EINVAL...). */
            log_error("accept: %s", strerror(errno));
            exit(1);
        }
        echo_spawn(&srv, cfd, (struct sockaddr *)&peer);
    }
}
