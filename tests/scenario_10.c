/*
 * scenario_10.c - chapter 10 (http): MODE=http, where Harbor reads every
 * request and response instead of copying bytes.  Each request is balanced
 * on its own, over upstream connections kept in an idle pool; hop-by-hop
 * fields stay on their hop; framing is strict, and every ambiguous message
 * is refused before a byte of it can reach a backend.  Most scenarios watch
 * both ends: the client's replies, and, through a backend of the test's
 * own that records every byte, what Harbor sent upstream.
 */
#define _GNU_SOURCE /* memmem, pipe2, accept4 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "http.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Every Harbor here: http mode, and no health checks, whose connections
 * would count as connections of the backend's. */
#define HTTP_MODE "MODE=http", "HEALTH_CHECK=off"

/* Where a timeout is the point: short, so the suite stays quick. */
#define SHORT_MS   300
#define SHORT_MS_S "300"
#define EARLY_MS   280 /* "no sooner than SHORT_MS", give or take a tick */

/* The words of the status lines these scenarios expect (RFC 9110 §15). */
static const struct {
    int code;
    const char *reason;
} reasons[] = {
    {400, "Bad Request"},
    {408, "Request Timeout"},
    {431, "Request Header Fields Too Large"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

/* The innocent request that follows each row of the smuggling table. */
static const char second_target[] = "/second";
/* What a status line starts with, counted in a cut response. */
static const char status_start[] = "HTTP/1.1 ";
/* The interim answer to Expect: 100-continue, as echo words it. */
static const char continue_line[] = "HTTP/1.1 100 Continue\r\n";

/* ---- replies: what the client reads -------------------------------------- */

/*
 * Replies are parsed here without common/http.c, so that a bug there
 * cannot hide itself: a status line, field lines ending in CRLF or LF, and
 * a body by Content-Length, by the close, or none (1xx, 204, 304, HEAD).
 */
#define REPLIES_MAX 16

struct reply {
    int status;
    size_t head, head_len; /* offsets into raw */
    size_t body, body_len;
};

struct replies {
    struct harness_buf raw; /* every byte read */
    struct reply r[REPLIES_MAX];
    int n;          /* whole replies in raw, 1xx ones included */
    size_t used;    /* the bytes of raw those n take */
    unsigned heads; /* bit i: reply i answers a HEAD (the caller's) */
    int want;       /* stop reading once n reaches it */
    int garbage;    /* raw[used] does not start a reply */
    int tunnel;     /* a 101 came: what follows is not HTTP */
    enum harness_end end;
};

/* The end of the head at p[0..n), just past its empty line, or 0. */
static size_t
head_end(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n')
            return i + 2;
        if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/*
 * How many of the lines "Name: value" in p[0..n) are named name (any
 * case); the first one's value, trimmed, into out (if not NULL).
 */
static int
lines_field(const char *p, size_t n, const char *name, char *out, size_t len)
{
    size_t nlen = strlen(name);
    const char *end = p + n;
    int found = 0;

    if (out != NULL)
        out[0] = '\0';
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *v, *e;

        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 &&
            p[nlen] == ':') {
            v = p + nlen + 1;
            e = eol;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (found++ == 0 && out != NULL)
                snprintf(out, len, "%.*s", (int)(e - v), v);
        }
        p = eol + 1;
    }
    return found;
}

/* The same for the fields of reply i (its status line is no field). */
static int
reply_field(const struct replies *rp, int i, const char *name, char *out,
            size_t len)
{
    const char *h = (const char *)rp->raw.data + rp->r[i].head;
    const char *first = memchr(h, '\n', rp->r[i].head_len);

    return lines_field(first + 1, rp->r[i].head_len - (size_t)(first + 1 - h),
                       name, out, len);
}

static const char *
reply_body(const struct replies *rp, int i)
{
    return (const char *)rp->raw.data + rp->r[i].body;
}

static int
body_is(const struct replies *rp, int i, const char *text)
{
    return rp->r[i].body_len == strlen(text) &&
           memcmp(reply_body(rp, i), text, strlen(text)) == 0;
}

static int
body_starts(const struct replies *rp, int i, const char *text)
{
    return rp->r[i].body_len >= strlen(text) &&
           memcmp(reply_body(rp, i), text, strlen(text)) == 0;
}

static int
body_ends(const struct replies *rp, int i, const void *tail, size_t n)
{
    return rp->r[i].body_len >= n &&
           memcmp(reply_body(rp, i) + rp->r[i].body_len - n, tail, n) == 0;
}

/* Parse the whole replies that follow rp->used; at EOF a body without a
 * length ends with the bytes. */
static void
replies_parse(struct replies *rp, int eof)
{
    while (rp->n < REPLIES_MAX && !rp->garbage && !rp->tunnel) {
        const char *p = (const char *)rp->raw.data + rp->used;
        size_t left = rp->raw.len - rp->used, hl, body;
        struct reply *r = &rp->r[rp->n];
        char cl[32];

        if (left >= 9 && (memcmp(p, status_start, 7) != 0 ||
                          (p[7] != '0' && p[7] != '1') || p[8] != ' '))
            rp->garbage = 1;
        if (rp->garbage || (hl = head_end(p, left)) == 0 || hl < 13)
            return;
        r->status = atoi(p + 9);
        r->head = rp->used;
        r->head_len = hl;
        r->body = rp->used + hl;
        if (r->status < 200 || r->status == 204 || r->status == 304 ||
            (rp->heads & (1u << rp->n)))
            body = 0;
        else if (reply_field(rp, rp->n, "Content-Length", cl, sizeof cl) > 0)
            body = (size_t)strtoull(cl, NULL, 10);
        else if (eof)
            body = left - hl;
        else
            return;
        if (left - hl < body)
            return;
        r->body_len = body;
        rp->used += hl + body;
        rp->tunnel = r->status == 101;
        rp->n++;
    }
}

static int
replies_done(const struct harness_buf *in, void *arg)
{
    struct replies *rp = arg;

    (void)in;
    replies_parse(rp, 0);
    return rp->n >= rp->want || rp->garbage;
}

/*
 * Send req[0..len) on fd while reading, until want more replies are whole,
 * the connection ends, or HARNESS_XFER_MS: the count of whole replies.
 */
static int
replies_read(int fd, const void *req, size_t len, int want, struct replies *rp)
{
    rp->want = rp->n + want;
    rp->end = harness_exchange_until(fd, req, len, &rp->raw, HARNESS_XFER_MS,
                                     replies_done, rp);
    if (rp->end == HARNESS_EOF || rp->end == HARNESS_RESET)
        replies_parse(rp, 1);
    return rp->n;
}

static void
replies_free(struct replies *rp)
{
    harness_buf_free(&rp->raw);
    memset(rp, 0, sizeof *rp);
}

/* The same, failing the test unless want replies came; harbor's log tail
 * goes into the message. */
static void
expect_replies(int fd, const void *req, size_t len, int want,
               struct replies *rp, struct harness_proc *harbor)
{
    int had = rp->n;

    ck_assert_msg(replies_read(fd, req, len, want, rp) >= had + want,
                  "%d of %d replies (%s%s) to \"%.40s\"; read: \"%.200s\"; "
                  "harbor: %s",
                  rp->n - had, want, harness_end_name(rp->end),
                  rp->garbage ? ", not a reply" : "",
                  req != NULL ? (const char *)req : "",
                  rp->raw.data != NULL ? (const char *)rp->raw.data : "",
                  harness_log_tail(harbor));
}

/* One request, its whole reply in rp, or the test fails. */
static void
ask(int fd, const char *req, struct replies *rp, struct harness_proc *harbor)
{
    expect_replies(fd, req, strlen(req), 1, rp, harbor);
}

/*
 * The connection is closed with nothing after the replies: a FIN within
 * HARNESS_PROMPT_MS, no byte more.  finish_quietly() sends ours first, as
 * a client done with a keep-alive connection does.
 */
static void
expect_closed(int fd, struct replies *rp)
{
    enum harness_end end = rp->end;

    if (end != HARNESS_EOF)
        end = harness_read_to_end(fd, &rp->raw, HARNESS_PROMPT_MS);
    ck_assert_msg(end == HARNESS_EOF, "after the reply: %s, not a close",
                  harness_end_name(end));
    ck_assert_msg(rp->raw.len == rp->used,
                  "%zu bytes after the replies: %.200s", rp->raw.len - rp->used,
                  (const char *)rp->raw.data + rp->used);
    close(fd);
}

static void
finish_quietly(int fd, struct replies *rp)
{
    shutdown(fd, SHUT_WR);
    rp->end = harness_read_to_end(fd, &rp->raw, HARNESS_PROMPT_MS);
    expect_closed(fd, rp);
}

static const char *
reason_of(int code)
{
    for (int i = 0; i < COUNT(reasons); i++)
        if (reasons[i].code == code)
            return reasons[i].reason;
    return "?";
}

/*
 * Reply i is Harbor's own answer with code: the status line, Content-Type
 * text/plain, Connection: close, and the body "<code> <reason>\n".
 */
static void
assert_own_answer(const struct replies *rp, int i, int code, const char *what)
{
    char want[80], got[80];
    const char *head;

    ck_assert_msg(rp->n > i, "%s: no whole reply (%s): \"%.200s\"", what,
                  harness_end_name(rp->end),
                  rp->raw.data != NULL ? (const char *)rp->raw.data : "");
    head = (const char *)rp->raw.data + rp->r[i].head;
    snprintf(want, sizeof want, CONTRACT_OWN_STATUS "\r\n", code,
             reason_of(code));
    ck_assert_msg(strncmp(head, want, strlen(want)) == 0,
                  "%s: want \"%.*s\", got \"%.*s\"", what,
                  (int)strlen(want) - 2, want, (int)strcspn(head, "\r\n"),
                  head);
    reply_field(rp, i, "Content-Type", got, sizeof got);
    ck_assert_msg(strcmp(got, CONTRACT_OWN_TYPE) == 0,
                  "%s: Content-Type \"%s\"", what, got);
    reply_field(rp, i, "Connection", got, sizeof got);
    ck_assert_msg(strcmp(got, CONTRACT_CLOSE) == 0, "%s: Connection \"%s\"",
                  what, got);
    snprintf(want, sizeof want, CONTRACT_OWN_BODY "\n", code, reason_of(code));
    ck_assert_msg(body_is(rp, i, want), "%s: body \"%.*s\", want \"%s\"", what,
                  (int)rp->r[i].body_len, reply_body(rp, i), want);
}

/* Which of the stage's backends served reply i (X-Served-By), or -1. */
static int
served_by(const struct harness_stage *st, const struct replies *rp, int i)
{
    char v[32];
    unsigned port;

    reply_field(rp, i, "X-Served-By", v, sizeof v);
    port = harness_port_of(v);
    for (int b = 0; b < st->n; b++)
        if (port != 0 && st->port[b] == port)
            return b;
    return -1;
}

/* X-Echo-Conn of reply i: echo's serial number of its connection, or -1. */
static long
echo_conn(const struct replies *rp, int i)
{
    char v[32];

    if (reply_field(rp, i, "X-Echo-Conn", v, sizeof v) != 1)
        return -1;
    return strtol(v, NULL, 10);
}

static int
connect_to(struct harness_proc *harbor)
{
    int fd = harness_connect(harbor->port);

    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    return fd;
}

/* ---- a backend of the test's own ----------------------------------------- */

/*
 * A raw backend: one thread that accepts on 127.0.0.1:0, keeps every byte
 * each connection sends, frames the requests in them with common/http.c,
 * and answers from a script.  It lets a test see exactly what Harbor sent
 * upstream, and misbehave in ways echo never does.
 *
 * DESIGN: the thread owns the listener and every accepted fd, and closes
 * them; the test thread only reads what is recorded, under lock, while the
 * thread runs, and all of it after raw_stop() has joined the thread.  The
 * thread polls with a timeout, and a byte on the wake pipe ends it.
 * Connections that close without sending a byte (health checks) leave no
 * record.  The script's rules apply to the first connection that carries
 * a request (serial 0); every later one just answers.
 */
enum raw_then {
    RAW_SERVE, /* answer every request */
    RAW_FIN,   /* after the answers: close the connection */
    RAW_DROP   /* after the answers: close it when the next request comes */
};

struct raw_script {
    const char *reply;  /* the bytes of every answer; NULL: a 200 naming it */
    int answers;        /* serial 0 answers this many requests, */
    enum raw_then then; /* then does this */
    int upgrade;        /* answer the first with 101, then echo bytes */
    int unlisten;       /* close the listener after the first answer */
};

#define RAW_CONNS    32
#define RAW_REQUESTS 64

struct raw_request {
    int serial; /* of its connection */
    char method[16];
    char target[96];
    struct harness_buf data; /* its body, decoded */
    int answered;
};

struct raw_conn {
    int fd;                /* -1: a free slot, or closed */
    int serial;            /* among connections with a request; -1: none */
    struct harness_buf in; /* every byte it sent */
    size_t pos;            /* in[0..pos) is framed */
    int in_body;           /* pos is in a body that body frames */
    struct http_body body;
    int head_request; /* that body's request is a HEAD */
    int req;          /* its index in raw.req, -1 past RAW_REQUESTS */
    int requests, answered;
    int tunnel;      /* a 101 went out: bytes are echoed */
    int eof;         /* the peer closed, or reset */
    long eof_ms;     /* when */
    int closed;      /* closed by us (RAW_FIN, RAW_DROP, bad framing) */
    const char *why; /* the framing broke: what http.c said */
};

struct raw {
    struct raw_script script;
    unsigned port;
    int lfd, wake[2]; /* the thread's */
    int unlisten_now; /* the thread's: close lfd after this answer */
    pthread_t thread;
    pthread_mutex_t lock;   /* guards everything below */
    pthread_cond_t changed; /* broadcast after every change */
    struct raw_conn conn[RAW_CONNS];
    int served; /* connections that sent a request */
    struct raw_request req[RAW_REQUESTS];
    int nreq;
};

static const char raw_switching[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                    "Connection: upgrade\r\nUpgrade: x\r\n\r\n";
static const char raw_bye[] = "bye\n"; /* a tunnel's last word, after EOF */

static void
append(struct harness_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 4096;
        unsigned char *d;

        while (cap < b->len + n + 1)
            cap *= 2;
        ck_assert_msg((d = realloc(b->data, cap)) != NULL, "out of memory");
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* Write the answer to the request just framed on c into out.  Caller
 * holds r->lock. */
static void
raw_answer(struct raw *r, struct raw_conn *c, struct harness_buf *out)
{
    const struct raw_request *q = c->req >= 0 ? &r->req[c->req] : NULL;
    char head[128], body[160];
    int n;

    if (r->script.upgrade && c->answered == 0) {
        append(out, raw_switching, sizeof raw_switching - 1);
    } else if (r->script.reply != NULL) {
        append(out, r->script.reply, strlen(r->script.reply));
    } else {
        n = snprintf(body, sizeof body, "%s %s\n", q ? q->method : "?",
                     q ? q->target : "?");
        append(out, head,
               (size_t)snprintf(head, sizeof head,
                                "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
                                n));
        if (!c->head_request)
            append(out, body, (size_t)n);
    }
    c->answered++;
    if (c->req >= 0)
        r->req[c->req].answered = 1;
    if (r->script.unlisten)
        r->unlisten_now = 1;
}

/* A request head was parsed on c: record it.  Caller holds r->lock. */
static void
raw_log(struct raw *r, struct raw_conn *c, const struct http_msg *m)
{
    struct raw_request *q;

    if (c->serial < 0)
        c->serial = r->served++;
    c->requests++;
    c->req = r->nreq < RAW_REQUESTS ? r->nreq++ : -1;
    if (c->req < 0)
        return;
    q = &r->req[c->req];
    q->serial = c->serial;
    snprintf(q->method, sizeof q->method, "%.*s", (int)m->method_len,
             m->method);
    snprintf(q->target, sizeof q->target, "%.*s", (int)m->target_len,
             m->target);
}

/*
 * Frame what c has sent, answering each whole request into out: 1 when c
 * is to be closed after out is sent.  Caller holds r->lock.
 */
static int
raw_frame(struct raw *r, struct raw_conn *c, struct harness_buf *out)
{
    const struct raw_script *s = &r->script;
    struct http_msg m;

    while (!c->tunnel) {
        const char *p = (const char *)c->in.data + c->pos;
        size_t n = c->in.len - c->pos, end, data;
        long took;

        if (!c->in_body) {
            if (n == 0 || (end = http_head_end(p, n)) == 0)
                return 0;
            if (http_parse_request(p, end, &m) != 0) {
                c->why = m.why != NULL ? m.why : "a bad head";
                return 1;
            }
            raw_log(r, c, &m);
            if (c->serial == 0 && s->then == RAW_DROP &&
                c->answered == s->answers)
                return 1;
            c->head_request =
                m.method_len == 4 && memcmp(m.method, "HEAD", 4) == 0;
            http_body_init(&c->body, &m);
            c->pos += end;
            c->in_body = 1;
        } else if (!http_body_done(&c->body)) {
            if (n == 0)
                return 0;
            if ((took = http_body_take(&c->body, p, n, &data)) < 0) {
                c->why = "bad chunked framing";
                return 1;
            }
            if (data > 0 && c->req >= 0)
                append(&r->req[c->req].data, p, data);
            c->pos += (size_t)took;
        } else {
            c->in_body = 0;
            raw_answer(r, c, out);
            c->tunnel = s->upgrade && c->answered == 1;
            if (c->serial == 0 && s->then == RAW_FIN &&
                c->answered == s->answers)
                return 1;
        }
    }
    /* A tunnel echoes what comes, and what came with the request. */
    append(out, c->in.data + c->pos, c->in.len - c->pos);
    c->pos = c->in.len;
    return 0;
}

static void
raw_accept(struct raw *r)
{
    int fd = harness_accept(r->lfd, 0);

    if (fd < 0)
        return;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < RAW_CONNS; i++) {
        struct raw_conn *c = &r->conn[i];

        if (c->fd < 0 && c->serial < 0 && c->in.len == 0) {
            memset(c, 0, sizeof *c);
            c->fd = fd;
            c->serial = c->req = -1;
            fd = -1;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (fd >= 0)
        close(fd); /* every slot taken: a test with too many connections */
}

/* Read what c has for us, answer it, and close c when it ends. */
static void
raw_read(struct raw *r, struct raw_conn *c)
{
    struct harness_buf out = {0};
    char chunk[16384];
    ssize_t n = recv(c->fd, chunk, sizeof chunk, MSG_DONTWAIT);
    int end = 0, unlisten;

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    pthread_mutex_lock(&r->lock);
    if (n > 0) {
        append(&c->in, chunk, (size_t)n);
        end = raw_frame(r, c, &out);
    } else {
        c->eof = end = 1;
        c->eof_ms = harness_now_ms();
        if (c->tunnel)
            append(&out, raw_bye, sizeof raw_bye - 1);
    }
    unlisten = r->unlisten_now;
    r->unlisten_now = 0;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);

    /* Never a write under the lock: the test may be waiting on it. */
    if (out.len > 0)
        harness_send_all(c->fd, out.data, out.len);
    harness_buf_free(&out);
    if (unlisten && r->lfd >= 0) {
        close(r->lfd); /* connects are refused from now on */
        r->lfd = -1;
    }
    if (end) {
        close(c->fd);
        pthread_mutex_lock(&r->lock);
        c->fd = -1;
        c->closed = !c->eof;
        pthread_cond_broadcast(&r->changed);
        pthread_mutex_unlock(&r->lock);
    }
}

static void *
raw_main(void *arg)
{
    struct raw *r = arg;

    for (;;) {
        struct pollfd pfd[RAW_CONNS + 2];
        struct raw_conn *of[RAW_CONNS + 2];
        int n = 0;

        pfd[n++] = (struct pollfd){r->wake[0], POLLIN, 0};
        if (r->lfd >= 0) {
            of[n] = NULL;
            pfd[n++] = (struct pollfd){r->lfd, POLLIN, 0};
        }
        for (int i = 0; i < RAW_CONNS; i++) {
            if (r->conn[i].fd >= 0) {
                of[n] = &r->conn[i];
                pfd[n++] = (struct pollfd){r->conn[i].fd, POLLIN, 0};
            }
        }
        if (poll(pfd, (nfds_t)n, HARNESS_IO_MS) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents != 0)
            break; /* raw_stop() */
        for (int k = 1; k < n; k++) {
            if (pfd[k].revents == 0)
                continue;
            if (of[k] == NULL)
                raw_accept(r);
            else
                raw_read(r, of[k]);
        }
    }
    return NULL;
}

static struct raw *
raw_start(const struct raw_script *script)
{
    struct raw *r = calloc(1, sizeof *r);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    pthread_condattr_t ca;

    ck_assert_msg(r != NULL, "out of memory");
    r->script = *script;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_msg(r->lfd >= 0 &&
                      bind(r->lfd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
                      listen(r->lfd, 16) == 0 &&
                      getsockname(r->lfd, (struct sockaddr *)&sin, &len) == 0,
                  "raw backend: %s", strerror(errno));
    r->port = ntohs(sin.sin_port);
    ck_assert_msg(pipe2(r->wake, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    for (int i = 0; i < RAW_CONNS; i++)
        r->conn[i].fd = r->conn[i].serial = r->conn[i].req = -1;
    pthread_mutex_init(&r->lock, NULL);
    /* The waits below count in harness_now_ms()'s clock. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->changed, &ca);
    pthread_condattr_destroy(&ca);
    ck_assert_int_eq(pthread_create(&r->thread, NULL, raw_main, r), 0);
    return r;
}

/* End the thread and close its sockets; the record stays for the test. */
static void
raw_stop(struct raw *r)
{
    ck_assert(write(r->wake[1], "x", 1) == 1);
    pthread_join(r->thread, NULL);
    for (int i = 0; i < RAW_CONNS; i++)
        if (r->conn[i].fd >= 0)
            close(r->conn[i].fd);
    if (r->lfd >= 0)
        close(r->lfd);
    close(r->wake[0]);
    close(r->wake[1]);
}

static void
raw_free(struct raw *r)
{
    for (int i = 0; i < RAW_CONNS; i++)
        harness_buf_free(&r->conn[i].in);
    for (int i = 0; i < RAW_REQUESTS; i++)
        harness_buf_free(&r->req[i].data);
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* The connection with serial, or NULL.  Caller holds r->lock, or the
 * thread has ended. */
static struct raw_conn *
raw_conn(struct raw *r, int serial)
{
    for (int i = 0; i < RAW_CONNS; i++)
        if (r->conn[i].serial == serial)
            return &r->conn[i];
    return NULL;
}

/*
 * Wait up to timeout_ms for connection serial to end: by its peer's EOF
 * when peer is set, else by either side.  When its peer's EOF came (in
 * harness_now_ms() time), 0 if it has not, or -1 on the timeout.
 */
static long
raw_wait_end(struct raw *r, int serial, int peer, int timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms, when = -1;
    struct timespec ts;
    struct raw_conn *c;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    for (;;) {
        c = raw_conn(r, serial);
        if (c != NULL && (c->eof || (!peer && c->closed))) {
            when = c->eof ? c->eof_ms : 0;
            break;
        }
        if (harness_now_ms() >= deadline ||
            pthread_cond_timedwait(&r->changed, &r->lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&r->lock);
    return when;
}

static struct harness_proc *
harbor_before(const struct raw *r, const char *const env[])
{
    char backends[32];

    snprintf(backends, sizeof backends, "127.0.0.1:%u", r->port);
    return harness_start_harbor(backends, env);
}

/* Does any byte any connection sent hold text? */
static int
raw_saw(const struct raw *r, const char *text)
{
    for (int i = 0; i < RAW_CONNS; i++)
        if (r->conn[i].in.len > 0 &&
            memmem(r->conn[i].in.data, r->conn[i].in.len, text, strlen(text)) !=
                NULL)
            return 1;
    return 0;
}

static const struct raw_script answer_all = {NULL, 0, RAW_SERVE, 0, 0};

/* ---- requests, balanced one by one --------------------------------------- */

/* rr over two backends, six requests on one client connection. */
START_TEST(each_request_on_a_connection_is_balanced_on_its_own)
{
    const char *env[] = {HTTP_MODE, "STRATEGY=rr", NULL};
    struct harness_stage st;
    int fd, last = -1, count[2] = {0, 0};

    harness_stage_up(&st, 2, "http", env);
    fd = connect_to(st.harbor);
    for (int i = 0; i < 6; i++) {
        struct replies rp = {0};
        char req[64], want[32];
        int b;

        snprintf(req, sizeof req, "GET /rr/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        ask(fd, req, &rp, st.harbor);
        ck_assert_int_eq(rp.r[0].status, 200);
        snprintf(want, sizeof want, "echo GET /rr/%d ", i);
        ck_assert_msg(body_starts(&rp, 0, want), "reply %d: %.*s", i,
                      (int)rp.r[0].body_len, reply_body(&rp, 0));
        ck_assert_msg((b = served_by(&st, &rp, 0)) >= 0, "no X-Served-By");
        ck_assert_msg(b != last, "requests %d and %d both went to %d", i - 1, i,
                      b);
        last = b;
        count[b]++;
        replies_free(&rp);
    }
    ck_assert_int_eq(count[0], 3);
    ck_assert_int_eq(count[1], 3);
    close(fd);
    harness_stage_down(&st);
}
END_TEST

/*
 * Five requests in one write, the slow one first and a HEAD among them,
 * over two backends: the first backend's answer comes last, and still the
 * replies come in request order.
 */
START_TEST(pipelined_requests_are_answered_in_order)
{
    static const char pipelined[] =
        "GET /delay/50 HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /p/1 HTTP/1.1\r\nHost: x\r\n\r\n"
        "HEAD /p/2 HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /p/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
        "GET /delay/10 HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char *const starts[] = {
        "echo GET /delay/50 ", "echo GET /p/1 ", "", "echo POST /p/3 ",
        "echo GET /delay/10 "};
    const char *env[] = {HTTP_MODE, "STRATEGY=rr", NULL};
    struct harness_stage st;
    struct replies rp = {0};
    char cl[32];
    int fd;

    harness_stage_up(&st, 2, "http", env);
    fd = connect_to(st.harbor);
    rp.heads = 1u << 2;
    expect_replies(fd, pipelined, sizeof pipelined - 1, 5, &rp, st.harbor);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(rp.r[i].status, 200);
        ck_assert_msg(body_starts(&rp, i, starts[i]), "reply %d: %.*s", i,
                      (int)rp.r[i].body_len, reply_body(&rp, i));
    }
    ck_assert(body_ends(&rp, 3, "\nbody", 5));
    ck_assert_int_eq(rp.r[2].body_len, 0);
    ck_assert_msg(reply_field(&rp, 2, "Content-Length", cl, sizeof cl) == 1 &&
                      atoi(cl) > 0,
                  "HEAD reply: Content-Length \"%s\"", cl);
    finish_quietly(fd, &rp);
    replies_free(&rp);
    harness_stage_down(&st);
}
END_TEST

/*
 * Ten clients one after another, each a GET with Connection: close, read
 * to the close: the echo connection each reply came on.  Harbor has put
 * the upstream connection back by the time it closes the client.
 */
static void
ten_clients(struct harness_stage *st, long conn[10])
{
    for (int i = 0; i < 10; i++) {
        struct replies rp = {0};
        int fd = connect_to(st->harbor);

        ask(fd, "GET /reuse HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            &rp, st->harbor);
        ck_assert_int_eq(rp.r[0].status, 200);
        ck_assert_msg((conn[i] = echo_conn(&rp, 0)) > 0, "no X-Echo-Conn");
        expect_closed(fd, &rp);
        replies_free(&rp);
    }
}

static const char upstream_new[] =
    "harbor_upstream_connections_total{how=\"new\"}";
static const char upstream_reused[] =
    "harbor_upstream_connections_total{how=\"reused\"}";

START_TEST(the_idle_pool_carries_requests_of_many_clients)
{
    const char *env[] = {HTTP_MODE, NULL};
    struct harness_stage st;
    unsigned metrics;
    long conn[10];

    harness_stage_up(&st, 1, "http", env);
    metrics = harness_metrics_port(st.harbor);
    ten_clients(&st, conn);
    for (int i = 1; i < 10; i++)
        ck_assert_msg(conn[i] == conn[0],
                      "client %d on echo connection %ld, client 0 on %ld", i,
                      conn[i], conn[0]);
    harness_wait_metric(metrics, upstream_new, 1);
    harness_wait_metric(metrics, upstream_reused, 9);
    harness_stage_down(&st);
}
END_TEST

START_TEST(upstream_idle_max_0_dials_for_every_request)
{
    const char *env[] = {HTTP_MODE, "UPSTREAM_IDLE_MAX=0", NULL};
    struct harness_stage st;
    unsigned metrics;
    long conn[10];

    harness_stage_up(&st, 1, "http", env);
    metrics = harness_metrics_port(st.harbor);
    ten_clients(&st, conn);
    for (int i = 1; i < 10; i++)
        ck_assert_msg(conn[i] > conn[i - 1],
                      "client %d on echo connection %ld, client %d on %ld", i,
                      conn[i], i - 1, conn[i - 1]);
    harness_wait_metric(metrics, upstream_new, 10);
    harness_wait_metric(metrics, upstream_reused, 0);
    harness_stage_down(&st);
}
END_TEST

/* ---- what is forwarded --------------------------------------------------- */

/* The field lines echo's /headers saw, the body of reply i. */
static int
seen(const struct replies *rp, int i, const char *name, char *value, size_t len)
{
    return lines_field(reply_body(rp, i), rp->r[i].body_len, name, value, len);
}

START_TEST(hop_by_hop_fields_stay_and_x_forwarded_for_grows)
{
    static const char *const dropped[] = {
        "Connection", "X-Drop",  "Keep-Alive", "Proxy-Connection",
        "TE",         "Trailer", "Upgrade"};
    const char *env[] = {HTTP_MODE, NULL};
    struct harness_stage st;
    struct replies rp = {0};
    char v[128];
    int fd;

    harness_stage_up(&st, 1, "http", env);
    fd = connect_to(st.harbor);
    ask(fd,
        "GET /headers HTTP/1.1\r\nHost: x\r\nConnection: close, X-Drop\r\n"
        "X-Drop: 1\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\n"
        "TE: trailers\r\nTrailer: X\r\nUpgrade: foo\r\nX-Keep: 1\r\n\r\n",
        &rp, st.harbor);
    ck_assert_int_eq(rp.r[0].status, 200);
    for (int i = 0; i < COUNT(dropped); i++)
        ck_assert_msg(seen(&rp, 0, dropped[i], v, sizeof v) == 0,
                      "the backend saw %s: %s", dropped[i], v);
    ck_assert(seen(&rp, 0, "X-Keep", v, sizeof v) == 1 && strcmp(v, "1") == 0);
    ck_assert(seen(&rp, 0, "Host", v, sizeof v) == 1 && strcmp(v, "x") == 0);
    ck_assert_msg(seen(&rp, 0, "X-Forwarded-For", v, sizeof v) == 1 &&
                      strcmp(v, "127.0.0.1") == 0,
                  "X-Forwarded-For: %s", v);
    reply_field(&rp, 0, "Connection", v, sizeof v);
    ck_assert_msg(strcmp(v, CONTRACT_CLOSE) == 0, "Connection: %s", v);
    expect_closed(fd, &rp);
    replies_free(&rp);

    /* Earlier proxies' addresses come first, joined by ", ". */
    fd = connect_to(st.harbor);
    ask(fd,
        "GET /headers HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
        &rp, st.harbor);
    ck_assert_msg(seen(&rp, 0, "X-Forwarded-For", v, sizeof v) == 1 &&
                      strcmp(v, "10.0.0.1, 127.0.0.1") == 0,
                  "X-Forwarded-For: %s", v);
    ask(fd,
        "GET /headers HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\n"
        "X-A: a\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n\r\n",
        &rp, st.harbor);
    ck_assert_msg(seen(&rp, 1, "X-Forwarded-For", v, sizeof v) == 1 &&
                      strcmp(v, "10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1") == 0,
                  "X-Forwarded-For: %s", v);
    finish_quietly(fd, &rp);
    replies_free(&rp);
    harness_stage_down(&st);
}
END_TEST

/* A backend's hop-by-hop fields stay on the backend's hop too. */
START_TEST(a_response_loses_its_hop_by_hop_fields)
{
    static const struct raw_script script = {
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: X-Secret\r\n"
        "X-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\n"
        "Trailer: X\r\nUpgrade: foo\r\nTE: x\r\nX-Kept: 1\r\n\r\nok\n",
        0, RAW_SERVE, 0, 0};
    static const char *const dropped[] = {"X-Secret",         "Keep-Alive",
                                          "Proxy-Connection", "Trailer",
                                          "Upgrade",          "TE"};
    const char *env[] = {HTTP_MODE, NULL};
    struct raw *raw = raw_start(&script);
    struct harness_proc *harbor = harbor_before(raw, env);
    struct replies rp = {0};
    char v[64];
    int fd = connect_to(harbor);

    ask(fd, "GET /hop HTTP/1.1\r\nHost: x\r\n\r\n", &rp, harbor);
    ck_assert_int_eq(rp.r[0].status, 200);
    ck_assert(body_is(&rp, 0, "ok\n"));
    ck_assert(reply_field(&rp, 0, "X-Kept", v, sizeof v) == 1);
    for (int i = 0; i < COUNT(dropped); i++)
        ck_assert_msg(reply_field(&rp, 0, dropped[i], v, sizeof v) == 0,
                      "the client got %s: %s", dropped[i], v);
    ck_assert_msg(reply_field(&rp, 0, "Connection", v, sizeof v) == 0 ||
                      strcmp(v, CONTRACT_CLOSE) == 0 ||
                      strcmp(v, CONTRACT_KEEP_ALIVE) == 0,
                  "Connection: %s", v);
    finish_quietly(fd, &rp);
    replies_free(&rp);
    harness_stop(harbor);
    raw_stop(raw);
    raw_free(raw);
}
END_TEST

START_TEST(an_http_1_0_client_is_closed_unless_it_asks_to_keep_alive)
{
    static const char old[] = "GET /old HTTP/1.0\r\n\r\n";
    static const char kept[] =
        "GET /kept HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    const char *env[] = {HTTP_MODE, NULL};
    struct harness_stage st;
    struct replies rp = {0};
    char v[32];
    int fd;

    harness_stage_up(&st, 1, "http", env);
    fd = connect_to(st.harbor);
    ask(fd, old, &rp, st.harbor);
    ck_assert_int_eq(rp.r[0].status, 200);
    ck_assert(body_starts(&rp, 0, "echo GET /old "));
    reply_field(&rp, 0, "Connection", v, sizeof v);
    ck_assert_msg(strcmp(v, CONTRACT_CLOSE) == 0, "Connection: %s", v);
    expect_closed(fd, &rp);
    replies_free(&rp);

    fd = connect_to(st.harbor);
    for (int i = 0; i < 2; i++) {
        ask(fd, kept, &rp, st.harbor);
        ck_assert_int_eq(rp.r[i].status, 200);
        ck_assert(body_starts(&rp, i, "echo GET /kept "));
        reply_field(&rp, i, "Connection", v, sizeof v);
        ck_assert_msg(strcmp(v, CONTRACT_KEEP_ALIVE) == 0, "Connection: %s", v);
    }
    finish_quietly(fd, &rp);
    replies_free(&rp);
    harness_stage_down(&st);
}
END_TEST

/* A HEAD's reply has a length and no body, and the next request on the
 * connection is framed right after it. */
START_TEST(head_gets_a_head_and_the_connection_goes_on)
{
    const char *env[] = {HTTP_MODE, NULL};
    struct harness_stage st;
    struct replies rp = {0};
    char cl[32];
    int fd;

    harness_stage_up(&st, 1, "http", env);
    fd = connect_to(st.harbor);
    rp.heads = 1u << 0;
    ask(fd, "HEAD /bytes/100 HTTP/1.1\r\nHost: x\r\n\r\n", &rp, st.harbor);
    ck_assert_int_eq(rp.r[0].status, 200);
    ck_assert_msg(reply_field(&rp, 0, "Content-Length", cl, sizeof cl) == 1 &&
                      strcmp(cl, "100") == 0,
                  "Content-Length: %s", cl);
    ck_assert_int_eq(rp.r[0].body_len, 0);
    ask(fd, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n", &rp, st.harbor);
    ck_assert_int_eq(rp.r[1].status, 200);
    ck_assert(body_starts(&rp, 1, "echo GET /after "));
    finish_quietly(fd, &rp);
    replies_free(&rp);
    harness_stage_down(&st);
}
END_TEST

/* ---- bodies -------------------------------------------------------------- */

#define MIB (1024 * 1024)

START_TEST(a_mebibyte_goes_up_and_one_comes_down_intact)
{
    const char *env[] = {HTTP_MODE, NULL};
    struct harness_stage st;
    struct replies rp = {0};
    struct harness_buf req = {0};
    char head[128], *body = malloc(MIB);
    int fd, n;

    ck_assert(body != NULL);
    harness_random(body, MIB, 10);
    harness_stage_up(&st, 1, "http", env);
    fd = connect_to(st.harbor);
    n = snprintf(head, sizeof head,
                 "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
                 MIB);
    append(&req, head, (size_t)n);
    append(&req, body, MIB);
    expect_replies(fd, req.data, req.len, 1, &rp, st.harbor);
    ck_assert_int_eq(rp.r[0].status, 200);
    ck_assert(body_starts(&rp, 0, "echo POST /big "));
    ck_assert_msg(body_ends(&rp, 0, body, MIB), "the body came back changed");

    ask(fd, "GET /bytes/1048576 HTTP/1.1\r\nHost: x\r\n\r\n", &rp, st.harbor);
    ck_assert_int_eq(rp.r[1].status, 200);
    ck_assert_int_eq(rp.r[1].body_len, MIB);
    for (size_t i = 0; i < MIB; i++)
        ck_assert_msg(reply_body(&rp, 1)[i] == (char)('a' + i % 26),
                      "byte %zu of /bytes is %#x", i,
                      (unsigned char)reply_body(&rp, 1)[i]);
    finish_quietly(fd, &rp);
    replies_free(&rp);
    harness_buf_free(&req);
    free(body);
    harness_stage_down(&st);
}
END_TEST

START_TEST(a_chunked_body_with_extensions_and_trailers_is_echoed)
{
    const char *env[] = {HTTP_MODE, NULL};
    struct harness_stage st;
    struct replies rp = {0};
    int fd;

    harness_stage_up(&st, 1, "http", env);
    fd = connect_to(st.harbor);
    ask(fd,
        "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        &rp, st.harbor);
    ck_assert_int_eq(rp.r[0].status, 200);
    ck_assert(body_starts(&rp, 0, "echo POST /chunked "));
    ck_assert_msg(body_ends(&rp, 0, "\nhello world", 12), "body: %.*s",
                  (int)rp.r[0].body_len, reply_body(&rp, 0));
    finish_quietly(fd, &rp);
    replies_free(&rp);
    harness_stage_down(&st);
}
END_TEST

/* The interim 100 comes before the client has sent its body. */
START_TEST(expect_100_continue_is_answered_before_the_body)
{
    const char *env[] = {HTTP_MODE, NULL};
    struct harness_stage st;
    struct replies rp = {0};
    int fd;

    harness_stage_up(&st, 1, "http", env);
    fd = connect_to(st.harbor);
    ask(fd,
        "POST /expect HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        "Content-Length: 5\r\n\r\n",
        &rp, st.harbor);
    ck_assert_int_eq(rp.r[0].status, 100);
    ck_assert(strncmp((const char *)rp.raw.data, continue_line,
                      sizeof continue_line - 1) == 0);
    ask(fd, "hello", &rp, st.harbor);
    ck_assert_int_eq(rp.r[1].status, 200);
    ck_assert(body_starts(&rp, 1, "echo POST /expect "));
    ck_assert(body_ends(&rp, 1, "\nhello", 6));
    finish_quietly(fd, &rp);
    replies_free(&rp);
    harness_stage_down(&st);
}
END_TEST

/*
 * A 101 makes the connection a tunnel: bytes go both ways, and the
 * client's half-close reaches the backend, whose last word still reaches
 * the client before its EOF.
 */
START_TEST(an_upgrade_becomes_a_tunnel_with_its_half_close)
{
    static const struct raw_script script = {NULL, 0, RAW_SERVE, 1, 0};
    const char *env[] = {HTTP_MODE, NULL};
    struct raw *raw = raw_start(&script);
    struct harness_proc *harbor = harbor_before(raw, env);
    struct replies rp = {0};
    struct harness_buf rest = {0};
    char ping[5], v[32];
    int fd = connect_to(harbor);
    struct raw_conn *c;

    ask(fd,
        "GET /up HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: x\r\n"
        "\r\n",
        &rp, harbor);
    ck_assert_int_eq(rp.r[0].status, 101);
    ck_assert_int_eq(rp.raw.len, rp.used);
    ck_assert(harness_send_all(fd, "ping\n", 5) == 0);
    ck_assert(harness_read_n(fd, ping, 5, HARNESS_XFER_MS) == HARNESS_DONE);
    ck_assert(memcmp(ping, "ping\n", 5) == 0);
    shutdown(fd, SHUT_WR);
    ck_assert_msg(harness_read_to_end(fd, &rest, HARNESS_XFER_MS) ==
                      HARNESS_EOF,
                  "no EOF after the backend's last word");
    ck_assert_msg(rest.len == sizeof raw_bye - 1 &&
                      memcmp(rest.data, raw_bye, rest.len) == 0,
                  "after the half-close: \"%.*s\"", (int)rest.len,
                  (const char *)rest.data);
    close(fd);
    ck_assert(raw_wait_end(raw, 0, 1, HARNESS_PROMPT_MS) > 0);
    harness_stop(harbor);
    raw_stop(raw);
    /* The backend was asked to upgrade, in so many words. */
    c = raw_conn(raw, 0);
    ck_assert(c != NULL && c->requests == 1);
    ck_assert(lines_field((const char *)c->in.data, c->in.len, "Upgrade", v,
                          sizeof v) == 1 &&
              strcmp(v, "x") == 0);
    ck_assert_msg(lines_field((const char *)c->in.data, c->in.len, "Connection",
                              v, sizeof v) == 1 &&
                      strcasecmp(v, "upgrade") == 0,
                  "Connection: %s", v);
    harness_buf_free(&rest);
    replies_free(&rp);
    raw_free(raw);
}
END_TEST

/* ---- Harbor's own answers ------------------------------------------------ */

/* Bytes to fill a head past MAX_HEADER_BYTES=2048, and field lines. */
#define PAD16 "0123456789abcdef"
#define PAD256                                                                 \
    PAD16 PAD16 PAD16 PAD16 PAD16 PAD16 PAD16 PAD16 PAD16 PAD16 PAD16 PAD16    \
        PAD16 PAD16 PAD16 PAD16
#define PAD2304  PAD256 PAD256 PAD256 PAD256 PAD256 PAD256 PAD256 PAD256 PAD256
#define FIELD    "X-F: 1\r\n"
#define FIELDS10 FIELD FIELD FIELD FIELD FIELD FIELD FIELD FIELD FIELD FIELD
#define FIELDS98                                                               \
    FIELDS10 FIELDS10 FIELDS10 FIELDS10 FIELDS10 FIELDS10 FIELDS10 FIELDS10    \
        FIELDS10 FIELD FIELD FIELD FIELD FIELD FIELD FIELD FIELD
#define FIELDS99 FIELDS98 FIELD

#define GET_ROOT "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

/* What the test's own backend does wrong, for the rows below. */
static const struct raw_script not_http = {"SSH-2.0-x\r\n\r\n", 1, RAW_FIN, 0,
                                           0};
static const struct raw_script two_lengths = {
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", 1,
    RAW_FIN, 0, 0};
static const struct raw_script no_head = {NULL, 0, RAW_DROP, 0, 0};
static const struct raw_script half_head = {"HTTP/1.1 200 OK\r\nContent-Le", 1,
                                            RAW_FIN, 0, 0};

#define REQUEST_TIMEOUT "REQUEST_TIMEOUT_MS=" SHORT_MS_S

/*
 * Each row: one setting (or NULL), a backend (echo unless raw or refusing
 * is set), what the client sends in one write, and the answer Harbor must
 * give itself after `before` ordinary replies, no sooner than min_ms
 * after the client connected (and, when min_ms is set, within
 * HARNESS_PROMPT_MS of it).
 */
static const struct own_case {
    const char *name;
    const char *env;
    const struct raw_script *raw;
    int refusing;
    const char *request;
    int before, code;
    long min_ms;
} own_cases[] = {
    {"half a head", REQUEST_TIMEOUT, NULL, 0, "GET / HTTP/1.1\r\nHost: x\r\n",
     0, 408, EARLY_MS},
    {"no byte at all", REQUEST_TIMEOUT, NULL, 0, "", 0, 408, EARLY_MS},
    {"half of a second head", REQUEST_TIMEOUT, NULL, 0,
     GET_ROOT "GET /2 HTTP/1.1\r\n", 1, 408, EARLY_MS},
    {"a head over MAX_HEADER_BYTES", "MAX_HEADER_BYTES=2048", NULL, 0,
     "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " PAD2304 "\r\n\r\n", 0, 431, 0},
    {"101 field lines", NULL, NULL, 0,
     "GET / HTTP/1.1\r\nHost: x\r\n" FIELDS99 FIELD "\r\n", 0, 431, 0},
    {"a backend that refuses", "RETRIES=1", NULL, 1, GET_ROOT, 0, 502, 0},
    {"a response that is not HTTP", NULL, &not_http, 0, GET_ROOT, 0, 502, 0},
    {"a response with two lengths", NULL, &two_lengths, 0, GET_ROOT, 0, 502, 0},
    {"a backend that closes before its head", NULL, &no_head, 0, GET_ROOT, 0,
     502, 0},
    {"a backend that closes in its head", NULL, &half_head, 0, GET_ROOT, 0, 502,
     0},
    {"a backend slower than RESPONSE_TIMEOUT_MS",
     "RESPONSE_TIMEOUT_MS=" SHORT_MS_S, NULL, 0,
     "GET /delay/5000 HTTP/1.1\r\nHost: x\r\n\r\n", 0, 504, EARLY_MS},
    {"Transfer-Encoding: gzip", NULL, NULL, 0,
     "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 501,
     0},
    {"CONNECT", NULL, NULL, 0, "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
     0, 501, 0},
    {"a second request with two Hosts", NULL, NULL, 0,
     GET_ROOT "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 1, 400, 0},
};

START_TEST(harbor_answers_what_goes_wrong_itself_and_closes)
{
    const struct own_case *row = &own_cases[_i];
    const char *env[] = {HTTP_MODE, row->env, NULL};
    struct harness_proc *harbor, *echo = NULL;
    struct raw *raw = NULL;
    struct replies rp = {0};
    char backends[32];
    unsigned port = 0;
    int fd, refusing = -1;
    long t0, took;

    if (row->raw != NULL) {
        raw = raw_start(row->raw);
        port = raw->port;
    } else if (row->refusing) {
        ck_assert((refusing = harness_refusing_port(&port)) >= 0);
    } else {
        echo = harness_start_echo("http", 0);
        port = echo->port;
    }
    snprintf(backends, sizeof backends, "127.0.0.1:%u", port);
    harbor = harness_start_harbor(backends, env);
    t0 = harness_now_ms();
    fd = connect_to(harbor);
    expect_replies(fd, row->request, strlen(row->request), row->before + 1, &rp,
                   harbor);
    took = harness_now_ms() - t0;
    for (int i = 0; i < row->before; i++)
        ck_assert_int_eq(rp.r[i].status, 200);
    assert_own_answer(&rp, row->before, row->code, row->name);
    ck_assert_msg(took >= row->min_ms, "%s: answered after %ld ms", row->name,
                  took);
    ck_assert_msg(row->min_ms == 0 || took < row->min_ms + HARNESS_PROMPT_MS,
                  "%s: answered after %ld ms", row->name, took);
    expect_closed(fd, &rp);
    harness_stop(harbor);
    if (raw != NULL) {
        raw_stop(raw);
        /* A request that reached a backend is not sent to another. */
        ck_assert_msg(raw->served == 1, "%s: %d connections had a request",
                      row->name, raw->served);
        raw_free(raw);
    }
    if (refusing >= 0)
        close(refusing);
    harness_stop(echo);
    replies_free(&rp);
}
END_TEST

/* A head of GET /h of exactly size bytes into buf, padded by X-Pad. */
static void
head_of(struct harness_buf *buf, size_t size)
{
    static const char start[] = "GET /h HTTP/1.1\r\nHost: x\r\nX-Pad: ";

    buf->len = 0;
    append(buf, start, sizeof start - 1);
    while (buf->len < size - 4)
        append(buf, "p", 1);
    append(buf, "\r\n\r\n", 4);
}

START_TEST(a_head_of_max_header_bytes_is_read_and_one_more_is_431)
{
    const char *env[] = {HTTP_MODE, "MAX_HEADER_BYTES=2048", NULL};
    struct harness_stage st;
    struct replies rp = {0};
    struct harness_buf head = {0};
    int fd;

    harness_stage_up(&st, 1, "http", env);
    fd = connect_to(st.harbor);
    head_of(&head, 2048);
    expect_replies(fd, head.data, head.len, 1, &rp, st.harbor);
    ck_assert_int_eq(rp.r[0].status, 200);
    finish_quietly(fd, &rp);
    replies_free(&rp);
    fd = connect_to(st.harbor);
    head_of(&head, 2049);
    expect_replies(fd, head.data, head.len, 1, &rp, st.harbor);
    assert_own_answer(&rp, 0, 431, "a head of 2049 bytes");
    expect_closed(fd, &rp);
    replies_free(&rp);
    harness_buf_free(&head);
    harness_stage_down(&st);
}
END_TEST

/* Nothing sent since the last response: no 408, just the close. */
START_TEST(a_quiet_keep_alive_connection_is_closed_without_a_word)
{
    const char *env[] = {HTTP_MODE, "REQUEST_TIMEOUT_MS=" SHORT_MS_S, NULL};
    struct harness_stage st;
    struct replies rp = {0};
    long t0, took;
    int fd;

    harness_stage_up(&st, 1, "http", env);
    fd = connect_to(st.harbor);
    t0 = harness_now_ms();
    ask(fd, GET_ROOT, &rp, st.harbor);
    ck_assert_int_eq(rp.r[0].status, 200);
    expect_closed(fd, &rp);
    took = harness_now_ms() - t0;
    ck_assert_msg(took >= EARLY_MS && took < SHORT_MS + HARNESS_PROMPT_MS,
                  "closed %ld ms after the request", took);
    replies_free(&rp);
    harness_stage_down(&st);
}
END_TEST

START_TEST(no_backend_up_is_503)
{
    const char *env[] = {"MODE=http", "HEALTH_CHECK=tcp",
                         "HEALTH_INTERVAL_MS=50", "HEALTH_FALL=1", NULL};
    struct harness_stage st;
    struct replies rp = {0};
    char addr[32], needle[64];
    int dead = harness_stage_up_dead(&st, 1, env), fd;

    snprintf(addr, sizeof addr, "127.0.0.1:%u", st.port[0]);
    snprintf(needle, sizeof needle, CONTRACT_BACKEND_DOWN, addr);
    st.harbor->log_mark = 0; /* the first check may fail before the mark */
    harness_assert_log(st.harbor, needle, NULL, 0, HARNESS_PROMPT_MS);
    fd = connect_to(st.harbor);
    ask(fd, GET_ROOT, &rp, st.harbor);
    assert_own_answer(&rp, 0, 503, "no backend up");
    expect_closed(fd, &rp);
    replies_free(&rp);
    close(dead);
    harness_stage_down(&st);
}
END_TEST

START_TEST(no_slot_within_queue_timeout_is_503)
{
    const char *env[] = {HTTP_MODE, "MAX_INFLIGHT=1", "QUEUE_TIMEOUT_MS=200",
                         NULL};
    static const char slow[] = "GET /delay/1000 HTTP/1.1\r\nHost: x\r\n\r\n";
    struct harness_stage st;
    struct replies rp = {0}, held = {0};
    unsigned metrics;
    int holder, fd;
    long t0, took;

    harness_stage_up(&st, 1, "http", env);
    metrics = harness_metrics_port(st.harbor);
    holder = connect_to(st.harbor);
    ck_assert(harness_send_all(holder, slow, sizeof slow - 1) == 0);
    harness_wait_metric(metrics, "harbor_connections_inflight", 1);
    t0 = harness_now_ms();
    fd = connect_to(st.harbor);
    ask(fd, GET_ROOT, &rp, st.harbor);
    took = harness_now_ms() - t0;
    assert_own_answer(&rp, 0, 503, "no slot");
    ck_assert_msg(took >= 190 && took < 1000, "503 after %ld ms", took);
    expect_closed(fd, &rp);
    /* The holder is served as if nothing happened. */
    expect_replies(holder, NULL, 0, 1, &held, st.harbor);
    ck_assert_int_eq(held.r[0].status, 200);
    ck_assert(body_starts(&held, 0, "echo GET /delay/1000 "));
    finish_quietly(holder, &held);
    replies_free(&held);
    replies_free(&rp);
    harness_stage_down(&st);
}
END_TEST

/* A backend that fails after its head went out: the client is just cut. */
START_TEST(a_response_cut_short_cuts_the_client)
{
    static const struct raw_script script = {
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", 1, RAW_FIN, 0, 0};
    const char *env[] = {HTTP_MODE, NULL};
    struct raw *raw = raw_start(&script);
    struct harness_proc *harbor = harbor_before(raw, env);
    struct replies rp = {0};
    int fd = connect_to(harbor);

    ck_assert_int_eq(replies_read(fd, GET_ROOT, strlen(GET_ROOT), 1, &rp), 0);
    ck_assert_msg(rp.end == HARNESS_EOF, "%s, not a close",
                  harness_end_name(rp.end));
    ck_assert_msg(rp.raw.len > 12 &&
                      memcmp(rp.raw.data, status_start, 9) == 0 &&
                      memcmp(rp.raw.data + 9, "200", 3) == 0 &&
                      memcmp(rp.raw.data + rp.raw.len - 3, "abc", 3) == 0,
                  "got: %s", (const char *)rp.raw.data);
    ck_assert_msg(memmem(rp.raw.data + 1, rp.raw.len - 1, status_start,
                         sizeof status_start - 1) == NULL,
                  "a second status line: %s", (const char *)rp.raw.data);
    close(fd);
    replies_free(&rp);
    harness_stop(harbor);
    raw_stop(raw);
    raw_free(raw);
}
END_TEST

/* ---- the idle pool ------------------------------------------------------- */

/* One GET with Connection: close, answered by the raw backend; the
 * upstream connection it took is idle in the pool once the client is
 * closed. */
static void
one_raw_get(struct harness_proc *harbor)
{
    struct replies rp = {0};
    int fd = connect_to(harbor);

    ask(fd, "GET /one HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &rp,
        harbor);
    ck_assert_int_eq(rp.r[0].status, 200);
    ck_assert(body_is(&rp, 0, "GET /one\n"));
    expect_closed(fd, &rp);
    replies_free(&rp);
}

START_TEST(an_idle_upstream_connection_is_closed_after_its_timeout)
{
    const char *env[] = {HTTP_MODE, "UPSTREAM_IDLE_TIMEOUT_MS=" SHORT_MS_S,
                         NULL};
    struct raw *raw = raw_start(&answer_all);
    struct harness_proc *harbor = harbor_before(raw, env);
    long t0 = harness_now_ms(), eof;
    struct raw_conn *c;

    one_raw_get(harbor);
    /* Checked at least every second. */
    eof = raw_wait_end(raw, 0, 1, SHORT_MS + 1000 + HARNESS_PROMPT_MS);
    ck_assert_msg(eof > 0, "the idle connection is still open");
    ck_assert_msg(eof - t0 >= EARLY_MS, "closed after %ld ms", eof - t0);
    one_raw_get(harbor); /* on a connection of its own */
    harness_stop(harbor);
    raw_stop(raw);
    c = raw_conn(raw, 1);
    ck_assert(c != NULL && c->answered == 1);
    raw_free(raw);
}
END_TEST

START_TEST(a_backend_removed_by_a_reload_loses_its_idle_connections)
{
    struct raw *raw = raw_start(&answer_all);
    struct harness_proc *harbor, *echo = harness_start_echo("http", 0);
    struct harness_file file;
    struct replies rp = {0};
    char text[64], needle[64];
    const char *env[] = {HTTP_MODE, "RELOAD_INTERVAL_MS=50", NULL, NULL};
    int fd;

    harness_file_init(&file, "upool");
    env[2] = file.env;
    snprintf(text, sizeof text, "127.0.0.1:%u\n", raw->port);
    harness_file_replace(&file, text);
    harbor = harness_start_harbor("127.0.0.1:9", env);
    one_raw_get(harbor);
    harness_log_mark(harbor);
    snprintf(text, sizeof text, "127.0.0.1:%u\n", echo->port);
    harness_file_replace(&file, text);
    snprintf(needle, sizeof needle, CONTRACT_RELOAD, 1, 1, 1);
    harness_assert_log(harbor, needle, NULL, 0, HARNESS_PROMPT_MS);
    ck_assert_msg(raw_wait_end(raw, 0, 1, HARNESS_PROMPT_MS) > 0,
                  "the removed backend's idle connection is still open");
    fd = connect_to(harbor);
    ask(fd, GET_ROOT, &rp, harbor);
    ck_assert(body_starts(&rp, 0, "echo GET / "));
    finish_quietly(fd, &rp);
    replies_free(&rp);
    harness_stop(harbor);
    harness_stop(echo);
    harness_file_remove(&file);
    raw_stop(raw);
    raw_free(raw);
}
END_TEST

/* The raw backend stops listening after its first answer: the checks
 * fail from then on, while Harbor holds the idle connection. */
START_TEST(a_backend_that_goes_down_loses_its_idle_connections)
{
    static const struct raw_script script = {NULL, 0, RAW_SERVE, 0, 1};
    const char *env[] = {"MODE=http", "HEALTH_CHECK=tcp",
                         "HEALTH_INTERVAL_MS=50", "HEALTH_FALL=1", NULL};
    struct raw *raw = raw_start(&script);
    struct harness_proc *harbor = harbor_before(raw, env);
    char addr[32], needle[64];

    one_raw_get(harbor);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", raw->port);
    snprintf(needle, sizeof needle, CONTRACT_BACKEND_DOWN, addr);
    harness_assert_log(harbor, needle, NULL, 0, HARNESS_PROMPT_MS);
    ck_assert_msg(raw_wait_end(raw, 0, 1, HARNESS_PROMPT_MS) > 0,
                  "the down backend's idle connection is still open");
    harness_stop(harbor);
    raw_stop(raw);
    raw_free(raw);
}
END_TEST

/*
 * A pooled connection the backend has closed.  RAW_FIN closes it right
 * after the first answer (Harbor may notice before it uses it, or when it
 * does); RAW_DROP takes the next request and closes without a word, which
 * is the stale connection's race played out every time.  An idempotent
 * request is sent again on a fresh connection; a POST gets 502.
 */
static const struct stale_case {
    const char *name;
    enum raw_then then;
    const char *request;
    int code;
    int conns; /* backend connections that carried a request */
} stale_cases[] = {
    {"a GET, closed after the answer", RAW_FIN,
     "GET /again HTTP/1.1\r\nHost: x\r\n\r\n", 200, 2},
    {"a GET, closed when it came", RAW_DROP,
     "GET /again HTTP/1.1\r\nHost: x\r\n\r\n", 200, 2},
    {"a PUT with a body, closed when it came", RAW_DROP,
     "PUT /again HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody", 200, 2},
    {"a POST, closed when it came", RAW_DROP,
     "POST /again HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody", 502,
     1},
};

START_TEST(a_stale_pooled_connection_is_retried_when_that_is_safe)
{
    const struct stale_case *row = &stale_cases[_i];
    const struct raw_script script = {NULL, 1, row->then, 0, 0};
    const char *env[] = {HTTP_MODE, NULL};
    struct raw *raw = raw_start(&script);
    struct harness_proc *harbor = harbor_before(raw, env);
    struct replies rp = {0};
    struct raw_conn *c;
    char want[32];
    int fd;

    one_raw_get(harbor);
    if (row->then == RAW_FIN)
        ck_assert(raw_wait_end(raw, 0, 0, HARNESS_PROMPT_MS) >= 0);
    fd = connect_to(harbor);
    ask(fd, row->request, &rp, harbor);
    if (row->code == 200) {
        snprintf(want, sizeof want, "%.*s /again\n",
                 (int)strcspn(row->request, " "), row->request);
        ck_assert_msg(rp.r[0].status == 200 && body_is(&rp, 0, want),
                      "%s: %d %.*s", row->name, rp.r[0].status,
                      (int)rp.r[0].body_len, reply_body(&rp, 0));
        finish_quietly(fd, &rp);
    } else {
        assert_own_answer(&rp, 0, row->code, row->name);
        expect_closed(fd, &rp);
    }
    harness_stop(harbor);
    raw_stop(raw);
    ck_assert_msg(raw->served == row->conns, "%s: %d connections, want %d",
                  row->name, raw->served, row->conns);
    c = raw_conn(raw, 0);
    ck_assert_int_eq(c->requests, row->then == RAW_DROP ? 2 : 1);
    if (row->conns == 2) {
        c = raw_conn(raw, 1);
        ck_assert(c->requests == 1 && c->answered == 1);
        ck_assert(strcmp(raw->req[raw->nreq - 1].target, "/again") == 0);
        ck_assert_int_eq(raw->req[raw->nreq - 1].serial, 1);
    }
    replies_free(&rp);
    raw_free(raw);
}
END_TEST

/* ---- the smuggling table ------------------------------------------------- */

/*
 * Each row is a request that front ends and back ends have been known to
 * frame differently, sent with an innocent GET /second right behind it in
 * the same write.  A refused row gets its status and the close, and the
 * backend never sees a whole request, nor a byte of /second.  An accepted
 * row is answered, then /second is, and the backend saw exactly those two.
 */
struct smuggle {
    const char *name;
    const char *bytes;
    size_t len;
    int code;    /* 0: accepted */
    int in_body; /* refused in the chunked body: its head went up */
    const char *method, *target, *data;
};

#define BAD(name, bytes, code)                                                 \
    {                                                                          \
        name, bytes, sizeof(bytes) - 1, code, 0, NULL, NULL, NULL              \
    }
#define BAD_BODY(name, bytes)                                                  \
    {                                                                          \
        name, bytes, sizeof(bytes) - 1, 400, 1, NULL, NULL, NULL               \
    }
#define GOOD(name, bytes, method, target, data)                                \
    {                                                                          \
        name, bytes, sizeof(bytes) - 1, 0, 0, method, target, data             \
    }

#define H      "Host: x\r\n"
#define POST_A "POST /a HTTP/1.1\r\n" H
#define HELLO  "5\r\nhello\r\n0\r\n\r\n"
#define TE     "Transfer-Encoding: "
#define CL     "Content-Length: "

static const struct smuggle smuggles[] = {
    BAD("CL.TE", POST_A CL "6\r\n" TE "chunked\r\n\r\n0\r\n\r\nX", 400),
    BAD("TE.CL", POST_A TE "chunked\r\n" CL "3\r\n\r\n" HELLO, 400),
    BAD("TE: chunked, identity", POST_A TE "chunked, identity\r\n\r\n" HELLO,
        400),
    BAD("TE: xchunked", POST_A TE "xchunked\r\n\r\n" HELLO, 501),
    BAD("TE: identity", POST_A TE "identity\r\n\r\n" HELLO, 501),
    BAD("TE: gzip, chunked", POST_A TE "gzip, chunked\r\n\r\n" HELLO, 501),
    BAD("TE twice: chunked, chunked",
        POST_A TE "chunked\r\n" TE "chunked\r\n\r\n" HELLO, 400),
    BAD("TE with a space before the colon",
        POST_A "Transfer-Encoding : chunked\r\n\r\n" HELLO, 400),
    BAD("TE folded onto a second line", POST_A TE "\r\n chunked\r\n\r\n" HELLO,
        400),
    BAD("TE: chunked and a vertical tab", POST_A TE "chunked\v\r\n\r\n" HELLO,
        400),
    BAD("TE: chunked;x", POST_A TE "chunked;x\r\n\r\n" HELLO, 400),
    BAD("TE with an empty element", POST_A TE ", chunked\r\n\r\n" HELLO, 400),
    BAD("two different Content-Lengths", POST_A CL "5\r\n" CL "6\r\n\r\nhello!",
        400),
    BAD("Content-Length: 5, 5", POST_A CL "5, 5\r\n\r\nhello", 400),
    BAD("Content-Length: +5", POST_A CL "+5\r\n\r\nhello", 400),
    BAD("Content-Length: -1", POST_A CL "-1\r\n\r\nhello", 400),
    BAD("Content-Length: 5 5", POST_A CL "5 5\r\n\r\nhello", 400),
    BAD("Content-Length: 0x5", POST_A CL "0x5\r\n\r\nhello", 400),
    BAD("an empty Content-Length", POST_A CL "\r\n\r\nhello", 400),
    BAD("Content-Length: 2^63", POST_A CL "9223372036854775808\r\n\r\nhello",
        400),
    BAD("Content-Length past 2^64",
        POST_A CL "99999999999999999999\r\n\r\nhello", 400),
    BAD_BODY("a chunk size of 17 hex digits", POST_A TE
             "chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n"),
    BAD_BODY("a chunk size of 17 digits, zeros first", POST_A TE
             "chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n"),
    BAD_BODY("a chunk size of 2^60",
             POST_A TE "chunked\r\n\r\n1000000000000000\r\nhello\r\n0\r\n\r\n"),
    BAD_BODY("a bad chunk extension",
             POST_A TE "chunked\r\n\r\n5;a b\r\nhello\r\n0\r\n\r\n"),
    BAD_BODY("an empty chunk extension",
             POST_A TE "chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n"),
    BAD_BODY("a bare LF after a chunk size",
             POST_A TE "chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
    BAD_BODY("no CRLF after chunk data",
             POST_A TE "chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n"),
    BAD_BODY("a folded trailer",
             POST_A TE "chunked\r\n\r\n0\r\nX-T: 1\r\n t\r\n\r\n"),
    BAD("a bare CR in a value", POST_A "X-A: a\rb\r\n" CL "5\r\n\r\nhello",
        400),
    BAD("a NUL in a value", POST_A "X-A: a\0b\r\n" CL "5\r\n\r\nhello", 400),
    BAD("a DEL in a value",
        POST_A "X-A: a\x7f"
               "b\r\n" CL "5\r\n\r\nhello",
        400),
    BAD("an obs-fold", POST_A "X-A: a\r\n b\r\n" CL "5\r\n\r\nhello", 400),
    BAD("a line without a colon", POST_A "X-A\r\n" CL "5\r\n\r\nhello", 400),
    BAD("a space before a colon", "GET /a HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    BAD("GET *", "GET * HTTP/1.1\r\n" H "\r\n", 400),
    BAD("CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 501),
    BAD("HTTP/1.0 with TE", "POST /a HTTP/1.0\r\n" TE "chunked\r\n\r\n" HELLO,
        400),
    BAD("two Hosts", "GET /a HTTP/1.1\r\n" H "Host: y\r\n\r\n", 400),
    BAD("HTTP/2.0", "GET /a HTTP/2.0\r\n" H "\r\n", 400),
    BAD("HTTP/1.2", "GET /a HTTP/1.2\r\n" H "\r\n", 400),
    BAD("http/1.1", "GET /a http/1.1\r\n" H "\r\n", 400),
    BAD("HTTP/1.10", "GET /a HTTP/1.10\r\n" H "\r\n", 400),
    BAD("two spaces in the request line", "GET  /a HTTP/1.1\r\n" H "\r\n", 400),
    BAD("a target in no form", "GET a HTTP/1.1\r\n" H "\r\n", 400),
    BAD("a head over MAX_HEADER_BYTES",
        "GET /a HTTP/1.1\r\n" H "X-Pad: " PAD2304 "\r\n\r\n", 431),
    BAD("101 field lines", "GET /a HTTP/1.1\r\n" H FIELDS99 FIELD "\r\n", 431),

    GOOD("two equal Content-Lengths", POST_A CL "5\r\n" CL "5\r\n\r\nhello",
         "POST", "/a", "hello"),
    GOOD("Content-Length with spaces around", POST_A CL "  5  \r\n\r\nhello",
         "POST", "/a", "hello"),
    GOOD("TE: Chunked", POST_A TE "Chunked\r\n\r\n" HELLO, "POST", "/a",
         "hello"),
    GOOD("chunk sizes with zeros first",
         POST_A TE "chunked\r\n\r\n0005\r\nhello\r\n000\r\n\r\n", "POST", "/a",
         "hello"),
    GOOD("a chunk size of 16 digits",
         POST_A TE "chunked\r\n\r\n0000000000000005\r\nhello\r\n0\r\n\r\n",
         "POST", "/a", "hello"),
    GOOD("chunk extensions",
         POST_A TE
         "chunked\r\n\r\n5 ; a = \"q\\\"s\" ; b\r\nhello\r\n0\r\n\r\n",
         "POST", "/a", "hello"),
    GOOD("absolute-form", "GET http://x/abs HTTP/1.1\r\n" H "\r\n", "GET",
         "http://x/abs", ""),
    GOOD("OPTIONS *", "OPTIONS * HTTP/1.1\r\n" H "\r\n", "OPTIONS", "*", ""),
    GOOD("bare LF line ends", "GET /lf HTTP/1.1\nHost: x\n\n", "GET", "/lf",
         ""),
    GOOD("an empty line first", "\r\nGET /e HTTP/1.1\r\n" H "\r\n", "GET", "/e",
         ""),
    GOOD("obs-text in a value",
         "GET /o HTTP/1.1\r\n" H "X-A: caf\xc3\xa9\r\n\r\n", "GET", "/o", ""),
    GOOD("no Host", "GET /n HTTP/1.1\r\n\r\n", "GET", "/n", ""),
    /* X-Forwarded-For is replaced, not added to: 100 lines go up too. */
    GOOD("100 field lines",
         "GET /f HTTP/1.1\r\n" H FIELDS98 "X-Forwarded-For: 10.0.0.1\r\n\r\n",
         "GET", "/f", ""),
};

START_TEST(the_smuggling_table)
{
    static const char second[] = "GET /second HTTP/1.1\r\nHost: x\r\n\r\n";
    const struct smuggle *row = &smuggles[_i];
    const char *env[] = {HTTP_MODE, "MAX_HEADER_BYTES=2048", NULL};
    struct raw *raw = raw_start(&answer_all);
    struct harness_proc *harbor = harbor_before(raw, env);
    struct harness_buf req = {0};
    struct replies rp = {0};
    char want[128];
    int fd = connect_to(harbor);

    append(&req, row->bytes, row->len);
    append(&req, second, sizeof second - 1);
    expect_replies(fd, req.data, req.len, row->code != 0 ? 1 : 2, &rp, harbor);
    if (row->code != 0) {
        assert_own_answer(&rp, 0, row->code, row->name);
        expect_closed(fd, &rp);
    } else {
        snprintf(want, sizeof want, "%s %s\n", row->method, row->target);
        ck_assert_msg(rp.r[0].status == 200 && body_is(&rp, 0, want),
                      "%s: %d %.*s", row->name, rp.r[0].status,
                      (int)rp.r[0].body_len, reply_body(&rp, 0));
        ck_assert_msg(rp.r[1].status == 200 && body_is(&rp, 1, "GET /second\n"),
                      "%s: the second reply: %d %.*s", row->name,
                      rp.r[1].status, (int)rp.r[1].body_len,
                      reply_body(&rp, 1));
        finish_quietly(fd, &rp);
    }
    harness_stop(harbor);
    raw_stop(raw);
    if (row->code != 0) {
        ck_assert_msg(raw->nreq <= (row->in_body ? 1 : 0),
                      "%s: the backend saw %d request heads", row->name,
                      raw->nreq);
        ck_assert_msg(raw->nreq == 0 || !raw->req[0].answered,
                      "%s: the backend got a whole request", row->name);
        ck_assert_msg(!raw_saw(raw, second_target),
                      "%s: the backend saw /second", row->name);
    } else {
        ck_assert_msg(raw->nreq == 2, "%s: the backend saw %d requests",
                      row->name, raw->nreq);
        ck_assert_msg(strcmp(raw->req[0].method, row->method) == 0 &&
                          strcmp(raw->req[0].target, row->target) == 0,
                      "%s: the backend saw %s %s", row->name,
                      raw->req[0].method, raw->req[0].target);
        ck_assert_msg(raw->req[0].data.len == strlen(row->data) &&
                          (raw->req[0].data.len == 0 ||
                           memcmp(raw->req[0].data.data, row->data,
                                  strlen(row->data)) == 0),
                      "%s: the backend got the body \"%s\"", row->name,
                      raw->req[0].data.data != NULL
                          ? (const char *)raw->req[0].data.data
                          : "");
        ck_assert(strcmp(raw->req[1].target, second_target) == 0);
    }
    harness_buf_free(&req);
    replies_free(&rp);
    raw_free(raw);
}
END_TEST

/* ---- the differential check ---------------------------------------------- */

/*
 * Valid requests with every unusual thing the parser allows, pipelined in
 * one write.  What Harbor sent upstream is parsed again, after the fact,
 * request by request: it must split into exactly these requests, each
 * with its method, its target as sent, and its body byte for byte
 * (chunked bodies are forwarded as they came, framing and all).
 */
struct diff_req {
    const char *method, *target;
    const char *fields; /* after Host, each line with its CRLF */
    const char *body;   /* as sent */
    size_t body_len;
    const char *data; /* body decoded */
    size_t data_len;
};

#define DIFF(method, target, fields, body, data)                               \
    {                                                                          \
        method, target, fields, body, sizeof(body) - 1, data, sizeof(data) - 1 \
    }

static const struct diff_req diff_reqs[] = {
    DIFF("POST", "/d/1", TE "chunked\r\n",
         "5;a=1;b=\"q s\"\r\nhello\r\n6 ; c\r\n world\r\n0\r\nX-T: 1\r\n"
         "Y-T: 2\r\n\r\n",
         "hello world"),
    DIFF("POST", "/d/2", TE "chunked\r\n", "0003\r\nabc\r\n00\r\n\r\n", "abc"),
    DIFF("POST", "/d/3", CL "\t 4 \t\r\n", "wxyz", "wxyz"),
    DIFF("HEAD", "/d/4", "", "", ""),
    DIFF("POST", "/d/5", CL "0\r\n", "", ""),
    DIFF("GET", "http://d/d/6?q=1", "X-A: caf\xc3\xa9\r\n", "", ""),
    DIFF("PUT", "/d/7", CL "8\r\n", "a\0b\r\n\xff\x80z", "a\0b\r\n\xff\x80z"),
    DIFF("OPTIONS", "*", "", "", ""),
    DIFF("PATCH", "/d/9", TE "Chunked\r\nTE: trailers\r\n",
         "1\r\nx\r\n0\r\n\r\n", "x"),
    DIFF("GET", "/d/10", CL "5\r\n" CL "5\r\n", "hello", "hello"),
    DIFF("DELETE", "/d/11", "", "", ""),
};

/* The client's bytes for every request of diff_reqs, in order. */
static void
diff_requests(struct harness_buf *out)
{
    for (int i = 0; i < COUNT(diff_reqs); i++) {
        const struct diff_req *d = &diff_reqs[i];
        char head[256];

        append(out, head,
               (size_t)snprintf(head, sizeof head,
                                "%s %s HTTP/1.1\r\nHost: d\r\n%s\r\n",
                                d->method, d->target, d->fields));
        append(out, d->body, d->body_len);
    }
}

/* Parse one connection's bytes as requests, marking each in found[];
 * fails the test on anything the client did not send. */
static int
diff_parse(const struct raw_conn *c, int found[])
{
    struct http_msg m;
    const char *p = (const char *)c->in.data;
    size_t pos = 0, end;
    int n = 0;

    while (pos < c->in.len) {
        struct http_body body;
        struct harness_buf data = {0};
        const struct diff_req *d = NULL;
        size_t start, got;
        int i;

        end = http_head_end(p + pos, c->in.len - pos);
        ck_assert_msg(end > 0,
                      "connection %d: no whole head at byte %zu: %.80s",
                      c->serial, pos, p + pos);
        ck_assert_msg(http_parse_request(p + pos, end, &m) == 0,
                      "connection %d, byte %zu: %s: %.80s", c->serial, pos,
                      m.why, p + pos);
        for (i = 0; i < COUNT(diff_reqs) && d == NULL; i++)
            if (strlen(diff_reqs[i].target) == m.target_len &&
                memcmp(diff_reqs[i].target, m.target, m.target_len) == 0)
                d = &diff_reqs[i];
        ck_assert_msg(d != NULL && !found[i - 1],
                      "a request nobody sent: %.*s %.*s", (int)m.method_len,
                      m.method, (int)m.target_len, m.target);
        found[i - 1] = 1;
        ck_assert_msg(m.minor == 1 && strlen(d->method) == m.method_len &&
                          memcmp(d->method, m.method, m.method_len) == 0,
                      "%s went up as %.*s, HTTP/1.%d", d->target,
                      (int)m.method_len, m.method, m.minor);
        pos += end;
        start = pos;
        http_body_init(&body, &m);
        while (!http_body_done(&body)) {
            long took = http_body_take(&body, p + pos, c->in.len - pos, &got);

            ck_assert_msg(took > 0, "%s: its body is cut or broken", d->target);
            append(&data, p + pos, got);
            pos += (size_t)took;
        }
        ck_assert_msg(data.len == d->data_len &&
                          (d->data_len == 0 ||
                           memcmp(data.data, d->data, d->data_len) == 0),
                      "%s: the body went up as \"%s\"", d->target,
                      data.data != NULL ? (const char *)data.data : "");
        ck_assert_msg(pos - start == d->body_len &&
                          memcmp(p + start, d->body, d->body_len) == 0,
                      "%s: its framing changed on the way: \"%.*s\"", d->target,
                      (int)(pos - start), p + start);
        harness_buf_free(&data);
        n++;
    }
    return n;
}

START_TEST(what_goes_up_parses_into_exactly_what_the_client_sent)
{
    const char *env[] = {HTTP_MODE, NULL};
    struct raw *raw = raw_start(&answer_all);
    struct harness_proc *harbor = harbor_before(raw, env);
    struct harness_buf req = {0};
    struct replies rp = {0};
    int fd = connect_to(harbor), found[COUNT(diff_reqs)] = {0}, total = 0;
    char want[128];

    diff_requests(&req);
    for (int i = 0; i < COUNT(diff_reqs); i++)
        if (strcmp(diff_reqs[i].method, "HEAD") == 0)
            rp.heads |= 1u << i;
    expect_replies(fd, req.data, req.len, COUNT(diff_reqs), &rp, harbor);
    for (int i = 0; i < COUNT(diff_reqs); i++) {
        snprintf(want, sizeof want, "%s %s\n", diff_reqs[i].method,
                 diff_reqs[i].target);
        ck_assert_msg(rp.r[i].status == 200 &&
                          (body_is(&rp, i, want) || (rp.heads & (1u << i))),
                      "reply %d: %d %.*s, want %s", i, rp.r[i].status,
                      (int)rp.r[i].body_len, reply_body(&rp, i), want);
    }
    finish_quietly(fd, &rp);
    harness_stop(harbor);
    raw_stop(raw);
    for (int s = 0; s < raw->served; s++)
        total += diff_parse(raw_conn(raw, s), found);
    ck_assert_int_eq(total, COUNT(diff_reqs));
    harness_buf_free(&req);
    replies_free(&rp);
    raw_free(raw);
}
END_TEST

/* ---- metrics ------------------------------------------------------------- */

START_TEST(requests_are_counted_by_status_class)
{
    static const char *const zero[] = {"1xx", "3xx", "5xx"};
    const char *env[] = {HTTP_MODE, NULL};
    struct harness_stage st;
    struct replies rp = {0};
    unsigned metrics;
    char series[96];
    int fd;

    harness_stage_up(&st, 1, "http", env);
    metrics = harness_metrics_port(st.harbor);
    fd = connect_to(st.harbor);
    for (int i = 0; i < 3; i++) {
        ask(fd, GET_ROOT, &rp, st.harbor);
        ck_assert_int_eq(rp.r[i].status, 200);
    }
    finish_quietly(fd, &rp);
    replies_free(&rp);
    fd = connect_to(st.harbor);
    ask(fd, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &rp, st.harbor);
    assert_own_answer(&rp, 0, 400, "two Hosts");
    expect_closed(fd, &rp);
    replies_free(&rp);

    harness_wait_metric(metrics, "harbor_http_requests_total{code=\"2xx\"}", 3);
    harness_wait_metric(metrics, "harbor_http_requests_total{code=\"4xx\"}", 1);
    for (int i = 0; i < COUNT(zero); i++) {
        snprintf(series, sizeof series,
                 "harbor_http_requests_total{code=\"%s\"}", zero[i]);
        harness_wait_metric(metrics, series, 0);
    }
    harness_wait_metric(
        metrics, "harbor_http_request_duration_seconds_count{code=\"2xx\"}", 3);
    harness_wait_metric(
        metrics, "harbor_http_request_duration_seconds_count{code=\"4xx\"}", 1);
    harness_wait_metric(
        metrics,
        "harbor_http_request_duration_seconds_bucket{code=\"2xx\",le=\"+Inf\"}",
        3);
    harness_wait_metric(metrics, upstream_new, 1);
    harness_wait_metric(metrics, upstream_reused, 2);
    /* Later chapters have their own number here. */
    if (harness_chapter() == 10)
        harness_wait_metric(metrics, "harbor_build_info{chapter=\"10\"}", 1);
    harness_stage_down(&st);
}
END_TEST

/* ---- settings ------------------------------------------------------------ */

static const struct {
    const char *var, *value;
} bad_http[] = {
    {"MODE", "udp"},
    {"MODE", ""},
    {"MODE", "HTTP"},
    {"UPSTREAM_IDLE_MAX", "-1"},
    {"UPSTREAM_IDLE_MAX", "abc"},
    {"UPSTREAM_IDLE_MAX", "65537"},
    {"UPSTREAM_IDLE_TIMEOUT_MS", "abc"},
    {"UPSTREAM_IDLE_TIMEOUT_MS", "0"},
    {"MAX_HEADER_BYTES", "10"},
    {"MAX_HEADER_BYTES", "1023"},
    {"MAX_HEADER_BYTES", "1048577"},
    {"REQUEST_TIMEOUT_MS", "abc"},
    {"REQUEST_TIMEOUT_MS", "-1"},
    {"RESPONSE_TIMEOUT_MS", "x"},
};

START_TEST(a_bad_http_setting_exits_2)
{
    const char *env[] = {"MODE=http", NULL};

    harness_assert_config_error(bad_http[_i].var, bad_http[_i].value, env,
                                NULL);
}
END_TEST

/* The ends of MAX_HEADER_BYTES's range are values like any other. */
START_TEST(max_header_bytes_takes_both_ends_of_its_range)
{
    static const char *const ends[] = {"MAX_HEADER_BYTES=1024",
                                       "MAX_HEADER_BYTES=1048576"};
    struct harness_stage st;

    for (int i = 0; i < COUNT(ends); i++) {
        const char *env[] = {HTTP_MODE, ends[i], NULL};

        harness_stage_up(&st, 1, "http", env);
        ck_assert_int_eq(harness_stage_get(&st, "/"), 0);
        harness_stage_down(&st);
    }
}
END_TEST

void
scenarios_10(Suite *s)
{
    TCase *tc = harness_tcase(s, "http", 10, NULL);

    tcase_add_test(tc, each_request_on_a_connection_is_balanced_on_its_own);
    tcase_add_test(tc, pipelined_requests_are_answered_in_order);
    tcase_add_test(tc, hop_by_hop_fields_stay_and_x_forwarded_for_grows);
    tcase_add_test(tc, a_response_loses_its_hop_by_hop_fields);
    tcase_add_test(tc,
                   an_http_1_0_client_is_closed_unless_it_asks_to_keep_alive);
    tcase_add_test(tc, head_gets_a_head_and_the_connection_goes_on);
    tcase_add_test(tc, a_mebibyte_goes_up_and_one_comes_down_intact);
    tcase_add_test(tc, a_chunked_body_with_extensions_and_trailers_is_echoed);
    tcase_add_test(tc, expect_100_continue_is_answered_before_the_body);
    tcase_add_test(tc, an_upgrade_becomes_a_tunnel_with_its_half_close);
    tcase_add_test(tc, requests_are_counted_by_status_class);

    tc = harness_tcase(s, "http-errors", 10, NULL);
    tcase_add_loop_test(tc, harbor_answers_what_goes_wrong_itself_and_closes, 0,
                        COUNT(own_cases));
    tcase_add_test(tc, a_head_of_max_header_bytes_is_read_and_one_more_is_431);
    tcase_add_test(tc, a_quiet_keep_alive_connection_is_closed_without_a_word);
    tcase_add_test(tc, no_backend_up_is_503);
    tcase_add_test(tc, no_slot_within_queue_timeout_is_503);
    tcase_add_test(tc, a_response_cut_short_cuts_the_client);

    tc = harness_tcase(s, "http-pool", 10, NULL);
    tcase_add_test(tc, the_idle_pool_carries_requests_of_many_clients);
    tcase_add_test(tc, upstream_idle_max_0_dials_for_every_request);
    tcase_add_test(tc, an_idle_upstream_connection_is_closed_after_its_timeout);
    tcase_add_test(tc,
                   a_backend_removed_by_a_reload_loses_its_idle_connections);
    tcase_add_test(tc, a_backend_that_goes_down_loses_its_idle_connections);
    tcase_add_loop_test(tc,
                        a_stale_pooled_connection_is_retried_when_that_is_safe,
                        0, COUNT(stale_cases));

    tc = harness_tcase(s, "http-smuggling", 10, NULL);
    tcase_add_loop_test(tc, the_smuggling_table, 0, COUNT(smuggles));
    tcase_add_test(tc, what_goes_up_parses_into_exactly_what_the_client_sent);

    tc = harness_tcase(s, "http-config", 10, NULL);
    tcase_add_loop_test(tc, a_bad_http_setting_exits_2, 0, COUNT(bad_http));
    tcase_add_test(tc, max_header_bytes_takes_both_ends_of_its_range);
}
