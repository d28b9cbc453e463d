/*
 * proxy.c - MODE=http: one client connection, served request by request.
 *
 * In tcp mode a client is bridged to one backend for its whole life.  Here
 * Harbor reads each request, so each can go to its own backend, over an
 * upstream connection kept from an earlier request (upool.c).  Reading
 * HTTP is what makes that possible, and what makes it dangerous: Harbor and
 * the backend must agree on where every message ends, or a client can hide
 * a second request inside the first one's body.  common/http.c is strict
 * so that they do.
 *
 * DESIGN: still two pumps per bridge.  The connection thread runs the
 * request pump: it reads a request head from the client, picks a backend,
 * sends the head it rewrote (hop-by-hop fields out, X-Forwarded-For in),
 * hands the response direction to a worker, and streams the body up.  The
 * response pump reads the backend's response head, rewrites it the same
 * way, and streams the body down.  Between the hand-off and sem_wait(done)
 * only the response pump writes to the client; the request pump writes
 * Harbor's own answers (400, 502...) when no response pump runs.  One
 * exchange at a time: a pipelined request waits in p->in until the
 * response before it is done, and so responses keep request order.
 * The backend fd is the request pump's: it puts it back in the idle pool
 * or closes it once the exchange is over.  Bodies are never held whole:
 * each pump frames its direction's body as it passes (http_body_take())
 * and forwards bytes as they come.
 *
 * A 101 answer to an upgrade ends HTTP on this connection: the rest is the
 * plain tunnel of tcp mode (bridge_run()).
 */
#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bridge.h"
#include "clock.h"
#include "dial.h"
#include "http.h"
#include "log.h"
#include "net.h"
#include "proxy.h"

#define LINGER_MS  1000 /* see linger_close() */
#define HEAD_SLACK 256  /* what a rewritten head may add: X-Forwarded-For... */

/* How an exchange ended, as the response pump saw it. */
enum result {
    X_DONE,    /* a whole response went to the client */
    X_NOTHING, /* the backend closed or failed before any byte of one */
    X_ANSWER,  /* nothing forwarded; Harbor answers p->status itself */
    X_CUT,     /* failed after bytes went to the client: just close */
    X_TUNNEL   /* a 101 went to the client: now a byte tunnel */
};

struct proxy {
    struct conn *c;
    struct harbor *h;
    char ip[ADDR_TEXT_MAX]; /* the client's address without its port */
    atomic_llong last;      /* ms when a byte last moved either way */
    atomic_llong up_last;   /* ms when a byte of the request last went up */
    atomic_int abort;       /* the response pump gave up: stop reading */
    /* Client bytes: a request head, then its body and what follows. */
    char *in;
    size_t cap, len, pos; /* pos: the next byte not forwarded */
    int held;             /* in[0..pos) is still the whole request */
    int bad;              /* the request body's framing broke: 400 */
    int up_failed;        /* a write to the backend failed */
    int pumping;          /* the response pump runs: wait for done */
    char *head;           /* the request head as forwarded */
    size_t head_len;
    /* The exchange, set before the response pump starts. */
    struct backend *b;
    int bfd;
    int head_request; /* HEAD: the response has no body */
    int client_keep;  /* the client wants the connection kept */
    int minor;        /* the client's HTTP/1.<minor> */
    int upgrade;      /* the request asks to switch protocols */
    /* The response pump's, read after done. */
    enum result res;
    int status;        /* the response's status, or the one to answer */
    int close_client;  /* the response said Connection: close to it */
    int upstream_keep; /* the backend connection may carry another */
    char *out, *rhead; /* the response as read; its head as forwarded */
    size_t rest;       /* bytes after the response, left in out[] */
    struct job job;
    sem_t done;
};

/* ---- heads --------------------------------------------------------- */

/* A head being written into a buffer; over is set when it did not fit. */
struct buf {
    char *p;
    size_t cap, len;
    int over;
};

static void
put(struct buf *o, const char *s, size_t n)
{
    if (n > o->cap - o->len) {
        o->over = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void
put_str(struct buf *o, const char *s)
{
    put(o, s, strlen(s));
}

static void
put_field(struct buf *o, const struct http_field *f)
{
    put(o, f->name, f->name_len);
    put(o, ": ", 2);
    put(o, f->value, f->value_len);
    put(o, "\r\n", 2);
}

/*
 * Is f for this hop only (RFC 9110 §7.6.1)?  Connection, and every field
 * it names, and the fields that were always hop-by-hop; Upgrade stays when
 * the connection is being upgraded.  A proxy that forwards them would let
 * the client speak for Harbor to the backend: "Connection: close" would
 * close a pooled connection, "TE: trailers" promise what Harbor does not.
 */
static int
hop_by_hop(const struct http_msg *m, const struct http_field *f, int upgrade)
{
    static const char *const hop[] = {
        "connection", "keep-alive", "proxy-connection", "te", "trailer",
        "upgrade",    NULL};
    const struct http_field *g;
    size_t i;

    if (upgrade && http_field_is(f, "upgrade"))
        return 0;
    for (i = 0; hop[i] != NULL; i++)
        if (http_field_is(f, hop[i]))
            return 1;
    for (g = m->fields; g < m->fields + m->nfields; g++)
        if (http_field_is(g, "connection") &&
            http_list_has(g->value, g->value_len, f->name, f->name_len))
            return 1;
    return 0;
}

/*
 * The request head to send up: HTTP/1.1 whatever the client spoke (the
 * connection to the backend is Harbor's), the end-to-end fields in their
 * order, and X-Forwarded-For with the client appended to earlier hops.
 */
static int
request_head(struct proxy *p, const struct http_msg *m)
{
    struct buf o = {p->head, p->cap + HEAD_SLACK, 0, 0};
    const struct http_field *f;
    const char *sep = "";

    put(&o, m->method, m->method_len);
    put(&o, " ", 1);
    put(&o, m->target, m->target_len);
    put_str(&o, " HTTP/1.1\r\n");
    for (f = m->fields; f < m->fields + m->nfields; f++)
        if (!hop_by_hop(m, f, p->upgrade) &&
            !http_field_is(f, "x-forwarded-for"))
            put_field(&o, f);
    put_str(&o, "X-Forwarded-For: ");
    for (f = m->fields; f < m->fields + m->nfields; f++) {
        if (http_field_is(f, "x-forwarded-for") && f->value_len > 0) {
            put_str(&o, sep);
            put(&o, f->value, f->value_len);
            sep = ", ";
        }
    }
    put_str(&o, sep);
    put_str(&o, p->ip);
    put_str(&o, p->upgrade ? "\r\nConnection: upgrade\r\n\r\n" : "\r\n\r\n");
    p->head_len = o.len;
    return o.over ? -1 : 0;
}

/* The response head to send down, from the one in buf[0..m->head_len). */
static size_t
response_head(struct proxy *p, const char *buf, const struct http_msg *m)
{
    struct buf o = {p->rhead, p->cap + HEAD_SLACK, 0, 0};
    const struct http_field *f;
    const char *eol = memchr(buf, '\n', m->head_len);
    size_t n = (size_t)(eol - buf);
    int tunnel = m->status == 101;

    /* "HTTP/1.x " and then the status and reason as the backend sent them. */
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    put_str(&o, "HTTP/1.1 ");
    put(&o, buf + 9, n - 9);
    put_str(&o, "\r\n");
    for (f = m->fields; f < m->fields + m->nfields; f++)
        if (!hop_by_hop(m, f, tunnel))
            put_field(&o, f);
    if (tunnel)
        put_str(&o, "Connection: upgrade\r\n");
    else if (p->close_client)
        put_str(&o, "Connection: close\r\n");
    else if (p->minor == 0)
        put_str(&o, "Connection: keep-alive\r\n"); /* 1.0 must be told */
    put_str(&o, "\r\n");
    return o.over ? 0 : o.len;
}

/* ---- the client side ----------------------------------------------- */

/* The client's address without its port, for X-Forwarded-For. */
static void
client_ip(const char *peer, char *ip, size_t len)
{
    const char *colon = strrchr(peer, ':');
    size_t n = colon != NULL ? (size_t)(colon - peer) : strlen(peer);

    if (n >= 2 && peer[0] == '[') { /* "[::1]:80" */
        peer++;
        n -= 2;
    }
    snprintf(ip, len, "%.*s", (int)n, peer);
}

/*
 * Every socket read waits a tick at most, so that the pumps look at their
 * clocks (and at an abort) at least that often: a quarter of the shortest
 * timeout, between 10 ms and 1 s.  A write that makes no progress for
 * IDLE_TIMEOUT_MS fails.
 */
static void
set_timeouts(struct harbor *h, int fd)
{
    int v[3] = {h->idle_timeout_ms, h->request_timeout_ms,
                h->response_timeout_ms};
    int tick = 1000, i;
    struct timeval rcv,
        snd = {h->idle_timeout_ms / 1000, h->idle_timeout_ms % 1000 * 1000};

    for (i = 0; i < 3; i++)
        if (v[i] > 0 && v[i] / 4 < tick)
            tick = v[i] / 4 < 10 ? 10 : v[i] / 4;
    rcv.tv_sec = tick / 1000;
    rcv.tv_usec = tick % 1000 * 1000;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
}

/*
 * Close politely after Harbor's own answer.  Unread input makes close()
 * send a reset, and a reset can destroy the answer before the client has
 * read it (RFC 9112 §9.6): so send our FIN, then read and drop what the
 * client still sends, until its EOF or LINGER_MS.
 */
static void
linger_close(int fd)
{
    long long end = clock_ms() + LINGER_MS;
    char sink[4096];
    ssize_t n;

    if (shutdown(fd, SHUT_WR) < 0)
        return;
    while (clock_ms() < end && ((n = recv(fd, sink, sizeof(sink), 0)) > 0 ||
                                (n < 0 && (errno == EINTR || errno == EAGAIN))))
        ;
}

/* Harbor's own answer: a short text body, and the connection closes. */
static void
answer(struct conn *c, int status, long long us)
{
    char buf[256];
    int n, body;

    body = snprintf(NULL, 0, "%d %s\n", status, http_reason(status));
    n = snprintf(buf, sizeof(buf),
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
                 "Content-Length: %d\r\nConnection: close\r\n\r\n%d %s\n",
                 status, http_reason(status), body, status,
                 http_reason(status));
    if (write_all(c->cfd, buf, (size_t)n) == 0)
        metrics_add(&c->h->metrics.bytes[1], (unsigned long long)n);
    metrics_request(&c->h->metrics, status, us);
    linger_close(c->cfd);
}

void
proxy_refuse(struct conn *c, int status)
{
    set_timeouts(c->h, c->cfd); /* the linger must end */
    answer(c, status, 0);
}

/*
 * Read more from the client into in[len..cap).  Blocks for a tick at a
 * time (SO_RCVTIMEO) to look at the clocks: idle when no byte moved either
 * way for IDLE_TIMEOUT_MS.  Between requests (between) a drain ends the
 * wait too: nobody waits for an answer.  Bytes read, 0 at EOF, -1 on an
 * error, a deadline (errno ETIMEDOUT), an abort or a drain.
 */
static ssize_t
client_read(struct proxy *p, long long deadline, int between)
{
    int idle = p->h->idle_timeout_ms;
    ssize_t n;

    for (;;) {
        n = recv(p->c->cfd, p->in + p->len, p->cap - p->len, 0);
        if (n > 0) {
            atomic_store(&p->last, clock_ms());
            p->len += (size_t)n;
            return n;
        }
        if (n == 0 || (errno != EINTR && errno != EAGAIN))
            return n;
        if (atomic_load(&p->abort) || (between && atomic_load(&p->h->stopping)))
            return -1;
        if ((deadline > 0 && clock_ms() >= deadline) ||
            (idle > 0 && clock_ms() - atomic_load(&p->last) >= idle)) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

/*
 * Read the next request head to in[0..).  0 with *m parsed; -1 to close
 * quietly (the client left, or kept quiet after a response); else the
 * status to answer.  REQUEST_TIMEOUT_MS runs from the start of the wait.
 */
static int
head_read(struct proxy *p, struct http_msg *m, int first)
{
    int ms = p->h->request_timeout_ms;
    long long deadline = ms > 0 ? clock_ms() + ms : 0;
    size_t skip, end;
    ssize_t n;

    m->why = NULL;
    for (;;) {
        /* RFC 9112 §2.2: empty lines before a request are ignored. */
        if ((skip = http_skip_empty(p->in, p->len)) > 0) {
            memmove(p->in, p->in + skip, p->len - skip);
            p->len -= skip;
        }
        if ((end = http_head_end(p->in, p->len)) > 0)
            return http_parse_request(p->in, end, m);
        if (p->len == p->cap) {
            m->why = "head over MAX_HEADER_BYTES";
            return 431;
        }
        if ((n = client_read(p, deadline, p->len == 0 && !first)) > 0)
            continue;
        if (n < 0 && errno == ETIMEDOUT && (p->len > 0 || first)) {
            m->why = "no whole head within REQUEST_TIMEOUT_MS";
            return 408;
        }
        return p->len > 0 && n == 0 ? 400 : -1; /* EOF inside a head */
    }
}

/* ---- the backend side ---------------------------------------------- */

/* Write n bytes to fd, counting them one way (0 up, 1 down).  0 or -1. */
static int
send_all(struct proxy *p, int fd, const char *buf, size_t n, int way)
{
    if (n == 0)
        return 0;
    if (write_all(fd, buf, n) < 0)
        return -1;
    atomic_store(&p->last, clock_ms());
    if (way == 0)
        atomic_store(&p->up_last, clock_ms());
    metrics_add(&p->h->metrics.bytes[way], n);
    return 0;
}

/*
 * Read the backend's answer into out[len..cap): bytes read, 0 at EOF, -1 on
 * an error or a deadline.  Until the response head is in (waiting), the
 * deadline is RESPONSE_TIMEOUT_MS since the request last sent a byte up;
 * after it, the idle clock both pumps share.
 */
static ssize_t
backend_read(struct proxy *p, size_t len, int waiting)
{
    int idle = p->h->idle_timeout_ms, resp = p->h->response_timeout_ms;
    ssize_t n;

    for (;;) {
        n = recv(p->bfd, p->out + len, p->cap - len, 0);
        if (n > 0)
            atomic_store(&p->last, clock_ms());
        if (n >= 0 || (errno != EINTR && errno != EAGAIN))
            return n;
        if (waiting && resp > 0 &&
            clock_ms() - atomic_load(&p->up_last) >= resp) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (!waiting && idle > 0 && clock_ms() - atomic_load(&p->last) >= idle)
            return -1;
    }
}

/*
 * Forward a response body down: out[0..len) holds its start.  Bytes after
 * its end are left in out[], counted in p->rest.  0 when it all went, -1
 * when either side failed or the framing broke.
 */
static int
body_down(struct proxy *p, const struct http_msg *m, size_t len)
{
    struct http_body body;
    size_t n, data;
    ssize_t r;
    long t;

    http_body_init(&body, m);
    for (;;) {
        for (n = 0; n < len && !http_body_done(&body); n += (size_t)t)
            if ((t = http_body_take(&body, p->out + n, len - n, &data)) < 0)
                return -1;
        if (send_all(p, p->c->cfd, p->out, n, 1) < 0)
            return -1;
        if (http_body_done(&body)) {
            memmove(p->out, p->out + n, len - n);
            p->rest = len - n;
            return 0;
        }
        if ((r = backend_read(p, 0, 0)) == 0 && m->body == HTTP_BODY_CLOSE)
            return 0; /* the end of a body that ends with the connection */
        if (r <= 0)
            return -1;
        len = (size_t)r;
    }
}

/*
 * The response pump: one response, with any 1xx before it.  Nothing is
 * written to the client until a whole head has been read and parsed, so a
 * failure before that leaves the client free for Harbor's own answer.
 */
static enum result
response_run(struct proxy *p)
{
    struct http_msg m;
    size_t len = 0, end, hlen;
    int sent = 0;
    ssize_t n;

    for (;;) {
        while ((end = http_head_end(p->out, len)) == 0) {
            if (len == p->cap)
                goto bad;
            if ((n = backend_read(p, len, 1)) <= 0) {
                if (sent)
                    return X_CUT;
                if (n < 0 && errno == ETIMEDOUT) {
                    p->status = 504;
                    return X_ANSWER;
                }
                if (len == 0)
                    return X_NOTHING;
                goto bad;
            }
            len += (size_t)n;
        }
        if (http_parse_response(p->out, end, p->head_request, &m) != 0) {
            log_warn("%s: %s: %s", __func__, p->b->addr.text, m.why);
            goto bad;
        }
        if (m.status == 101 && !p->upgrade)
            goto bad; /* a switch nobody asked for */
        p->close_client = !p->client_keep || m.body == HTTP_BODY_CLOSE ||
                          atomic_load(&p->h->stopping);
        if ((hlen = response_head(p, p->out, &m)) == 0)
            goto bad;
        if (send_all(p, p->c->cfd, p->rhead, hlen, 1) < 0)
            return X_CUT;
        sent = 1;
        len -= end;
        memmove(p->out, p->out + end, len);
        if (m.status == 101) {
            p->status = 101;
            p->rest = len; /* the first bytes of the new protocol */
            return X_TUNNEL;
        }
        if (m.status >= 200)
            break;
    }
    p->status = m.status;
    if (body_down(p, &m, len) < 0)
        return X_CUT;
    p->upstream_keep =
        m.keep_alive && m.body != HTTP_BODY_CLOSE && p->rest == 0;
    return X_DONE;
bad:
    if (sent)
        return X_CUT;
    p->status = 502;
    return X_ANSWER;
}

/* The response pump's job.  p lives on the connection thread's stack:
 * touch nothing after sem_post(). */
static int
response_job(void *arg)
{
    struct proxy *p = arg;

    p->res = response_run(p);
    if (p->res != X_DONE && p->res != X_TUNNEL) {
        /*
         * The request pump may be blocked on either socket: shutdown()
         * wakes it (not close(): it still uses the numbers).  The client
         * keeps its socket for reading while a retry may need its body.
         */
        atomic_store(&p->abort, 1);
        shutdown(p->bfd, SHUT_RDWR);
        if (p->res != X_NOTHING)
            shutdown(p->c->cfd, SHUT_RD);
    }
    sem_post(&p->done);
    return 0;
}

/* ---- the request pump ---------------------------------------------- */

/*
 * Frame the request body from in[pos..len) on: how far it runs in what is
 * here, in *n.  1 when the body ends within it, 0 if more must be read,
 * -1 when its framing is broken.
 */
static int
body_frame(struct proxy *p, struct http_body *body, size_t *n)
{
    size_t data;
    long t;

    for (*n = 0; p->pos + *n < p->len && !http_body_done(body); *n += (size_t)t)
        if ((t = http_body_take(body, p->in + p->pos + *n, p->len - p->pos - *n,
                                &data)) < 0)
            return -1;
    return http_body_done(body);
}

/*
 * Send the head and stream the body up, reading the client as it goes.
 * The whole request stays in in[] while it fits (p->held), for a retry.
 * 0 when all of it went up; -1 when the client went, its framing broke
 * (p->bad) or the backend stopped taking it (p->up_failed).
 */
static int
request_send(struct proxy *p, struct http_body *body, int first_send)
{
    size_t n;
    int rc;

    for (;;) {
        if ((rc = body_frame(p, body, &n)) < 0) {
            p->bad = 1;
            return -1;
        }
        if (first_send) {
            first_send = 0;
            if (send_all(p, p->bfd, p->head, p->head_len, 0) < 0) {
                p->up_failed = 1;
                return -1;
            }
            if (workers_run(&p->h->workers, &p->job) < 0) {
                log_warn("%s: %s", __func__, strerror(errno));
                p->res = X_ANSWER;
                p->status = 503;
                return -1;
            }
            p->pumping = 1;
        }
        if (send_all(p, p->bfd, p->in + p->pos, n, 0) < 0) {
            p->up_failed = 1;
            return -1;
        }
        p->pos += n;
        if (rc == 1)
            return 0;
        if (p->len == p->cap) { /* full: the start of the body is gone */
            p->held = 0;
            p->pos = p->len = 0;
        }
        if (client_read(p, 0, 0) <= 0)
            return -1;
    }
}

static int
idempotent(const struct http_msg *m)
{
    static const char *const safe[] = {"GET", "HEAD",   "OPTIONS",
                                       "PUT", "DELETE", NULL};
    int i;

    for (i = 0; safe[i] != NULL; i++)
        if (m->method_len == strlen(safe[i]) &&
            memcmp(m->method, safe[i], m->method_len) == 0)
            return 1;
    return 0;
}

/* The exchange's backend connection: back to the idle pool, or closed. */
static void
upstream_end(struct proxy *p, int keep)
{
    conns_set_backend(&p->h->conns, p->c->reg, -1);
    if (keep && p->h->upool.max > 0)
        upool_put(&p->h->upool, p->b, p->bfd);
    else
        close(p->bfd);
    p->bfd = -1;
}

/*
 * One request, from its parsed head to the end of its response.  The
 * status for Harbor to answer (then the connection closes), 0 to read the
 * next request, or -1 to close quietly.
 */
static int
exchange(struct proxy *p, const struct http_msg *m)
{
    struct strategy *s = &p->h->strategy;
    struct metrics *mt = &p->h->metrics;
    struct http_body body;
    int rc, tries, keep;

    p->head_request = m->method_len == 4 && memcmp(m->method, "HEAD", 4) == 0;
    p->client_keep = m->keep_alive;
    p->minor = m->minor;
    p->upgrade = m->upgrade;
    if (request_head(p, m) < 0)
        return 431;
    for (tries = 0;; tries++) {
        p->c->fresh = tries > 0; /* a retry never takes an idle one */
        if ((p->bfd = conn_dial(p->c, &p->b)) < 0)
            return errno == ENOENT ? 503 : 502;
        conns_set_backend(&p->h->conns, p->c->reg, p->bfd);
        set_timeouts(p->h, p->bfd);
        net_nodelay(p->bfd);
        metrics_add(&mt->upstream[p->c->reused], 1);
        metrics_backend_start(mt, p->b);
        atomic_store(&p->abort, 0);
        atomic_store(&p->up_last, clock_ms());
        p->up_failed = p->bad = 0;
        p->held = 1;
        p->pos = m->head_len;
        p->res = X_NOTHING;
        http_body_init(&body, m);
        p->pumping = 0;
        rc = request_send(p, &body, 1);
        if (rc < 0 && !p->up_failed) /* the request broke: so does this */
            shutdown(p->bfd, SHUT_RDWR);
        while (p->pumping && sem_wait(&p->done) < 0 && errno == EINTR)
            ;
        metrics_backend_done(mt, p->b);
        s->done(s, p->b);
        /* m points into in[]: only while the request is held. */
        if (p->res == X_NOTHING && p->c->reused && tries == 0 && p->held &&
            http_body_done(&body) && !p->bad && idempotent(m)) {
            log_info("%s: %s: %s: idle connection was stale, retrying",
                     __func__, p->c->peer, p->b->addr.text);
            upstream_end(p, 0);
            backend_release(p->b);
            continue;
        }
        break;
    }
    keep = p->res == X_DONE && p->upstream_keep && rc == 0;
    if (p->res == X_TUNNEL)
        return -2; /* the caller tunnels; p->bfd stays open */
    upstream_end(p, keep);
    backend_release(p->b);
    if (p->bad)
        return 400;
    if (p->res == X_NOTHING)
        return 502;
    if (p->res == X_ANSWER)
        return p->status;
    if (p->res == X_CUT || rc < 0)
        return -1;
    return p->close_client ? -1 : 0;
}

/*
 * After a 101 the connection carries another protocol: what each side
 * already sent past the heads goes first, then both pumps copy bytes as
 * in tcp mode, half-close and all.
 */
static void
tunnel(struct proxy *p)
{
    struct bridge_stats st;

    if (send_all(p, p->bfd, p->in + p->pos, p->len - p->pos, 0) == 0 &&
        send_all(p, p->c->cfd, p->out, p->rest, 1) == 0)
        bridge_run(&p->h->workers, p->c->cfd, p->bfd, p->h->idle_timeout_ms,
                   p->h->metrics.bytes, &st);
    upstream_end(p, 0);
    backend_release(p->b);
}

void
proxy_run(struct conn *c)
{
    struct harbor *h = c->h;
    struct proxy p;
    struct http_msg m;
    struct timespec t0;
    size_t cap = (size_t)h->max_header_bytes;
    int rc, first;

    memset(&p, 0, sizeof(p));
    p.c = c;
    p.h = h;
    p.cap = cap;
    p.bfd = -1;
    client_ip(c->peer, p.ip, sizeof(p.ip));
    atomic_init(&p.last, clock_ms());
    atomic_init(&p.up_last, clock_ms());
    atomic_init(&p.abort, 0);
    p.job.fn = response_job;
    p.job.arg = &p;
    /* One block: the client's bytes, the response's, and their heads. */
    if ((p.in = malloc(4 * cap + 2 * HEAD_SLACK)) == NULL ||
        sem_init(&p.done, 0, 0) < 0) {
        log_warn("%s: %s: %s", __func__, c->peer, strerror(errno));
        free(p.in);
        return;
    }
    p.head = p.in + cap;
    p.out = p.head + cap + HEAD_SLACK;
    p.rhead = p.out + cap;
    set_timeouts(h, c->cfd);
    net_nodelay(c->cfd);
    for (first = 1;; first = 0) {
        if ((rc = head_read(&p, &m, first)) > 0 && m.why != NULL)
            log_info("%s: %s: %d: %s", __func__, c->peer, rc, m.why);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (rc == 0) {
            rc = exchange(&p, &m);
            if (p.res == X_DONE || p.res == X_TUNNEL)
                metrics_request(&h->metrics, p.status, clock_us_since(&t0));
        }
        if (rc == -2) {
            tunnel(&p);
            break;
        }
        if (rc > 0)
            answer(c, rc, clock_us_since(&t0));
        if (rc != 0)
            break;
        /* What follows the request is the start of the next one. */
        memmove(p.in, p.in + p.pos, p.len - p.pos);
        p.len -= p.pos;
        p.pos = 0;
    }
    sem_destroy(&p.done);
    free(p.in);
}
