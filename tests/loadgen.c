/*
 * loadgen.c - the chaos suite's load client (build/loadgen).
 *
 * Drives one HOST:PORT with -c workers in one of five modes - HTTP GETs, or
 * connections that idle, reset, half-close or never read - and prints one
 * summary line; -o adds one line per event.  Every wait has a deadline, so
 * the run ends within -d + -t + 1000 ms whatever the target does, even when
 * it is stopped with SIGSTOP.  One file, no common/: scripts build it alone.
 *
 * Those workers are a closed loop: a slow target slows the requests down,
 * and the latency it would have caused the requests never sent is hidden
 * (coordinated omission).  -r is the open loop for benchmarking: requests
 * arrive at a constant rate whatever the target does, each of a class drawn
 * from -M, and each is timed from when it was due, not from when it went.
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
 *
 * With -r the workers are -c senders and one scheduler, started last.  The
 * scheduler alone draws from the seeded generator and keeps the clock: at
 * each arrival's due time it hands a struct lg_job to a waiting sender
 * through struct lg_queue, or, when all -c are busy, counts it dropped - an
 * arrival never waits for a sender, or the client would hide the overload
 * it is there to show.  A sender runs the job to its end (due + -t at most)
 * and waits again.  When -d is over the scheduler closes the queue, and each
 * sender ends once it has no job; both then say they are done as above.
 * Each request opens its own connection, as get mode does: no request
 * waits behind another's slow reply, and a balancer places every one.  -k
 * keeps a connection per sender instead, which high rates need: a new
 * connection per request leaves a TIME_WAIT port each.
 */
#define _GNU_SOURCE /* POLLRDHUP and memmem(), both Linux's */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
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

/* -r's bounds; a class's name goes into a header, its path into a request. */
#define LG_RATE_MAX   1000000             /* requests per second */
#define LG_CLASS_MAX  16                  /* -M classes */
#define LG_NAME_MAX   32                  /* a class's name */
#define LG_WEIGHT_MAX 1000000             /* a class's weight */
#define LG_TOKENS_MAX 1000000000          /* a class's tokens */
#define LG_REQ_SIZE   (LG_PATH_MAX + 256) /* a request: path and headers */

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

/*
 * What -r reports per class, in the order of its lines.  Shed is a 503: the
 * target chose to refuse, which a latency-aware balancer may do on purpose,
 * so it is not an error.  Dropped never left the client: see lg_arrive().
 */
enum lg_result {
    LG_RES_OK,
    LG_RES_SHED,
    LG_RES_ERROR,
    LG_RES_TIMEOUT,
    LG_RES_DROPPED,
    LG_RES_COUNT
};
static const char *const lg_res_names[] = {"ok", "shed", "errors", "timeouts",
                                           "dropped"};

struct lg_opts {
    enum lg_mode mode;    /* -m */
    long long conc;       /* -c */
    long long dur_ms;     /* -d */
    long long max_req;    /* -n, 0 for no limit */
    int keep;             /* -k */
    const char *path;     /* -p */
    long long timeout_ms; /* -t */
    const char *out_path; /* -o, or NULL */
    long long rate;       /* -r, 0 for the closed loop */
    const char *mix;      /* -M, or NULL */
    long long seed;       /* -S */
    int seeded;           /* -S was given */
};

/*
 * One request class of -r: a -M entry, or "all" asking for -p.  The counts
 * and the histogram make the class's line of the report.
 */
struct lg_class {
    /* Set by main() before the first thread starts; read-only after. */
    char name[LG_NAME_MAX + 1];
    char path[LG_PATH_MAX + 1];
    long long weight, tok_lo, tok_hi;

    /* Updated by any thread without a lock. */
    atomic_ullong res[LG_RES_COUNT];
    atomic_ullong max_us;             /* the slowest ok */
    atomic_ullong hist[LG_HIST_SIZE]; /* ok latencies, from the due time */
};

/* One arrival of -r, from the scheduler to a sender. */
struct lg_job {
    long long due; /* CLOCK_MONOTONIC us: its latency starts here */
    int cls;       /* index in run->cls */
    long long tokens;
};

/*
 * -r's hand-off.  A job is queued only for a sender already waiting (count
 * never passes idle), so it starts at once: the ring is a mailbox, not a
 * backlog, and cap = -c is all it can ever hold.
 */
struct lg_queue {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t job;   /* a job was queued, or the queue closed */
    pthread_cond_t ready; /* every sender is waiting: arrivals may begin */
    struct lg_job *jobs;  /* a ring of cap */
    size_t cap, head, count;
    size_t idle; /* senders waiting in lg_queue_take() */
    int closed;  /* no more jobs: the senders end */
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

    /* -r's, set by main() too. */
    struct lg_class *cls; /* ncls of them */
    int ncls;
    long long weight_sum; /* of cls[].weight */
    size_t senders;       /* the -c sender threads */

    /* Updated by any worker without a lock. */
    atomic_llong claimed; /* requests started, for -n */
    atomic_int stop;      /* main() gave up starting workers */
    atomic_ullong count[LG_OUT_COUNT];
    atomic_ullong hist[LG_HIST_SIZE]; /* ok latencies, see lg_hist_index() */
    atomic_llong rate_t0;             /* -r: when arrival 0 was due, or 0 */
    atomic_llong rate_t1;             /* -r: when the arrivals ended */
    atomic_llong arrived;             /* -r: arrivals, sent or dropped */

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;  /* signalled as each worker ends */
    int done;             /* workers ended */
    FILE *out;            /* -o; NULL once main() has closed it */

    struct lg_queue queue; /* -r: has its own lock */
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
    char req[LG_REQ_SIZE];      /* -r: a sender's request */
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
        "               [-o FILE] [-r RATE [-M MIX] [-S SEED]] HOST:PORT\n"
        "  -m MODE  get (default): HTTP/1.1 GET requests, one after the "
        "other;\n"
        "           idle: hold -c connections that send nothing until -d "
        "ends;\n"
        "           reset: send a GET, read 1 KiB of the reply, reset;\n"
        "           halfopen: send a GET, shut down writing, read to EOF;\n"
        "           noread: send a GET, never read, hold until -d ends\n"
        "  -c N     workers (connections in idle mode), 1..5000, default 16;\n"
        "           with -r, senders: the most requests outstanding\n"
        "  -d MS    run time, default 5000; loadgen ends within -d + -t + "
        "1000 ms\n"
        "  -n N     stop after N requests in all, default 0 (no limit)\n"
        "  -k       keep-alive: reuse the connection (get mode, -r senders)\n"
        "  -p PATH  request path, default /\n"
        "  -t MS    per-request timeout, connect + whole response, default "
        "2000\n"
        "  -o FILE  one line per event: <start_us> <end_us> <outcome> "
        "<served_by>\n"
        "  -r RATE  open loop, get mode: RATE requests/s in all, 1..1000000,\n"
        "           each timed from when it was due, -t its deadline; an\n"
        "           arrival that finds all -c senders busy is dropped\n"
        "  -M MIX   -r's classes, NAME:PATH:WEIGHT:TOKENS[,...], TOKENS N or\n"
        "           LO-HI; a request sends X-Request-Class: NAME and\n"
        "           X-Token-Estimate.  Default: class all, -p, neither header\n"
        "  -S SEED  -M's generator, default 1: a seed gives one request "
        "sequence\n"
        "Outcomes: ok connect reset eof timeout bad (-o: dropped too).  "
        "Prints\n"
        "  loadgen: requests N ok N connect N reset N eof N timeout N bad N "
        "p50_ms F p99_ms F\n"
        "with -r then a line per class and a total (ok 2xx, shed 503):\n"
        "  class=NAME sent=N ok=N shed=N errors=N timeouts=N dropped=N "
        "p50_ms=F\n"
        "    p99_ms=F max_ms=F\n"
        "  total offered_rps=F goodput_rps=F sent=N ... max_ms=F\n"
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

/* One -o line, if there is a -o. */
static void
lg_event(struct lg_worker *w, long long start_rt, long long end_rt,
         const char *what, unsigned served_by)
{
    if (w->run->opt.out_path == NULL)
        return;
    if (w->out_len + LG_LINE_MAX > sizeof(w->out))
        lg_flush(w);
    w->out_len += (size_t)snprintf(
        w->out + w->out_len, sizeof(w->out) - w->out_len, "%lld %lld %s %u\n",
        start_rt, end_rt, what, served_by);
}

/* One event, from start_* to now.  Returns its latency in us. */
static long long
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
    lg_event(w, start_rt, end_rt, lg_out_names[o], served_by);
    return end_mono - start_mono;
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
 * Get mode's request, and -r's: connect unless -k kept a connection, send
 * req, read the response into rs.  Whatever is not a clean ok closes the
 * connection, as does a response that asked for it or ran to EOF.
 */
static enum lg_outcome
lg_get_one(struct lg_worker *w, int *fdp, const char *req, size_t req_len,
           long long deadline, struct lg_resp *rs)
{
    struct lg_run *run = w->run;
    enum lg_outcome o;

    memset(rs, 0, sizeof(*rs));
    if (*fdp < 0 && (o = lg_connect(run, deadline, fdp)) != LG_OUT_OK)
        return o;
    o = lg_send_all(*fdp, req, req_len, deadline);
    if (o == LG_OUT_OK)
        o = lg_read_response(w, *fdp, deadline, 0, rs);
    if (o != LG_OUT_OK || !run->opt.keep || rs->conn_close || rs->to_eof) {
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
    struct lg_resp rs;
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
            o = lg_get_one(w, &fd, run->req, run->req_len, deadline, &rs);
            served = rs.served_by;
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

/* A CLOCK_MONOTONIC instant in us, as the struct timespec waits take. */
static struct timespec
lg_timespec(long long us)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(us / 1000000);
    ts.tv_nsec = (long)(us % 1000000) * 1000;
    return ts;
}

/* The CLOCK_REALTIME of a CLOCK_MONOTONIC instant not long past, for -o. */
static long long
lg_realtime_of(long long mono)
{
    return lg_clock_us(CLOCK_REALTIME) - (lg_clock_us(CLOCK_MONOTONIC) - mono);
}

/*
 * splitmix64: small, seeded, and the same on every libc, which rand() is
 * not.  Only the scheduler draws from it, so one -S gives the same classes
 * and tokens in the same order however the senders happen to run.
 */
static uint64_t
lg_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/*
 * An arrival's class, by weight, and its tokens.  The modulo's bias is
 * below 2^-33 for weights and token ranges this small (2^24, 2^30).
 */
static void
lg_pick(const struct lg_run *run, uint64_t *rng, struct lg_job *job)
{
    long long r = (long long)(lg_rand(rng) % (uint64_t)run->weight_sum);
    const struct lg_class *c;
    int i;

    for (i = 0; i < run->ncls - 1 && r >= run->cls[i].weight; i++)
        r -= run->cls[i].weight;
    c = &run->cls[i];
    job->cls = i;
    job->tokens =
        c->tok_lo +
        (long long)(lg_rand(rng) % (uint64_t)(c->tok_hi - c->tok_lo + 1));
}

/*
 * A sender waits here for its next job.  Returns 0 with *job, or -1 once
 * the queue is closed and empty: the sender's end.  The last sender to
 * wait wakes the scheduler, which holds arrival 0 until they all do.
 */
static int
lg_queue_take(struct lg_run *run, struct lg_job *job)
{
    struct lg_queue *q = &run->queue;
    int rv = -1;

    pthread_mutex_lock(&q->lock);
    if (++q->idle == run->senders)
        pthread_cond_signal(&q->ready);
    while (q->count == 0 && !q->closed)
        pthread_cond_wait(&q->job, &q->lock);
    if (q->count > 0) {
        *job = q->jobs[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        rv = 0;
    }
    q->idle--;
    pthread_mutex_unlock(&q->lock);
    return rv;
}

/* Give job to a sender that is waiting.  Returns -1 when none is. */
static int
lg_queue_put(struct lg_run *run, const struct lg_job *job)
{
    struct lg_queue *q = &run->queue;
    int rv = -1;

    pthread_mutex_lock(&q->lock);
    if (q->idle > q->count) {
        q->jobs[(q->head + q->count) % q->cap] = *job;
        q->count++;
        pthread_cond_signal(&q->job);
        rv = 0;
    }
    pthread_mutex_unlock(&q->lock);
    return rv;
}

/* No more jobs: each sender ends as it next waits, as does lg_queue_ready(). */
static void
lg_queue_close(struct lg_run *run)
{
    struct lg_queue *q = &run->queue;

    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->job);
    pthread_cond_broadcast(&q->ready);
    pthread_mutex_unlock(&q->lock);
}

/*
 * Wait until every sender waits for work: arrival 0 would otherwise find
 * some still starting, and be dropped for it.  Returns the time the
 * arrivals begin, or -1 if the run ended (or was stopped) first.
 */
static long long
lg_queue_ready(struct lg_run *run)
{
    struct lg_queue *q = &run->queue;
    struct timespec ts = lg_timespec(run->end);
    int rv = 0, ready;

    pthread_mutex_lock(&q->lock);
    while (q->idle < run->senders && !q->closed && rv != ETIMEDOUT)
        rv = pthread_cond_timedwait(&q->ready, &q->lock, &ts);
    ready = q->idle == run->senders && !q->closed;
    pthread_mutex_unlock(&q->lock);
    if (!ready || atomic_load(&run->stop))
        return -1;
    return lg_clock_us(CLOCK_MONOTONIC);
}

/*
 * One arrival, due now or just past: its class, then a waiting sender, or
 * it is dropped.  Dropped, not queued: an arrival waiting for a busy
 * sender would go late, and the client, not the target, would have closed
 * the loop again.  A drop is counted, and is an event of -o.
 */
static void
lg_arrive(struct lg_worker *w, uint64_t *rng, long long due)
{
    struct lg_run *run = w->run;
    struct lg_job job;
    long long rt;

    lg_pick(run, rng, &job);
    job.due = due;
    atomic_fetch_add_explicit(&run->arrived, 1, memory_order_relaxed);
    if (lg_queue_put(run, &job) == 0)
        return;
    atomic_fetch_add_explicit(&run->cls[job.cls].res[LG_RES_DROPPED], 1,
                              memory_order_relaxed);
    rt = lg_realtime_of(due);
    lg_event(w, rt, rt, "dropped", 0);
}

/* Sleep until the CLOCK_MONOTONIC instant us; at once if it is past. */
static void
lg_sleep_until(long long us)
{
    struct timespec ts = lg_timespec(us);

    /* clock_nanosleep() returns the error, and leaves errno alone. */
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/*
 * The scheduler: arrival i is due at t + i / RATE, t being when the
 * senders are all waiting, until -d ends or -n arrivals were made.  Each
 * sleep is to an absolute due time, so the rate does not drift; a late
 * wake-up sends the arrivals already due at once, timed from when they
 * were due, so the lateness is counted rather than hidden.
 */
static void *
lg_sched_main(void *arg)
{
    struct lg_worker *w = arg;
    struct lg_run *run = w->run;
    uint64_t rng = (uint64_t)run->opt.seed;
    long long t, due, i;

    if ((t = lg_queue_ready(run)) >= 0) {
        atomic_store(&run->rate_t0, t);
        for (i = 0;; i++) {
            due = t + i * 1000000 / run->opt.rate;
            if (due >= run->end || atomic_load(&run->stop) ||
                (run->opt.max_req != 0 && i >= run->opt.max_req))
                break;
            lg_sleep_until(due);
            lg_arrive(w, &rng, due);
        }
        atomic_store(&run->rate_t1, due < run->end ? due : run->end);
    }
    lg_queue_close(run);
    lg_finish(w);
    return NULL;
}

/* A -r request: GET the class's path, with -M's headers if there is a -M. */
static size_t
lg_rate_request(struct lg_worker *w, const struct lg_job *job)
{
    const struct lg_run *run = w->run;
    const struct lg_class *c = &run->cls[job->cls];
    size_t n;

    n = (size_t)snprintf(w->req, sizeof(w->req),
                         "GET %s HTTP/1.1\r\nHost: x\r\n", c->path);
    if (run->opt.mix != NULL)
        n += (size_t)snprintf(w->req + n, sizeof(w->req) - n,
                              "X-Request-Class: %s\r\n"
                              "X-Token-Estimate: %lld\r\n",
                              c->name, job->tokens);
    n += (size_t)snprintf(w->req + n, sizeof(w->req) - n, "%s\r\n",
                          run->opt.keep ? "" : "Connection: close\r\n");
    return n;
}

/* Count a finished -r request in its class: ok, shed (503) or failed. */
static void
lg_class_count(struct lg_class *c, enum lg_outcome o, int status, long long us)
{
    unsigned long long max, v = (unsigned long long)us;
    enum lg_result r;

    if (o == LG_OUT_OK)
        r = LG_RES_OK;
    else if (o == LG_OUT_BAD && status == 503)
        r = LG_RES_SHED;
    else if (o == LG_OUT_TIMEOUT)
        r = LG_RES_TIMEOUT;
    else
        r = LG_RES_ERROR; /* connect (timed out too), reset, eof, bad */
    atomic_fetch_add_explicit(&c->res[r], 1, memory_order_relaxed);
    if (r != LG_RES_OK)
        return;
    atomic_fetch_add_explicit(&c->hist[lg_hist_index(v)], 1,
                              memory_order_relaxed);
    max = atomic_load_explicit(&c->max_us, memory_order_relaxed);
    while (max < v && !atomic_compare_exchange_weak(&c->max_us, &max, v))
        ; /* another sender moved it: max is its value now, compare again */
}

/*
 * One -r job.  Its deadline, like its latency, runs from its due time.  No
 * pause after a refused connect, as the closed loop takes: here the rate,
 * not the sender, decides when the next request goes.
 */
static void
lg_rate_one(struct lg_worker *w, const struct lg_job *job, int *fdp)
{
    struct lg_run *run = w->run;
    long long start_rt = lg_realtime_of(job->due), us;
    size_t len = lg_rate_request(w, job);
    struct lg_resp rs;
    enum lg_outcome o;

    o = lg_get_one(w, fdp, w->req, len, job->due + run->opt.timeout_ms * 1000,
                   &rs);
    us = lg_record(w, o, start_rt, job->due, rs.served_by);
    lg_class_count(&run->cls[job->cls], o, rs.status, us);
}

/* A -r sender: one job at a time, until the queue closes. */
static void *
lg_sender_main(void *arg)
{
    struct lg_worker *w = arg;
    struct lg_job job;
    int fd = -1; /* -k's kept connection */

    while (lg_queue_take(w->run, &job) == 0)
        lg_rate_one(w, &job, &fd);
    if (fd >= 0)
        close(fd);
    lg_finish(w);
    return NULL;
}

/* Nearest-rank percentile of a histogram of total, in milliseconds. */
static double
lg_percentile_ms(atomic_ullong *hist, unsigned long long total, unsigned pct)
{
    unsigned long long rank, seen = 0;
    size_t i;

    if (total == 0)
        return 0;
    rank = (total * pct + 99) / 100;
    for (i = 0; i < LG_HIST_SIZE; i++)
        if ((seen += atomic_load(&hist[i])) >= rank)
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
           lg_percentile_ms(run->hist, n[LG_OUT_OK], 50),
           lg_percentile_ms(run->hist, n[LG_OUT_OK], 99));
    fflush(stdout);
}

/*
 * A percentile of -r's, no more than the max: a bucket's middle may lie
 * past the slowest latency in it, and p99 > max would read as a bug.
 */
static double
lg_rate_ms(atomic_ullong *hist, unsigned long long total, unsigned pct,
           unsigned long long max_us)
{
    double ms = lg_percentile_ms(hist, total, pct);

    return ms < (double)max_us / 1000 ? ms : (double)max_us / 1000;
}

/* The keys every -r line ends with: the counts, then the ok latencies. */
static void
lg_rate_counts(const unsigned long long *n, atomic_ullong *hist,
               unsigned long long max_us)
{
    size_t i;

    printf(" sent=%llu",
           n[LG_RES_OK] + n[LG_RES_SHED] + n[LG_RES_ERROR] + n[LG_RES_TIMEOUT]);
    for (i = 0; i < LG_RES_COUNT; i++)
        printf(" %s=%llu", lg_res_names[i], n[i]);
    printf(" p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
           lg_rate_ms(hist, n[LG_RES_OK], 50, max_us),
           lg_rate_ms(hist, n[LG_RES_OK], 99, max_us), (double)max_us / 1000);
}

/*
 * -r's report, after the summary line: a line per class, then the total.
 * The rates are per second of the arrivals' window, from arrival 0 to the
 * end of -d (or of -n's arrivals).
 */
static void
lg_rate_summary(struct lg_run *run)
{
    unsigned long long n[LG_RES_COUNT], all[LG_RES_COUNT] = {0};
    unsigned long long max, all_max = 0;
    long long t0 = atomic_load(&run->rate_t0), t1 = atomic_load(&run->rate_t1);
    double secs = t0 > 0 && t1 > t0 ? (double)(t1 - t0) / 1e6 : 0;
    size_t i;
    int c;

    for (c = 0; c < run->ncls; c++) {
        for (i = 0; i < LG_RES_COUNT; i++)
            all[i] += n[i] = atomic_load(&run->cls[c].res[i]);
        max = atomic_load(&run->cls[c].max_us);
        all_max = max > all_max ? max : all_max;
        printf("class=%s", run->cls[c].name);
        lg_rate_counts(n, run->cls[c].hist, max);
    }
    printf("total offered_rps=%.1f goodput_rps=%.1f",
           secs > 0 ? (double)atomic_load(&run->arrived) / secs : 0,
           secs > 0 ? (double)all[LG_RES_OK] / secs : 0);
    lg_rate_counts(all, run->hist, all_max);
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
    o->seed = 1;
    opterr = 0; /* getopt's own messages would be a second stderr line */
    while ((ch = getopt(argc, argv, ":m:c:d:n:kp:t:o:r:M:S:h")) != -1) {
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
        case 'r':
            if (lg_number(optarg, 1, LG_RATE_MAX, &o->rate) < 0)
                lg_bad("-r %s: not a rate from 1 to 1000000 per second",
                       optarg);
            break;
        case 'M':
            o->mix = optarg; /* parsed by lg_rate_setup() */
            break;
        case 'S':
            if (lg_number(optarg, 0, LLONG_MAX, &o->seed) < 0)
                lg_bad("-S %s: not a seed (a number, 0 or more)", optarg);
            o->seeded = 1;
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
    if (o->rate == 0 && (o->mix != NULL || o->seeded))
        lg_bad("-M and -S go with -r (-h for help)");
    if (o->rate != 0 && o->mode != LG_GET)
        lg_bad("-r sends GETs: it does not go with -m %s",
               lg_mode_names[o->mode]);
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

/* [p, end) as lg_number() reads it: a field of -M. */
static int
lg_span_number(const char *p, const char *end, long long min, long long max,
               long long *out)
{
    size_t len = (size_t)(end - p);
    char num[24];

    if (len >= sizeof(num))
        return -1;
    memcpy(num, p, len);
    num[len] = '\0';
    return lg_number(num, min, max, out);
}

/* The last ':' in [p, end), or NULL. */
static const char *
lg_last_colon(const char *p, const char *end)
{
    while (end > p)
        if (*--end == ':')
            return end;
    return NULL;
}

/*
 * One -M entry [p, end), NAME:PATH:WEIGHT:TOKENS.  NAME ends at the first
 * colon, and WEIGHT and TOKENS are after the last two, so a PATH may hold
 * colons of its own.  NAME goes into a header and into key=value output:
 * letters, digits, '_', '.', '-' only.
 */
static int
lg_class_parse(const char *p, const char *end, struct lg_class *c)
{
    const char *c1 = memchr(p, ':', (size_t)(end - p)), *c2, *c3, *dash;
    size_t len, i;

    if ((c3 = lg_last_colon(p, end)) == NULL ||
        (c2 = lg_last_colon(p, c3)) == NULL || c2 <= c1)
        return -1;
    if ((len = (size_t)(c1 - p)) == 0 || len > LG_NAME_MAX)
        return -1;
    for (i = 0; i < len; i++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789_.-",
                   p[i]) == NULL)
            return -1;
    memcpy(c->name, p, len);
    c->name[len] = '\0';
    if ((len = (size_t)(c2 - c1 - 1)) > LG_PATH_MAX)
        return -1;
    memcpy(c->path, c1 + 1, len);
    c->path[len] = '\0';
    if (c->path[0] != '/' || strpbrk(c->path, " \t\r\n") != NULL)
        return -1;
    if (lg_span_number(c2 + 1, c3, 1, LG_WEIGHT_MAX, &c->weight) < 0)
        return -1;
    if ((dash = memchr(c3 + 1, '-', (size_t)(end - c3 - 1))) == NULL)
        dash = end; /* TOKENS is N: LO = HI = N */
    if (lg_span_number(c3 + 1, dash, 0, LG_TOKENS_MAX, &c->tok_lo) < 0)
        return -1;
    c->tok_hi = c->tok_lo;
    if (dash != end &&
        lg_span_number(dash + 1, end, c->tok_lo, LG_TOKENS_MAX, &c->tok_hi) < 0)
        return -1;
    return 0;
}

/* -M's entries into run->cls, which has room for them.  Bad ones exit 2. */
static void
lg_mix_parse(struct lg_run *run)
{
    const char *p = run->opt.mix, *end;
    int i, j;

    for (i = 0; i < run->ncls; i++, p = end + 1) {
        if ((end = strchr(p, ',')) == NULL)
            end = p + strlen(p);
        if (lg_class_parse(p, end, &run->cls[i]) < 0)
            lg_bad("-M %.*s: not NAME:PATH:WEIGHT:TOKENS (TOKENS N or LO-HI)",
                   (int)(end - p), p);
        for (j = 0; j < i; j++)
            if (strcmp(run->cls[j].name, run->cls[i].name) == 0)
                lg_bad("-M: class %s twice", run->cls[i].name);
    }
}

/*
 * -r's classes - -M's, or the one class "all" asking for -p - and the
 * queue's ring, one slot per sender.  Before any thread starts.
 */
static void
lg_rate_setup(struct lg_run *run)
{
    const char *q;
    size_t i;
    int c;

    run->ncls = 1;
    for (q = run->opt.mix; q != NULL && *q != '\0'; q++)
        run->ncls += *q == ',';
    if (run->ncls > LG_CLASS_MAX)
        lg_bad("-M: more than %d classes", LG_CLASS_MAX);
    run->senders = (size_t)run->opt.conc;
    run->queue.cap = run->senders;
    if ((run->cls = calloc((size_t)run->ncls, sizeof(*run->cls))) == NULL ||
        (run->queue.jobs = calloc(run->queue.cap, sizeof(struct lg_job))) ==
            NULL)
        lg_fatal("memory", strerror(errno));
    if (run->opt.mix != NULL) {
        lg_mix_parse(run);
    } else {
        snprintf(run->cls[0].name, sizeof(run->cls[0].name), "all");
        snprintf(run->cls[0].path, sizeof(run->cls[0].path), "%s",
                 run->opt.path);
        run->cls[0].weight = 1;
    }
    for (c = 0; c < run->ncls; c++) {
        run->weight_sum += run->cls[c].weight;
        for (i = 0; i < LG_RES_COUNT; i++)
            atomic_init(&run->cls[c].res[i], 0);
        for (i = 0; i < LG_HIST_SIZE; i++)
            atomic_init(&run->cls[c].hist[i], 0);
        atomic_init(&run->cls[c].max_us, 0);
    }
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
    void *(*start)(void *);
    long long i, nworkers, started, hard;
    int rv, joined, err = 0;

    if ((run = calloc(1, sizeof(*run))) == NULL)
        lg_fatal("memory", strerror(errno));
    lg_options(argc, argv, &run->opt, &target);
    lg_resolve(run, target);
    lg_request(run);
    if (run->opt.rate != 0)
        lg_rate_setup(run);
    for (i = 0; i < LG_OUT_COUNT; i++)
        atomic_init(&run->count[i], 0);
    for (i = 0; i < LG_HIST_SIZE; i++)
        atomic_init(&run->hist[i], 0);
    atomic_init(&run->claimed, 0);
    atomic_init(&run->stop, 0);
    atomic_init(&run->rate_t0, 0);
    atomic_init(&run->rate_t1, 0);
    atomic_init(&run->arrived, 0);

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
        pthread_cond_init(&run->cond, &ca) != 0 ||
        pthread_mutex_init(&run->queue.lock, NULL) != 0 ||
        pthread_cond_init(&run->queue.job, &ca) != 0 ||
        pthread_cond_init(&run->queue.ready, &ca) != 0)
        lg_fatal("pthread", "cannot set up the lock");
    pthread_condattr_destroy(&ca);

    nworkers = run->opt.mode == LG_IDLE ? 1 : run->opt.conc;
    if (run->opt.rate != 0)
        nworkers++; /* the scheduler, started after its senders */
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
        if (run->opt.rate != 0)
            start = started == nworkers - 1 ? lg_sched_main : lg_sender_main;
        else
            start = run->opt.mode == LG_IDLE ? lg_idle_main : lg_worker_main;
        err = pthread_create(&workers[started].tid, &attr, start,
                             &workers[started]);
        if (err != 0) {
            /* Fewer workers than asked is not the run asked for: stop. */
            atomic_store(&run->stop, 1);
            lg_queue_close(run); /* -r's senders wait on it, not on stop */
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
    if (run->opt.rate != 0)
        lg_rate_summary(run);
    /* A worker left behind at the bound may still use run: keep it. */
    if (!joined)
        return 0;
    for (i = 0; i < started; i++)
        pthread_join(workers[i].tid, NULL);
    free(workers[0].conns);
    free(workers[0].pfds);
    free(workers);
    free(run->cls);
    free(run->queue.jobs);
    pthread_cond_destroy(&run->queue.ready);
    pthread_cond_destroy(&run->queue.job);
    pthread_mutex_destroy(&run->queue.lock);
    pthread_cond_destroy(&run->cond);
    pthread_mutex_destroy(&run->lock);
    free(run);
    return 0;
}
