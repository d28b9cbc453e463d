/*
 * loadgen.c - the chaos suite's load client (build/loadgen).
 *
 * Drives one HOST:PORT with -c workers in one of five modes - HTTP GETs, or
 * connections that idle, reset, half-close or never read - and prints one
 * summary line; -o adds one line per event.  Every wait has a deadline, so
 * the run ends within -d + -t + 1000 ms whatever the target does, even when
 * it is stopped with SIGSTOP.  One file, no common/: scripts build it alone.
 *
 * DESIGN: main() parses, resolves and opens -o, then starts one joinable
 * thread per worker (idle mode: one thread for every connection), each with
 * a struct lg_worker of its own.  A socket belongs to the worker that opened
 * it, which closes it before it records the event.  The workers share only
 * struct lg_run: options, address and request set before the first thread
 * starts, atomics for the counts, the latency histogram and the -n claims,
 * and, under its lock, the -o FILE and the number of workers done.  A worker
 * ends when -d is over, -n is used up or stop is set, flushes its -o lines
 * and says it is done.  main() waits for that on a condition variable, but
 * never past the hard bound: then it prints what was counted, and exits.
 */
#define _GNU_SOURCE /* POLLRDHUP and memmem(), both Linux's */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * A worker's buffers live in its heap-allocated struct lg_worker, so its
 * thread needs only small frames and stdio: 64 KiB of stack is plenty, and
 * 5000 workers cost 320 MiB of address space rather than 40 GiB.
 */
#define LG_STACK_SIZE (64 * 1024)

#define LG_CONC_MAX   5000
#define LG_BUF_SIZE   (16 * 1024) /* a response head must fit, else bad */
#define LG_OUT_SIZE   4096        /* -o lines a worker holds between flushes */
#define LG_LINE_MAX   64          /* one -o line, with room to spare */
#define LG_PATH_MAX   2048
#define LG_RESET_READ 1024    /* reset mode reads this much, then resets */
#define LG_RETRY_MS   10      /* pause after a failed connect, see below */
#define LG_GRACE_MS   700     /* main() waits -d + -t + this at most */
#define LG_PACE_US    1000000 /* idle mode opens its connections in 1 s */

/*
 * Latencies go into a histogram, not a list, so a long soak needs no more
 * memory than a short run: one bucket per microsecond below 2.048 ms, then
 * 1024 per power of two (under 0.1% off) up to 2^32 us.
 */
#define LG_HIST_EXACT 2048
#define LG_HIST_SUB   1024
#define LG_HIST_SIZE  (LG_HIST_EXACT + 21 * LG_HIST_SUB)

enum lg_mode { LG_GET, LG_IDLE, LG_RESET, LG_HALFOPEN, LG_NOREAD };
static const char *const lg_mode_names[] = {"get", "idle", "reset", "halfopen",
                                            "noread"};

/* The order of the summary line. */
enum lg_outcome {
    LG_OUT_OK,
    LG_OUT_CONNECT,
    LG_OUT_RESET,
    LG_OUT_EOF,
    LG_OUT_TIMEOUT,
    LG_OUT_BAD,
    LG_OUT_COUNT
};
static const char *const lg_out_names[] = {"ok",  "connect", "reset",
                                           "eof", "timeout", "bad"};

struct lg_opts {
    enum lg_mode mode;    /* -m */
    long long conc;       /* -c */
    long long dur_ms;     /* -d */
    long long max_req;    /* -n, 0 for no limit */
    int keep;             /* -k */
    const char *path;     /* -p */
    long long timeout_ms; /* -t */
    const char *out_path; /* -o, or NULL */
};

struct lg_run {
    /* Set by main() before the first worker starts; read-only after. */
    struct lg_opts opt;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char req[LG_PATH_MAX + 64]; /* the request every worker sends */
    size_t req_len;
    long long t0;  /* CLOCK_MONOTONIC us when the workers start */
    long long end; /* t0 + -d: no request starts after it */

    /* Updated by any worker without a lock. */
    atomic_llong claimed; /* requests started, for -n */
    atomic_int stop;      /* main() gave up starting workers */
    atomic_ullong count[LG_OUT_COUNT];
    atomic_ullong hist[LG_HIST_SIZE]; /* ok latencies, see lg_hist_index() */

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;  /* signalled as each worker ends */
    int done;             /* workers ended */
    FILE *out;            /* -o; NULL once main() has closed it */
};

/* One connection of idle mode. */
struct lg_idle_conn {
    int fd;        /* -1 once its event is recorded */
    int connected; /* 0 while connect() is under way */
    long long start_rt, start_mono;
};

struct lg_worker {
    struct lg_run *run;
    pthread_t tid;
    struct lg_idle_conn *conns; /* idle mode: -c of them */
    struct pollfd *pfds;        /* idle mode: one per conns[] */
    size_t out_len;             /* bytes in out[] not written yet */
    char out[LG_OUT_SIZE];      /* -o lines */
    char buf[LG_BUF_SIZE];      /* what we read */
};

/* What lg_read_response() learnt from a response head. */
struct lg_resp {
    int status;
    unsigned served_by; /* X-Served-By: :<port>, or 0 */
    unsigned long long length;
    int has_length;
    int to_eof;     /* no Content-Length: the body ends at EOF */
    int conn_close; /* Connection: close */
};

static void
lg_usage(FILE *f)
{
    fputs(
        "usage: loadgen [-m MODE] [-c N] [-d MS] [-n N] [-k] [-p PATH] "
        "[-t MS]\n"
        "               [-o FILE] HOST:PORT\n"
        "  -m MODE  get (default): HTTP/1.1 GET requests, one after the "
        "other;\n"
        "           idle: hold -c connections that send nothing until -d "
        "ends;\n"
        "           reset: send a GET, read 1 KiB of the reply, reset;\n"
        "           halfopen: send a GET, shut down writing, read to EOF;\n"
        "           noread: send a GET, never read, hold until -d ends\n"
        "  -c N     workers (connections in idle mode), 1..5000, default 16\n"
        "  -d MS    run time, default 5000; loadgen ends within -d + -t + "
        "1000 ms\n"
        "  -n N     stop after N requests in all, default 0 (no limit)\n"
        "  -k       keep-alive: reuse the connection (get mode)\n"
        "  -p PATH  request path, default /\n"
        "  -t MS    per-request timeout, connect + whole response, default "
        "2000\n"
        "  -o FILE  one line per event: <start_us> <end_us> <outcome> "
        "<served_by>\n"
        "Outcomes: ok connect reset eof timeout bad.  Prints one line,\n"
        "  loadgen: requests N ok N connect N reset N eof N timeout N bad N "
        "p50_ms F p99_ms F\n"
        "and exits 0 when it ran, 2 on a bad option, 1 if it could not run.\n",
        f);
}

/* A bad command line: one line on stderr, exit 2. */
static void __attribute__((format(printf, 1, 2), noreturn))
lg_bad(const char *fmt, ...)
{
    va_list ap;

    fputs("loadgen: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* Could not run at all: exit 1. */
static void
lg_fatal(const char *what, const char *why)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, why);
    exit(1);
}

static long long
lg_clock_us(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A decimal number in [min, max], digits only: "1e3", "-1", "" are errors. */
static int
lg_number(const char *s, long long min, long long max, long long *out)
{
    long long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (max - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (v < min)
        return -1;
    *out = v;
    return 0;
}

/*
 * Wait until fd is ready for events or the CLOCK_MONOTONIC deadline (us)
 * passes.  Returns the revents, 0 at the deadline, -1 on error.  Every
 * socket is non-blocking and every wait goes through here: that is what
 * bounds a request by -t as a whole, where SO_RCVTIMEO would bound each
 * read() alone and a target that drips bytes could stretch it forever.
 */
static int
lg_wait(int fd, short events, long long deadline)
{
    struct pollfd p;
    long long left;
    int n;

    p.fd = fd;
    p.events = events;
    for (;;) {
        if ((left = deadline - lg_clock_us(CLOCK_MONOTONIC)) <= 0)
            return 0;
        /* Rounded up: a 0 ms poll() just before the deadline would spin. */
        n = poll(&p, 1, (int)((left + 999) / 1000));
        if (n > 0)
            return p.revents;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/*
 * A failed send or recv.  ECONNRESET and EPIPE are the resets; anything
 * else (EHOSTUNREACH, a keepalive's ETIMEDOUT) broke the connection too,
 * and counts with them.
 */
static enum lg_outcome
lg_sock_error(void)
{
    return LG_OUT_RESET;
}

/* A non-blocking connect, waited for with poll() until deadline. */
static enum lg_outcome
lg_connect(const struct lg_run *run, long long deadline, int *fdp)
{
    socklen_t len = sizeof(int);
    int fd, err = 0;

    fd = socket(run->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0)
        return LG_OUT_CONNECT; /* EMFILE: we could not connect either */
    if (connect(fd, (const struct sockaddr *)&run->addr, run->addr_len) < 0) {
        /* EINTR leaves the connect under way, as EINPROGRESS does. */
        if (errno != EINPROGRESS && errno != EINTR)
            goto fail;
        if (lg_wait(fd, POLLOUT, deadline) <= 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)
            goto fail;
    }
    *fdp = fd;
    return LG_OUT_OK;
fail:
    close(fd);
    return LG_OUT_CONNECT;
}

/*
 * write_all() for a non-blocking socket.  MSG_NOSIGNAL, and SIGPIPE ignored
 * in main(), turn a write to a closed peer into EPIPE rather than a death.
 */
static enum lg_outcome
lg_send_all(int fd, const char *p, size_t len, long long deadline)
{
    ssize_t n;
    int rv;

    while (len > 0) {
        if ((n = send(fd, p, len, MSG_NOSIGNAL)) > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if ((rv = lg_wait(fd, POLLOUT, deadline)) == 0)
                return LG_OUT_TIMEOUT;
            if (rv < 0)
                return lg_sock_error();
        } else {
            return lg_sock_error();
        }
    }
    return LG_OUT_OK;
}

/* One recv() of up to cap bytes, before deadline.  LG_OUT_OK means *n > 0. */
static enum lg_outcome
lg_recv(int fd, char *buf, size_t cap, long long deadline, size_t *n)
{
    ssize_t r;
    int rv;

    for (;;) {
        if ((r = recv(fd, buf, cap, 0)) > 0) {
            *n = (size_t)r;
            return LG_OUT_OK;
        }
        if (r == 0)
            return LG_OUT_EOF;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return lg_sock_error();
        if ((rv = lg_wait(fd, POLLIN, deadline)) == 0)
            return LG_OUT_TIMEOUT;
        if (rv < 0)
            return lg_sock_error();
    }
}

static int
lg_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Does the header line [p, end) have this name?  Names ignore case. */
static const char *
lg_header(const char *p, const char *end, const char *name)
{
    size_t n = strlen(name);

    if ((size_t)(end - p) <= n || p[n] != ':' || strncasecmp(p, name, n) != 0)
        return NULL;
    for (p += n + 1; p < end && (*p == ' ' || *p == '\t'); p++)
        ;
    return p; /* the value */
}

/*
 * Parse a response head, [p, end) ending in CRLF CRLF.  Only what a load
 * client needs: the status, the framing, Connection: close and echo's
 * X-Served-By.  Returns -1 for anything unparseable.
 */
static int
lg_parse_head(const char *p, const char *end, struct lg_resp *rs)
{
    const char *eol, *v;
    long long n;
    char num[24];
    size_t len;

    /* "HTTP/1.1 200 OK", the reason optional. */
    if (end - p < 14 || memcmp(p, "HTTP/1.", 7) != 0 || !lg_is_digit(p[7]) ||
        p[8] != ' ' || !lg_is_digit(p[9]) || !lg_is_digit(p[10]) ||
        !lg_is_digit(p[11]) || (p[12] != ' ' && p[12] != '\r'))
        return -1;
    rs->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    p = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1;
    for (; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == p || eol[-1] != '\r')
            return -1; /* a bare LF: not what echo or Harbor sends */
        if (eol == p + 1)
            break;                   /* the blank line */
        len = (size_t)(eol - 1 - p); /* without the CR */
        if ((v = lg_header(p, p + len, "Content-Length")) != NULL) {
            if ((size_t)(p + len - v) >= sizeof(num))
                return -1;
            memcpy(num, v, (size_t)(p + len - v));
            num[p + len - v] = '\0';
            if (lg_number(num, 0, 1LL << 50, &n) < 0 ||
                (rs->has_length && rs->length != (unsigned long long)n))
                return -1; /* two that disagree: the framing is ambiguous */
            rs->length = (unsigned long long)n;
            rs->has_length = 1;
        } else if ((v = lg_header(p, p + len, "X-Served-By")) != NULL) {
            rs->served_by = 0;
            for (v += (v < p + len && *v == ':'); v < p + len; v++) {
                if (!lg_is_digit(*v) || rs->served_by > 65535)
                    break;
                rs->served_by = rs->served_by * 10 + (unsigned)(*v - '0');
            }
            if (v != p + len || rs->served_by > 65535)
                rs->served_by = 0; /* not ":<port>": unknown */
        } else if ((v = lg_header(p, p + len, "Connection")) != NULL) {
            for (; v + 5 <= p + len; v++)
                if (strncasecmp(v, "close", 5) == 0)
                    rs->conn_close = 1;
        } else if (lg_header(p, p + len, "Transfer-Encoding") != NULL) {
            return -1; /* echo never chunks, and neither do we */
        }
    }
    if (!rs->has_length) {
        /* 1xx, 204 and 304 have no body; any other ends at EOF. */
        rs->to_eof =
            !(rs->status < 200 || rs->status == 204 || rs->status == 304);
    }
    return 0;
}

/*
 * Read one response to the request just sent: the head, then the body it
 * frames.  rs says what the head said, even when the outcome is not ok.
 * With want_eof (halfopen) the connection must also close after the body.
 * A non-2xx status is bad as soon as its head is read: no need to wait for
 * the body of a response that has already failed.
 */
static enum lg_outcome
lg_read_response(struct lg_worker *w, int fd, long long deadline, int want_eof,
                 struct lg_resp *rs)
{
    unsigned long long body;
    size_t have = 0, n, from;
    enum lg_outcome o;
    char *eoh;

    memset(rs, 0, sizeof(*rs));
    for (;;) {
        if (have == sizeof(w->buf))
            return LG_OUT_BAD; /* a head this long is no answer of echo's */
        o = lg_recv(fd, w->buf + have, sizeof(w->buf) - have, deadline, &n);
        if (o != LG_OUT_OK)
            return o;
        from = have < 3 ? 0 : have - 3; /* CRLF CRLF may straddle reads */
        have += n;
        if ((eoh = memmem(w->buf + from, have - from, "\r\n\r\n", 4)) != NULL)
            break;
    }
    eoh += 4;
    if (lg_parse_head(w->buf, eoh, rs) < 0)
        return LG_OUT_BAD;
    if (rs->status < 200 || rs->status > 299)
        return LG_OUT_BAD;

    /* The body is counted, not kept: w->buf is overwritten read by read. */
    body = (unsigned long long)(w->buf + have - eoh);
    if (rs->to_eof) {
        while ((o = lg_recv(fd, w->buf, sizeof(w->buf), deadline, &n)) ==
               LG_OUT_OK)
            ;
        return o == LG_OUT_EOF ? LG_OUT_OK : o;
    }
    while (body < rs->length) {
        if ((o = lg_recv(fd, w->buf, sizeof(w->buf), deadline, &n)) !=
            LG_OUT_OK)
            return o;
        body += n;
    }
    if (body > rs->length)
        return LG_OUT_BAD; /* bytes past the body: we sent one request */
    if (!want_eof)
        return LG_OUT_OK;
    o = lg_recv(fd, w->buf, sizeof(w->buf), deadline, &n);
    if (o == LG_OUT_EOF)
        return LG_OUT_OK;
    return o == LG_OUT_OK ? LG_OUT_BAD : o;
}

static size_t
lg_hist_index(unsigned long long us)
{
    unsigned e = 11;

    if (us < LG_HIST_EXACT)
        return (size_t)us;
    if (us > 0xffffffffULL)
        us = 0xffffffffULL;
    while ((us >> (e + 1)) != 0)
        e++; /* 2^e <= us < 2^(e+1) */
    return LG_HIST_EXACT + (e - 11) * LG_HIST_SUB +
           (size_t)((us >> (e - 10)) - LG_HIST_SUB);
}

/* The middle of bucket i, in microseconds. */
static double
lg_hist_us(size_t i)
{
    size_t k = i - LG_HIST_EXACT;
    unsigned shift;

    if (i < LG_HIST_EXACT)
        return (double)i;
    shift = (unsigned)(k / LG_HIST_SUB) + 1;
    return (double)((unsigned long long)(LG_HIST_SUB + k % LG_HIST_SUB)
                    << shift) +
           (double)((1ULL << shift) - 1) / 2;
}

/* Write the worker's -o lines.  A file write, not a socket: fine under lock. */
static void
lg_flush(struct lg_worker *w)
{
    struct lg_run *run = w->run;

    if (w->out_len == 0)
        return;
    pthread_mutex_lock(&run->lock);
    if (run->out != NULL)
        fwrite(w->out, 1, w->out_len, run->out);
    pthread_mutex_unlock(&run->lock);
    w->out_len = 0;
}

/* One event, from start_* to now. */
static void
lg_record(struct lg_worker *w, enum lg_outcome o, long long start_rt,
          long long start_mono, unsigned served_by)
{
    struct lg_run *run = w->run;
    long long end_rt = lg_clock_us(CLOCK_REALTIME);
    long long end_mono = lg_clock_us(CLOCK_MONOTONIC);

    size_t bucket = lg_hist_index((unsigned long long)(end_mono - start_mono));

    atomic_fetch_add_explicit(&run->count[o], 1, memory_order_relaxed);
    if (o == LG_OUT_OK)
        atomic_fetch_add_explicit(&run->hist[bucket], 1, memory_order_relaxed);
    if (run->opt.out_path == NULL)
        return;
    if (w->out_len + LG_LINE_MAX > sizeof(w->out))
        lg_flush(w);
    w->out_len += (size_t)snprintf(
        w->out + w->out_len, sizeof(w->out) - w->out_len, "%lld %lld %s %u\n",
        start_rt, end_rt, lg_out_names[o], served_by);
}

/* May another request start?  Claims it for -n if so. */
static int
lg_claim(struct lg_run *run)
{
    if (atomic_load(&run->stop) || lg_clock_us(CLOCK_MONOTONIC) >= run->end)
        return 0;
    return run->opt.max_req == 0 ||
           atomic_fetch_add(&run->claimed, 1) < run->opt.max_req;
}

/* Sleep ms, but not past the end of the run. */
static void
lg_pause(const struct lg_run *run, long long ms)
{
    long long left = run->end - lg_clock_us(CLOCK_MONOTONIC);
    struct timespec ts;

    if (left > ms * 1000)
        left = ms * 1000;
    if (left <= 0)
        return;
    ts.tv_sec = (time_t)(left / 1000000);
    ts.tv_nsec = (long)(left % 1000000) * 1000;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ; /* woken early: sleep the rest */
}

/*
 * Get mode's request: connect unless -k kept a connection, send, read the
 * response.  Whatever is not a clean ok closes the connection, as does a
 * response that asked for it or ran to EOF.
 */
static enum lg_outcome
lg_get_one(struct lg_worker *w, int *fdp, long long deadline, unsigned *served)
{
    struct lg_run *run = w->run;
    struct lg_resp rs;
    enum lg_outcome o;

    memset(&rs, 0, sizeof(rs));
    if (*fdp < 0 && (o = lg_connect(run, deadline, fdp)) != LG_OUT_OK)
        return o;
    o = lg_send_all(*fdp, run->req, run->req_len, deadline);
    if (o == LG_OUT_OK)
        o = lg_read_response(w, *fdp, deadline, 0, &rs);
    *served = rs.served_by;
    if (o != LG_OUT_OK || !run->opt.keep || rs.conn_close || rs.to_eof) {
        close(*fdp);
        *fdp = -1;
    }
    return o;
}

/*
 * Reset mode: read the start of a large reply, then close with SO_LINGER
 * {1, 0}, which sends RST instead of FIN: the proxy sees a client vanish
 * mid-response, with the backend still writing.
 */
static enum lg_outcome
lg_reset_one(struct lg_worker *w, long long deadline, unsigned *served)
{
    struct lg_run *run = w->run;
    struct linger lg = {1, 0};
    struct lg_resp rs;
    enum lg_outcome o;
    size_t got = 0, n;
    char *eoh;
    int fd;

    if ((o = lg_connect(run, deadline, &fd)) != LG_OUT_OK)
        return o;
    o = lg_send_all(fd, run->req, run->req_len, deadline);
    while (o == LG_OUT_OK && got < LG_RESET_READ) {
        o = lg_recv(fd, w->buf + got, LG_RESET_READ - got, deadline, &n);
        got += o == LG_OUT_OK ? n : 0;
    }
    /* A reply shorter than 1 KiB, read to its EOF, still gets the reset. */
    if (got > 0 && o == LG_OUT_EOF)
        o = LG_OUT_OK;
    memset(&rs, 0, sizeof(rs));
    if ((eoh = memmem(w->buf, got, "\r\n\r\n", 4)) != NULL &&
        lg_parse_head(w->buf, eoh + 4, &rs) == 0)
        *served = rs.served_by;
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0 &&
        o == LG_OUT_OK)
        o = LG_OUT_BAD; /* a plain close: the reset was not done */
    close(fd);
    return o;
}

/*
 * Halfopen mode: shutdown(SHUT_WR) sends our FIN right after the request,
 * while we keep reading.  A proxy must forward that EOF to the backend and
 * still bring the whole reply back, then close.
 */
static enum lg_outcome
lg_halfopen_one(struct lg_worker *w, long long deadline, unsigned *served)
{
    struct lg_run *run = w->run;
    struct lg_resp rs;
    enum lg_outcome o;
    int fd;

    memset(&rs, 0, sizeof(rs));
    if ((o = lg_connect(run, deadline, &fd)) != LG_OUT_OK)
        return o;
    o = lg_send_all(fd, run->req, run->req_len, deadline);
    if (o == LG_OUT_OK && shutdown(fd, SHUT_WR) < 0)
        o = lg_sock_error();
    if (o == LG_OUT_OK)
        o = lg_read_response(w, fd, deadline, 1, &rs);
    *served = rs.served_by;
    close(fd);
    return o;
}

/*
 * Noread mode: ask for a large reply and never read it, so the proxy's
 * writes to us stall.  We still watch the socket, asking poll() for
 * POLLRDHUP only (never POLLIN): it tells a FIN or a reset from the proxy
 * without our reading a byte.  Closing with the reply unread sends RST.
 */
static enum lg_outcome
lg_noread_one(struct lg_worker *w, long long deadline)
{
    struct lg_run *run = w->run;
    enum lg_outcome o;
    int fd, rv;

    if ((o = lg_connect(run, deadline, &fd)) != LG_OUT_OK)
        return o;
    o = lg_send_all(fd, run->req, run->req_len, deadline);
    if (o == LG_OUT_OK && (rv = lg_wait(fd, POLLRDHUP, run->end)) != 0)
        o = rv > 0 && !(rv & POLLERR) ? LG_OUT_EOF : lg_sock_error();
    close(fd);
    return o;
}

/* Tell main() this worker is done; after this it touches nothing shared. */
static void
lg_finish(struct lg_worker *w)
{
    struct lg_run *run = w->run;

    lg_flush(w);
    pthread_mutex_lock(&run->lock);
    run->done++;
    pthread_cond_signal(&run->cond);
    pthread_mutex_unlock(&run->lock);
}

/* The thread of a get, reset, halfopen or noread worker. */
static void *
lg_worker_main(void *arg)
{
    struct lg_worker *w = arg;
    struct lg_run *run = w->run;
    long long start_rt, start_mono, deadline;
    enum lg_outcome o;
    unsigned served;
    int fd = -1; /* get mode's kept connection */

    while (lg_claim(run)) {
        start_rt = lg_clock_us(CLOCK_REALTIME);
        start_mono = lg_clock_us(CLOCK_MONOTONIC);
        deadline = start_mono + run->opt.timeout_ms * 1000;
        served = 0;
        switch (run->opt.mode) {
        case LG_GET:
            o = lg_get_one(w, &fd, deadline, &served);
            break;
        case LG_RESET:
            o = lg_reset_one(w, deadline, &served);
            break;
        case LG_HALFOPEN:
            o = lg_halfopen_one(w, deadline, &served);
            break;
        default:
            o = lg_noread_one(w, deadline);
            break;
        }
        lg_record(w, o, start_rt, start_mono, served);
        if (run->opt.mode == LG_NOREAD)
            break; /* one held connection per worker */
        /*
         * A target that refuses connections answers at once: without a
         * pause every worker would spin on connect(), starving the very
         * process being restarted on a small machine.
         */
        if (o == LG_OUT_CONNECT)
            lg_pause(run, LG_RETRY_MS);
    }
    if (fd >= 0)
        close(fd);
    lg_finish(w);
    return NULL;
}

/* Idle mode: start conns[i]'s connect.  A refusal at once is its event. */
static void
lg_idle_open(struct lg_worker *w, struct lg_idle_conn *c)
{
    struct lg_run *run = w->run;

    c->start_rt = lg_clock_us(CLOCK_REALTIME);
    c->start_mono = lg_clock_us(CLOCK_MONOTONIC);
    c->connected = 0;
    c->fd = socket(run->addr.ss_family,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        lg_record(w, LG_OUT_CONNECT, c->start_rt, c->start_mono, 0);
        return;
    }
    if (connect(c->fd, (const struct sockaddr *)&run->addr, run->addr_len) ==
        0) {
        c->connected = 1;
    } else if (errno != EINPROGRESS && errno != EINTR) {
        lg_record(w, LG_OUT_CONNECT, c->start_rt, c->start_mono, 0);
        close(c->fd);
        c->fd = -1;
    }
}

/* Idle mode: the connection's event, and its close. */
static void
lg_idle_end(struct lg_worker *w, struct lg_idle_conn *c, enum lg_outcome o)
{
    lg_record(w, o, c->start_rt, c->start_mono, 0);
    close(c->fd);
    c->fd = -1;
}

/* Idle mode: what poll() said about one connection. */
static void
lg_idle_event(struct lg_worker *w, struct lg_idle_conn *c, short revents)
{
    socklen_t len = sizeof(int);
    ssize_t n;
    int err = 0;

    if (!c->connected) {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
            err == 0 && (revents & POLLOUT))
            c->connected = 1;
        else
            lg_idle_end(w, c, LG_OUT_CONNECT);
        return;
    }
    /* We send nothing, but whatever comes back (a 408, say) is drained. */
    while ((n = recv(c->fd, w->buf, sizeof(w->buf), 0)) > 0)
        ;
    if (n == 0)
        lg_idle_end(w, c, LG_OUT_EOF);
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        lg_idle_end(w, c, lg_sock_error());
}

/*
 * Idle mode, every connection in this one thread: open them paced over
 * LG_PACE_US (or half of -d, if shorter) so the proxy sees a slowloris
 * build up rather than a burst, hold them until -d ends, then close them.
 * pfds[i] is conns[i]'s, with fd -1 (which poll() skips) when it has none.
 */
static void *
lg_idle_main(void *arg)
{
    struct lg_worker *w = arg;
    struct lg_run *run = w->run;
    long long now, wake, window, total = run->opt.conc, opened = 0, i;
    long long tmo = run->opt.timeout_ms * 1000;
    struct lg_idle_conn *c;
    int ms;

    window = run->end - run->t0 < 2 * LG_PACE_US ? (run->end - run->t0) / 2
                                                 : LG_PACE_US;
    for (;;) {
        if ((now = lg_clock_us(CLOCK_MONOTONIC)) >= run->end ||
            atomic_load(&run->stop))
            break;
        while (opened < total && now >= run->t0 + window * opened / total) {
            if (!lg_claim(run)) {
                total = opened; /* -n is used up */
                break;
            }
            lg_idle_open(w, &w->conns[opened++]);
        }
        wake = run->end;
        if (opened < total && run->t0 + window * opened / total < wake)
            wake = run->t0 + window * opened / total;
        for (i = 0; i < opened; i++) {
            c = &w->conns[i];
            if (c->fd >= 0 && !c->connected && now >= c->start_mono + tmo)
                lg_idle_end(w, c, LG_OUT_CONNECT); /* timed out */
            if (c->fd >= 0 && !c->connected && c->start_mono + tmo < wake)
                wake = c->start_mono + tmo;
            w->pfds[i].fd = c->fd;
            w->pfds[i].events = c->connected ? POLLIN : POLLOUT;
            w->pfds[i].revents = 0;
        }
        /* wake > now here, but a negative timeout would wait forever. */
        ms = wake > now ? (int)((wake - now + 999) / 1000) : 0;
        if (poll(w->pfds, (nfds_t)opened, ms) <= 0)
            continue; /* the deadline, or EINTR: look at the clock again */
        for (i = 0; i < opened; i++)
            if (w->conns[i].fd >= 0 && w->pfds[i].revents != 0)
                lg_idle_event(w, &w->conns[i], w->pfds[i].revents);
    }
    /* -d is over: every connection still open stayed open, and is ok. */
    for (i = 0; i < opened; i++)
        if (w->conns[i].fd >= 0)
            lg_idle_end(w, &w->conns[i],
                        w->conns[i].connected ? LG_OUT_OK : LG_OUT_CONNECT);
    lg_finish(w);
    return NULL;
}

/* Nearest-rank percentile of the ok latencies, in milliseconds. */
static double
lg_percentile_ms(struct lg_run *run, unsigned long long total, unsigned pct)
{
    unsigned long long rank, seen = 0;
    size_t i;

    if (total == 0)
        return 0;
    rank = (total * pct + 99) / 100;
    for (i = 0; i < LG_HIST_SIZE; i++)
        if ((seen += atomic_load(&run->hist[i])) >= rank)
            break;
    return lg_hist_us(i < LG_HIST_SIZE ? i : LG_HIST_SIZE - 1) / 1000;
}

static void
lg_summary(struct lg_run *run)
{
    unsigned long long n[LG_OUT_COUNT], all = 0;
    size_t i;

    for (i = 0; i < LG_OUT_COUNT; i++)
        all += n[i] = atomic_load(&run->count[i]);
    printf("loadgen: requests %llu ok %llu connect %llu reset %llu eof %llu "
           "timeout %llu bad %llu p50_ms %.2f p99_ms %.2f\n",
           all, n[LG_OUT_OK], n[LG_OUT_CONNECT], n[LG_OUT_RESET], n[LG_OUT_EOF],
           n[LG_OUT_TIMEOUT], n[LG_OUT_BAD],
           lg_percentile_ms(run, n[LG_OUT_OK], 50),
           lg_percentile_ms(run, n[LG_OUT_OK], 99));
    fflush(stdout);
}

static void
lg_options(int argc, char **argv, struct lg_opts *o, const char **target)
{
    size_t i;
    int ch;

    o->mode = LG_GET;
    o->conc = 16;
    o->dur_ms = 5000;
    o->path = "/";
    o->timeout_ms = 2000;
    opterr = 0; /* getopt's own messages would be a second stderr line */
    while ((ch = getopt(argc, argv, ":m:c:d:n:kp:t:o:h")) != -1) {
        switch (ch) {
        case 'm':
            for (i = 0; i < sizeof(lg_mode_names) / sizeof(*lg_mode_names); i++)
                if (strcmp(optarg, lg_mode_names[i]) == 0)
                    break;
            if (i == sizeof(lg_mode_names) / sizeof(*lg_mode_names))
                lg_bad("-m %s: not get, idle, reset, halfopen or noread",
                       optarg);
            o->mode = (enum lg_mode)i;
            break;
        case 'c':
            if (lg_number(optarg, 1, LG_CONC_MAX, &o->conc) < 0)
                lg_bad("-c %s: not a number from 1 to 5000", optarg);
            break;
        case 'd':
            if (lg_number(optarg, 1, 86400000, &o->dur_ms) < 0)
                lg_bad("-d %s: not a number of ms from 1 to 86400000", optarg);
            break;
        case 'n':
            if (lg_number(optarg, 0, 1LL << 50, &o->max_req) < 0)
                lg_bad("-n %s: not a count", optarg);
            break;
        case 'k':
            o->keep = 1;
            break;
        case 'p':
            if (optarg[0] != '/' || strlen(optarg) > LG_PATH_MAX ||
                strpbrk(optarg, " \t\r\n") != NULL)
                lg_bad("-p %s: not a path (/..., no spaces)", optarg);
            o->path = optarg;
            break;
        case 't':
            if (lg_number(optarg, 1, 3600000, &o->timeout_ms) < 0)
                lg_bad("-t %s: not a number of ms from 1 to 3600000", optarg);
            break;
        case 'o':
            o->out_path = optarg;
            break;
        case 'h':
            lg_usage(stdout);
            exit(0);
        case ':':
            lg_bad("-%c needs a value (-h for help)", optopt);
        default:
            lg_bad("unknown option -%c (-h for help)", optopt);
        }
    }
    if (argc - optind != 1)
        lg_bad("expected one HOST:PORT (-h for help)");
    *target = argv[optind];
}

/* HOST:PORT (or [HOST]:PORT) to run->addr: a bad one is a bad option. */
static void
lg_resolve(struct lg_run *run, const char *target)
{
    struct addrinfo hints, *res;
    char host[256];
    const char *colon = strrchr(target, ':');
    long long port;
    size_t len;
    int rv;

    if (colon == NULL || lg_number(colon + 1, 1, 65535, &port) < 0)
        lg_bad("%s: not HOST:PORT", target);
    len = (size_t)(colon - target);
    if (len >= 2 && target[0] == '[' && target[len - 1] == ']') {
        target++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(host))
        lg_bad("%s: not HOST:PORT", target);
    memcpy(host, target, len);
    host[len] = '\0';

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if ((rv = getaddrinfo(host, colon + 1, &hints, &res)) != 0)
        lg_fatal(host, gai_strerror(rv));
    /* The first address will do: callers pass a numeric 127.0.0.1. */
    memcpy(&run->addr, res->ai_addr, res->ai_addrlen);
    run->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
}

/* The one request of the run.  Any Host will do: nothing routes on it. */
static void
lg_request(struct lg_run *run)
{
    int close_it = run->opt.mode != LG_GET || !run->opt.keep;

    run->req_len = (size_t)snprintf(
        run->req, sizeof(run->req), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n",
        run->opt.path, close_it ? "Connection: close\r\n" : "");
}

/*
 * Each worker may hold a socket, and idle mode holds -c of them: the usual
 * soft limit of 1024 would cut -c 5000 short.  The hard limit is ours to use.
 */
static void
lg_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int
main(int argc, char **argv)
{
    struct lg_run *run;
    struct lg_worker *workers;
    pthread_condattr_t ca;
    pthread_attr_t attr;
    struct timespec ts;
    const char *target;
    long long i, nworkers, started, hard;
    int rv, joined, err = 0;

    if ((run = calloc(1, sizeof(*run))) == NULL)
        lg_fatal("memory", strerror(errno));
    lg_options(argc, argv, &run->opt, &target);
    lg_resolve(run, target);
    lg_request(run);
    for (i = 0; i < LG_OUT_COUNT; i++)
        atomic_init(&run->count[i], 0);
    for (i = 0; i < LG_HIST_SIZE; i++)
        atomic_init(&run->hist[i], 0);
    atomic_init(&run->claimed, 0);
    atomic_init(&run->stop, 0);

    /* A send to a closed peer fails with EPIPE instead of killing us. */
    signal(SIGPIPE, SIG_IGN);
    lg_raise_nofile();
    if (run->opt.out_path != NULL &&
        (run->out = fopen(run->opt.out_path, "w")) == NULL)
        lg_fatal(run->opt.out_path, strerror(errno));

    /* The hard bound is on CLOCK_MONOTONIC: a clock step must not move it. */
    if (pthread_mutex_init(&run->lock, NULL) != 0 ||
        pthread_condattr_init(&ca) != 0 ||
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&run->cond, &ca) != 0)
        lg_fatal("pthread", "cannot set up the lock");
    pthread_condattr_destroy(&ca);

    nworkers = run->opt.mode == LG_IDLE ? 1 : run->opt.conc;
    if ((workers = calloc((size_t)nworkers, sizeof(*workers))) == NULL)
        lg_fatal("memory", strerror(errno));
    for (i = 0; i < nworkers; i++)
        workers[i].run = run;
    if (run->opt.mode == LG_IDLE &&
        ((workers[0].conns = calloc((size_t)run->opt.conc,
                                    sizeof(*workers[0].conns))) == NULL ||
         (workers[0].pfds =
              calloc((size_t)run->opt.conc, sizeof(*workers[0].pfds))) == NULL))
        lg_fatal("memory", strerror(errno));

    if (pthread_attr_init(&attr) != 0 ||
        pthread_attr_setstacksize(&attr, LG_STACK_SIZE) != 0)
        lg_fatal("pthread", "cannot set the stack size");
    run->t0 = lg_clock_us(CLOCK_MONOTONIC);
    run->end = run->t0 + run->opt.dur_ms * 1000;
    for (started = 0; started < nworkers; started++) {
        err = pthread_create(&workers[started].tid, &attr,
                             run->opt.mode == LG_IDLE ? lg_idle_main
                                                      : lg_worker_main,
                             &workers[started]);
        if (err != 0) {
            /* Fewer workers than asked is not the run asked for: stop. */
            atomic_store(&run->stop, 1);
            break;
        }
    }
    pthread_attr_destroy(&attr);

    /*
     * Every worker ends by -d + -t on its own; the grace covers thread
     * start-up and the last flush.  Past it, whatever still runs is left
     * behind: the bound is the promise the chaos scripts build on.
     */
    hard =
        run->t0 + (run->opt.dur_ms + run->opt.timeout_ms + LG_GRACE_MS) * 1000;
    ts.tv_sec = (time_t)(hard / 1000000);
    ts.tv_nsec = (long)(hard % 1000000) * 1000;
    pthread_mutex_lock(&run->lock);
    rv = 0;
    while (run->done < started && rv != ETIMEDOUT)
        rv = pthread_cond_timedwait(&run->cond, &run->lock, &ts);
    joined = run->done == started;
    if (!joined)
        fprintf(stderr, "loadgen: %lld workers still running at the bound\n",
                started - run->done);
    if (run->out != NULL && fclose(run->out) != 0)
        fprintf(stderr, "loadgen: %s: %s\n", run->opt.out_path,
                strerror(errno));
    run->out = NULL;
    pthread_mutex_unlock(&run->lock);

    if (err != 0)
        lg_fatal("pthread_create", strerror(err));
    lg_summary(run);
    /* A worker left behind at the bound may still use run: keep it. */
    if (!joined)
        return 0;
    for (i = 0; i < started; i++)
        pthread_join(workers[i].tid, NULL);
    free(workers[0].conns);
    free(workers[0].pfds);
    free(workers);
    pthread_cond_destroy(&run->cond);
    pthread_mutex_destroy(&run->lock);
    free(run);
    return 0;
}
