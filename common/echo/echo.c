/*
 * echo.c - the backend Harbor balances across (build/echo).
 *
 * A small HTTP/1.1 server whose answers say who served them, plus a few
 * paths that misbehave on purpose (slow, large, dripping, unhealthy), so the
 * tests and the demo can watch a balancer cope.  MODE=tcp turns it into a
 * raw byte echo instead.  MODE=model is a fake inference server: the same
 * paths, but any other one is a "model request" that sleeps for a latency
 * grown by its tokens, by load past MODEL_CAPACITY and by /admin/slow, so
 * that latency-aware routing has something worth balancing.  It is shaped
 * like chapter 01 - blocking accept, one thread per connection - so that
 * reading it needs nothing new.  Its requests are parsed by common/http.c,
 * the parser chapter 10 proxies with.
 *
 * DESIGN: main() accepts and echo_spawn() hands the client fd, inside a
 * malloc'd struct echo_conn, to a new detached thread.  From then on that
 * thread owns both: echo_conn_main() closes the fd and frees the struct on
 * its single way out, and nobody else touches them.  The thread ends when
 * the client closes or resets, after a response that closes the connection,
 * or after a malformed request (answered with 4xx or 501).  An idle keep-alive
 * client keeps its thread blocked in read() for as long as it stays
 * connected: a test backend can afford that.  The only state threads share
 * is struct echo_server: fields set before the first thread starts, the
 * /health flag, an atomic, the count of connections, an atomic that only
 * main() changes, and MODE=model's slow factor and counters, atomics too.
 * A model request sleeps in its own thread and holds no lock.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
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

#define ECHO_TOKENS_MAX 1000000 /* X-Token-Estimate, else 400 */
#define ECHO_SLOW_MAX   1000    /* factor in /admin/slow/<factor> */

enum echo_mode { ECHO_HTTP, ECHO_TCP, ECHO_MODEL };

/* MODE's choices, in the order of enum echo_mode. */
static const char *const echo_modes[] = {"http", "tcp", "model", NULL};

/*
 * MODE=model.  The settings are read once at start (echo_model_config);
 * the atomics change while threads serve.
 */
struct echo_model {
    unsigned long base_ms;    /* MODEL_BASE_MS: the latency of no tokens */
    unsigned long token_us;   /* MODEL_TOKEN_US: what each token adds */
    unsigned long capacity;   /* MODEL_CAPACITY: requests at full speed */
    unsigned long jitter_pct; /* MODEL_JITTER_PCT: +- this much, at random */
    uint64_t seed;            /* MODEL_SEED: the jitter's */
    atomic_uint slow;         /* /admin/slow/<factor>; 1 is full speed */
    atomic_ulong active;      /* model requests being served now */
    atomic_ulong served;      /* model requests so far: the jitter's serial */
};

struct echo_server {
    unsigned port;       /* the real port, for X-Served-By */
    enum echo_mode mode; /* MODE */
    pthread_attr_t attr; /* detached, ECHO_STACK_SIZE */
    atomic_int down;     /* /health says 503 while set; any thread sets it */
    atomic_ulong conns;  /* connections accepted so far: X-Echo-Conn */
    struct echo_model model; /* MODE=model only */
};

struct echo_conn {
    struct echo_server *srv;
    int fd;                   /* the client; echo_conn_main() closes it */
    unsigned long serial;     /* its number, from 1, for X-Echo-Conn */
    char peer[ADDR_TEXT_MAX]; /* the client's address, for the logs */
    size_t len;               /* bytes in in[] not consumed yet */
    size_t out_len;           /* bytes in out[] not written yet */
    int drop_body;            /* answering HEAD: echo_out() drops the body */
    int failed;               /* a write failed: drop all further output */
    char in[ECHO_HEAD_MAX];   /* a request head, then what follows it */
    char out[ECHO_OUT_MAX];   /* a response head and the start of its body */
};

/*
 * One request.  msg, the head as http.c parsed it, points into conn->in.
 * The body's data is in a malloc'd buffer; when the body had to be read,
 * its last read may have brought the first bytes of a pipelined next
 * request too, kept in the same buffer after the data (rest).
 */
struct echo_req {
    size_t head_len;     /* request line, field lines and blank line */
    size_t in_used;      /* bytes of conn->in this request took */
    struct http_msg msg; /* the parsed head */
    int keep_alive;      /* read another request after this one */
    int no_body;         /* HEAD: the head of the response only */
    char *body;          /* the body's data, NULL while there is none */
    size_t body_len;     /* bytes of data in body */
    size_t body_cap;     /* bytes allocated for body */
    size_t rest;         /* where in body the next request starts */
    size_t rest_len;     /* and how many of its bytes are there */
};

/*
 * Request parsing, by common/http.c.  Each step from here to echo_route()
 * returns 0 to go on, an HTTP status (4xx, 5xx) to answer with before
 * closing, or -1 when nobody is left to answer (the client closed or reset).
 */

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

/* Parse the complete head in conn->in[0..rq->head_len). */
static int
echo_parse_head(struct echo_conn *c, struct echo_req *rq)
{
    struct http_msg *m = &rq->msg;
    int status;

    /* Host is not required (http.c): hand-typed requests should just work. */
    if ((status = http_parse_request(c->in, rq->head_len, m)) != 0) {
        log_debug("%s: %s: %d: %s", __func__, c->peer, status, m->why);
        return status;
    }
    if (m->body == HTTP_BODY_LENGTH && m->length > ECHO_BODY_MAX)
        return 413;
    rq->keep_alive = m->keep_alive;
    rq->no_body = m->method_len == 4 && strncasecmp(m->method, "head", 4) == 0;
    return 0;
}

/*
 * Is the request line at the start of conn->in, complete while the rest of
 * its head is still on the way, wrong already?  Then it is answered now, not
 * after a blank line that may never come.  http.c parses whole heads only,
 * so the line is parsed as a head of its own: a copy of it and an empty
 * line, in conn->out, which lies idle while a request is read.  m is
 * scratch; echo_parse_head() parses the whole head again.
 */
static int
echo_check_request_line(struct echo_conn *c, struct http_msg *m)
{
    const char *eol = memchr(c->in, '\n', c->len);
    size_t n;

    /* A line as long as conn->out fills conn->in, and that is a 431. */
    if (eol == NULL || (n = (size_t)(eol - c->in) + 1) >= sizeof(c->out))
        return 0;
    memcpy(c->out, c->in, n);
    c->out[n] = '\n';
    return http_parse_request(c->out, n + 1, m);
}

/*
 * Read until conn->in holds a whole request head; sets rq->head_len.  Bytes
 * after the head (a body, a pipelined request) stay in conn->in.
 */
static int
echo_read_head(struct echo_conn *c, struct echo_req *rq)
{
    size_t skip;
    ssize_t n;
    int status;

    for (;;) {
        /* RFC 9112 §2.2: ignore empty lines before a request line. */
        if ((skip = http_skip_empty(c->in, c->len)) > 0) {
            memmove(c->in, c->in + skip, c->len - skip);
            c->len -= skip;
        }
        if ((rq->head_len = http_head_end(c->in, c->len)) > 0)
            return 0;
        if ((status = echo_check_request_line(c, &rq->msg)) != 0)
            return status;
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
 * Make room in rq->body for n bytes after its data.  The first allocation
 * is just what is asked (a Content-Length body's exact size); after that
 * the buffer doubles, so a large chunked body costs a few reallocs.
 */
static int
echo_body_room(struct echo_conn *c, struct echo_req *rq, size_t n)
{
    size_t need = rq->body_len + n, cap = rq->body_cap * 2;
    char *p;

    if (need <= rq->body_cap)
        return 0;
    if (cap < need)
        cap = need;
    if ((p = realloc(rq->body, cap)) == NULL) {
        log_warn("%s: %s: %zu-byte body: %s", __func__, c->peer, cap,
                 strerror(errno));
        return 500;
    }
    rq->body = p;
    rq->body_cap = cap;
    return 0;
}

/*
 * Hand p[0..n) to the body's framing and append the data in it to
 * rq->body, which has room for n more bytes.  p may point into rq->body
 * itself, after the data: the framing is cut out in place (memmove).
 * *used is how many bytes the body took; any after them belong to the
 * next request.
 */
static int
echo_body_feed(struct echo_req *rq, struct http_body *b, const char *p,
               size_t n, size_t *used)
{
    size_t off = 0, data;
    long k;

    while (off < n && !http_body_done(b)) {
        if ((k = http_body_take(b, p + off, n - off, &data)) < 0)
            return 400; /* malformed chunked framing */
        if (k == 0)
            break; /* cannot happen with bytes left, but never spin */
        /* A Content-Length was checked already; chunks add up here. */
        if (data > ECHO_BODY_MAX - rq->body_len)
            return 413;
        memmove(rq->body + rq->body_len, p + off, data);
        rq->body_len += data;
        off += (size_t)k;
    }
    *used = off;
    return 0;
}

/*
 * Read the whole body into rq->body (the caller frees it), framed by
 * Content-Length or chunked alike: http_body_take() tells data from
 * framing, and only the data is kept.
 *
 * Why not stream it back as it arrives?  A client may write its whole body
 * before reading anything, as simple test clients do.  A streaming echo
 * then fills the socket buffers both ways and both sides block in write()
 * for ever.  Reading first, up to ECHO_BODY_MAX, cannot deadlock.
 */
static int
echo_read_body(struct echo_conn *c, struct echo_req *rq)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    const struct http_msg *m = &rq->msg;
    size_t avail = c->len - rq->head_len, want, used;
    struct http_body b;
    char *p;
    ssize_t n;
    int rc;

    http_body_init(&b, m);
    rq->in_used = rq->head_len;
    if (http_body_done(&b))
        return 0;
    /* First what came with the head. */
    want = m->body == HTTP_BODY_LENGTH ? (size_t)m->length : avail;
    if ((rc = echo_body_room(c, rq, want)) != 0 ||
        (rc = echo_body_feed(rq, &b, c->in + rq->head_len, avail, &used)) != 0)
        return rc;
    rq->in_used += used;
    if (http_body_done(&b))
        return 0;
    /*
     * curl asks before it sends a large body ("Expect: 100-continue") and
     * waits a second for our go-ahead; answer at once.
     */
    if (m->expect_continue && write_all(c->fd, cont, sizeof(cont) - 1) < 0)
        return -1;
    /*
     * Then read into the buffer after the data, at most sizeof(conn->in) at
     * a time, so that what a last read brings of the next request fits in
     * conn->in once this one is answered (echo_serve_one).  A Content-Length
     * body is never read past its end.
     */
    while (!http_body_done(&b)) {
        want = sizeof(c->in);
        if (b.kind == HTTP_BODY_LENGTH && b.left < want)
            want = (size_t)b.left;
        if ((rc = echo_body_room(c, rq, want)) != 0)
            return rc;
        p = rq->body + rq->body_len;
        n = read(c->fd, p, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 400; /* the body was cut short */
        rq->rest = (size_t)(p - rq->body);
        if ((rc = echo_body_feed(rq, &b, p, (size_t)n, &used)) != 0)
            return rc;
        rq->rest += used;
        rq->rest_len = (size_t)n - used;
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

/*
 * Start a response whose body will be length bytes long; extra is more
 * field lines, each ending in CRLF, or "".
 */
static void
echo_out_head_with(struct echo_conn *c, const struct echo_req *rq, int status,
                   unsigned long long length, const char *extra)
{
    const char *conn = "";
    int n;

    if (!rq->keep_alive)
        conn = "Connection: close\r\n";
    else if (rq->msg.minor == 0)
        conn = "Connection: keep-alive\r\n"; /* 1.0 must be told it stays */
    n = snprintf(c->out + c->out_len, sizeof(c->out) - c->out_len,
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: text/plain\r\n"
                 "Content-Length: %llu\r\n"
                 "X-Served-By: :%u\r\n"
                 "X-Echo-Conn: %lu\r\n"
                 "%s%s\r\n",
                 status, http_reason(status), length, c->srv->port, c->serial,
                 extra, conn);
    c->out_len += (size_t)n; /* a head is < 512 bytes and out[] was empty */
    c->drop_body = rq->no_body;
}

static void
echo_out_head(struct echo_conn *c, const struct echo_req *rq, int status,
              unsigned long long length)
{
    echo_out_head_with(c, rq, status, length, "");
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
    snprintf(text, sizeof(text), "%s\n", http_reason(status));
    (void)echo_send_text(c, rq, status, text);
}

/* "echo GET /x?y (served by :9001)\n", then the request body. */
static int
echo_send_echo(struct echo_conn *c, const struct echo_req *rq)
{
    const struct http_msg *m = &rq->msg;
    char tail[32];
    size_t tail_len;

    tail_len = (size_t)snprintf(tail, sizeof(tail), " (served by :%u)\n",
                                c->srv->port);
    echo_out_head(c, rq, 200,
                  5 + m->method_len + 1 + m->target_len + tail_len +
                      rq->body_len);
    echo_out(c, "echo ", 5);
    echo_out(c, m->method, m->method_len);
    echo_out(c, " ", 1);
    echo_out(c, m->target, m->target_len);
    echo_out(c, tail, tail_len);
    echo_out(c, rq->body, rq->body_len);
    return echo_flush(c);
}

/*
 * /headers: the request's field lines in the order they came, one
 * "Name: value\n" each, so that a test can see what a proxy forwarded.
 * The name is as sent; the value is without the whitespace around it.
 */
static int
echo_send_headers(struct echo_conn *c, const struct echo_req *rq)
{
    const struct http_msg *m = &rq->msg;
    unsigned long long len = 0;
    size_t i;

    for (i = 0; i < m->nfields; i++)
        len += m->fields[i].name_len + 2 + m->fields[i].value_len + 1;
    echo_out_head(c, rq, 200, len);
    for (i = 0; i < m->nfields; i++) {
        echo_out(c, m->fields[i].name, m->fields[i].name_len);
        echo_out(c, ": ", 2);
        echo_out(c, m->fields[i].value, m->fields[i].value_len);
        echo_out(c, "\n", 1);
    }
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

/*
 * MODE=model.  A model request costs
 *
 *   ms = (MODEL_BASE_MS + tokens * MODEL_TOKEN_US / 1000) * slow * load
 *        * (1 + j)
 *
 * rounded to a whole ms and capped at ECHO_MS_MAX.  slow is the factor of
 * /admin/slow.  load is 1 while at most MODEL_CAPACITY model requests are
 * served at once, this one included, and active / MODEL_CAPACITY past
 * that: a saturated server is slower for everyone, as real ones are.  It
 * is taken when the request starts.  j is uniform in [-MODEL_JITTER_PCT,
 * +MODEL_JITTER_PCT] percent.
 */

/*
 * A number in [0, 1]: the serial-th output of splitmix64 seeded with seed.
 * That generator's state after n steps is seed + n * its constant, so a
 * step is computed directly: threads share no generator state to race on,
 * and a run with the same seed and the same order of requests draws the
 * same numbers.
 */
static double
echo_model_draw(uint64_t seed, uint64_t serial)
{
    uint64_t z = seed + serial * 0x9e3779b97f4a7c15ULL;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / (double)((1ULL << 53) - 1); /* top 53 bits */
}

/* The latency of a request of tokens; active counts it too. */
static unsigned long long
echo_model_ms(struct echo_model *m, unsigned long long tokens,
              unsigned long active, unsigned long serial)
{
    double ms, load = 1.0, u, j;

    ms = (double)m->base_ms + (double)tokens * (double)m->token_us / 1000.0;
    if (active > m->capacity)
        load = (double)active / (double)m->capacity;
    u = echo_model_draw(m->seed, serial);
    j = (2.0 * u - 1.0) * (double)m->jitter_pct / 100.0;
    ms *= (double)atomic_load(&m->slow) * load * (1.0 + j);
    /* Compared as a double: tokens * slow * load can overflow an integer. */
    if (ms >= (double)ECHO_MS_MAX)
        return ECHO_MS_MAX;
    return (unsigned long long)(ms + 0.5);
}

/*
 * The request's tokens: its X-Token-Estimate (the first one), else a
 * guess from its body at 4 bytes a token, the rule of thumb for English
 * text, and at least 1: even an empty prompt costs a step.
 */
static int
echo_model_tokens(const struct echo_req *rq, unsigned long long *tokens)
{
    const struct http_msg *m = &rq->msg;
    const struct http_field *f;
    size_t i;

    for (i = 0; i < m->nfields; i++) {
        f = &m->fields[i];
        if (!http_field_is(f, "X-Token-Estimate"))
            continue;
        if (echo_digits(f->value, f->value_len, ECHO_TOKENS_MAX, tokens) < 0)
            return 400;
        return 0;
    }
    *tokens = (rq->body_len + 3) / 4;
    if (*tokens == 0)
        *tokens = 1;
    return 0;
}

/* "model :9001 tokens 3 ms 20\n", with X-Tokens and X-Model-Ms. */
static int
echo_send_model(struct echo_conn *c, const struct echo_req *rq,
                unsigned long long tokens, unsigned long long ms)
{
    char extra[96], text[96];

    snprintf(extra, sizeof(extra), "X-Tokens: %llu\r\nX-Model-Ms: %llu\r\n",
             tokens, ms);
    snprintf(text, sizeof(text), "model :%u tokens %llu ms %llu\n",
             c->srv->port, tokens, ms);
    echo_out_head_with(c, rq, 200, strlen(text), extra);
    echo_out(c, text, strlen(text));
    return echo_flush(c);
}

/* MODE=model's own paths: /admin/slow/<factor>; any other, a model request. */
static int
echo_model(struct echo_conn *c, const struct echo_req *rq, const char *path,
           size_t len)
{
    struct echo_model *m = &c->srv->model;
    unsigned long long tokens, ms, f;
    unsigned long active, serial;
    const char *arg;
    size_t alen;
    char text[32];
    int rc;

    if ((arg = echo_path_arg(path, len, "/admin/slow/", &alen)) != NULL) {
        if (echo_digits(arg, alen, ECHO_SLOW_MAX, &f) < 0 || f == 0)
            return 400;
        atomic_store(&m->slow, (unsigned)f);
        log_info("slow factor %llu set by %s", f, c->peer);
        snprintf(text, sizeof(text), "slow %llu\n", f);
        return echo_send_text(c, rq, 200, text);
    }
    if ((rc = echo_model_tokens(rq, &tokens)) != 0)
        return rc;
    /* Counted until the answer is out: a request holds its place meanwhile. */
    active = atomic_fetch_add(&m->active, 1) + 1;
    serial = atomic_fetch_add(&m->served, 1) + 1;
    ms = echo_model_ms(m, tokens, active, serial);
    echo_sleep_ms(ms);
    rc = echo_send_model(c, rq, tokens, ms);
    atomic_fetch_sub(&m->active, 1);
    return rc;
}

/* Answer one request.  Routing looks at the path, without the query. */
static int
echo_route(struct echo_conn *c, const struct echo_req *rq)
{
    struct echo_server *srv = c->srv;
    const char *path = rq->msg.target, *q, *arg, *slash;
    size_t len = rq->msg.target_len, alen;
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
    if (len == 8 && memcmp(path, "/headers", 8) == 0)
        return echo_send_headers(c, rq);
    if ((arg = echo_path_arg(path, len, "/delay/", &alen)) != NULL) {
        if (echo_digits(arg, alen, ECHO_MS_MAX, &ms) < 0)
            return 400;
        echo_sleep_ms(ms);
        return echo_send_echo(c, rq);
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
    if (srv->mode == ECHO_MODEL)
        return echo_model(c, rq, path, len);
    return echo_send_echo(c, rq);
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
    int rc;

    memset(&rq, 0, sizeof(rq));
    rc = echo_read_head(c, &rq);
    if (rc == 0)
        rc = echo_parse_head(c, &rq);
    if (rc == 0)
        rc = echo_read_body(c, &rq);
    if (rc == 0)
        rc = echo_route(c, &rq);
    if (rc > 0)
        echo_send_error(c, &rq, rc);
    if (rc == 0) {
        /*
         * Keep what follows this request: the start of a pipelined next
         * one, in conn->in after the head or, when the body had to be
         * read, in rq.body after the data (then conn->in is all used).
         */
        memmove(c->in, c->in + rq.in_used, c->len - rq.in_used);
        c->len -= rq.in_used;
        if (rq.rest_len > 0) {
            memcpy(c->in + c->len, rq.body + rq.rest, rq.rest_len);
            c->len += rq.rest_len;
        }
    }
    free(rq.body);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
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
    /* Numbered at accept, so that even a client we fail to serve counts. */
    unsigned long serial = atomic_fetch_add(&srv->conns, 1) + 1;

    if ((c = malloc(sizeof(*c))) == NULL)
        goto fail;
    c->srv = srv;
    c->fd = fd;
    c->serial = serial;
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

/* MODE=model's settings, each with the usual exit 2 on a bad value. */
static void
echo_model_config(struct echo_model *m)
{
    m->base_ms = config_range("MODEL_BASE_MS", 20, 0, 60000);
    m->token_us = config_range("MODEL_TOKEN_US", 100, 0, 1000000);
    m->capacity = config_range("MODEL_CAPACITY", 8, 1, 100000);
    m->jitter_pct = config_range("MODEL_JITTER_PCT", 10, 0, 90);
    m->seed = config_range("MODEL_SEED", 1, 0, CONFIG_NUMBER_MAX);
    log_info("model: MODEL_BASE_MS=%lu MODEL_TOKEN_US=%lu MODEL_CAPACITY=%lu "
             "MODEL_JITTER_PCT=%lu MODEL_SEED=%llu",
             m->base_ms, m->token_us, m->capacity, m->jitter_pct,
             (unsigned long long)m->seed);
}

/* PORT, MODE and MODE=model's; exits 2 with the usual one line if bad. */
static void
echo_config(struct echo_server *srv, struct addr *a)
{
    const char *v = getenv("PORT"), *why;
    unsigned long port = 9001;

    log_init();
    /* config_number() allows up to CONFIG_NUMBER_MAX; a port stops lower. */
    if (v != NULL && number_parse(v, 65535, &port, &why) < 0)
        config_fail("PORT",
                    strcmp(why, "too large") == 0 ? "port out of range" : why,
                    v);
    srv->mode = (enum echo_mode)config_choice("MODE", "http", echo_modes);
    if (srv->mode == ECHO_MODEL)
        echo_model_config(&srv->model);
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
    atomic_init(&srv.conns, 0);
    atomic_init(&srv.model.slow, 1);
    atomic_init(&srv.model.active, 0);
    atomic_init(&srv.model.served, 0);

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
    log_info("echo listening on %s, mode %s", bound, echo_modes[srv.mode]);

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
