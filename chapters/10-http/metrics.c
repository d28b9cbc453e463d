/*
 * metrics.c - Harbor's numbers, in the Prometheus text format (0.0.4), on
 * a listener of its own.
 *
 * COUNTING: every number is an atomic in struct metrics, added to by the
 * thread where the event happens, with relaxed ordering: a count needs no
 * order with anything else, only to be whole.  No lock is taken for a
 * connection or for a byte; a scrape reads the atomics as they are.
 *
 * BACKENDS: a backend's numbers are a series on a list that only grows.
 * A connection finds its backend's series by walking the list, with no
 * lock: nodes are never freed while Harbor runs, and a series stays its
 * backend's as long as anyone holds that backend.  A series holds its
 * backend too, so when the backend's count of holders is down to one
 * (b->refs), that one is the series: the backend has left every pool, no
 * connection has it, and none can get it again.  Only then is the node
 * cleared, under m->lock, for the next backend to reuse.  A removed
 * backend is not shown once its connections have ended, even if a
 * strategy still holds it for a while.
 *
 * THE LISTENER: one thread, one scrape at a time.  It is not behind
 * MAX_INFLIGHT and takes no slot or seat: a full balancer is when the
 * numbers matter most.  A scrape has METRICS_TIMEOUT_MS to say what it
 * wants and to take the answer, so a client that says nothing holds the
 * thread for a second at most, and the proxy never waits for it at all.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "harbor.h"
#include "log.h"
#include "metrics.h"
#include "net.h"

struct series {
    _Atomic(struct backend *) b;   /* held; NULL: free for the next one */
    atomic_llong inflight;         /* bridged to b now */
    atomic_ullong connections;     /* bridged to b, ever */
    atomic_ullong failures;        /* connects to b that failed */
    _Atomic(struct series *) next; /* NULL until a node is added after */
};

static const char *const reasons[ERR_REASONS] = {
    "no_backend", "connect", "queue_timeout", "idle_timeout", "reset"};

/* From a millisecond to five minutes: a connection can be either. */
static const long long bucket_us[DURATION_BUCKETS] = {
    1000,    5000,    10000,    50000,    100000,   500000,
    1000000, 5000000, 10000000, 30000000, 60000000, 300000000};

int
metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof(*m));
    m->fd = -1;
    errno = pthread_mutex_init(&m->lock, NULL);
    return errno == 0 ? 0 : -1;
}

/* Clear the series whose backend nobody else holds.  Caller holds m->lock. */
static void
series_sweep(struct metrics *m)
{
    struct series *s;
    struct backend *b;

    for (s = atomic_load(&m->backends); s != NULL; s = atomic_load(&s->next)) {
        b = atomic_load(&s->b);
        if (b != NULL && atomic_load(&b->refs) == 1) {
            atomic_store(&s->b, NULL);
            backend_release(b);
        }
    }
}

/* b's series, or NULL.  The caller holds b, so the answer stays true. */
static struct series *
series_of(struct metrics *m, const struct backend *b)
{
    struct series *s;

    for (s = atomic_load(&m->backends); s != NULL; s = atomic_load(&s->next))
        if (atomic_load(&s->b) == b)
            return s;
    return NULL;
}

void
metrics_track(struct metrics *m, struct backend *b)
{
    _Atomic(struct series *) *end = &m->backends;
    struct series *s;

    pthread_mutex_lock(&m->lock);
    series_sweep(m);
    if (series_of(m, b) != NULL)
        goto out;
    /* A free node, or a new one at the end: scrapes list in this order. */
    for (; (s = atomic_load(end)) != NULL; end = &s->next)
        if (atomic_load(&s->b) == NULL)
            break;
    if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL)
        atomic_store(end, s);
    if (s == NULL) {
        log_error("%s: %s: %s; not counted", __func__, b->addr.text,
                  strerror(ENOMEM));
        goto out;
    }
    /* Zero first: a connection can find the series once b is set. */
    atomic_store(&s->inflight, 0);
    atomic_store(&s->connections, 0);
    atomic_store(&s->failures, 0);
    backend_hold(b);
    atomic_store(&s->b, b);
out:
    pthread_mutex_unlock(&m->lock);
}

static void
histogram_observe(struct histogram *hg, long long us)
{
    int i = 0;

    while (i < DURATION_BUCKETS && us > bucket_us[i])
        i++;
    metrics_add(&hg->n[i], 1);
    metrics_add(&hg->us, (unsigned long long)(us > 0 ? us : 0));
}

void
metrics_observe(struct metrics *m, long long us)
{
    histogram_observe(&m->duration, us);
}

void
metrics_request(struct metrics *m, int status, long long us)
{
    if (status >= 100 && status < 600)
        histogram_observe(&m->requests[status / 100 - 1], us);
}

void
metrics_backend_start(struct metrics *m, const struct backend *b)
{
    struct series *s = series_of(m, b);

    if (s != NULL) {
        atomic_fetch_add_explicit(&s->inflight, 1, memory_order_relaxed);
        metrics_add(&s->connections, 1);
    }
}

void
metrics_backend_done(struct metrics *m, const struct backend *b)
{
    struct series *s = series_of(m, b);

    if (s != NULL)
        atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_relaxed);
}

void
metrics_backend_failed(struct metrics *m, const struct backend *b)
{
    struct series *s = series_of(m, b);

    if (s != NULL)
        metrics_add(&s->failures, 1);
}

/* ---- the exposition ---------------------------------------------------- */

static unsigned long long
get(atomic_ullong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void
family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample.  %.15g: whole up to 10^15, and 0.12 is 0.12. */
static void
single(FILE *f, const char *name, const char *type, const char *help, double v)
{
    family(f, name, type, help);
    fprintf(f, "%s %.15g\n", name, v);
}

/* One backend as shown: up, in flight, connections, failures. */
struct row {
    const char *name; /* an address that resolved: no " or \ to escape */
    long long v[4];
};

static const char *const backend_families[4][3] = {
    {"harbor_backend_up", "gauge",
     "Whether the backend is up (1) or down (0), by the health checks."},
    {"harbor_backend_inflight", "gauge",
     "Client connections bridged to the backend now."},
    {"harbor_backend_connections_total", "counter",
     "Client connections bridged to the backend."},
    {"harbor_backend_failures_total", "counter",
     "Connects to the backend, for a client, that failed."},
};

/*
 * The rows to show: backends in the pool, and those gone from it that
 * still have connections.  A backend removed and added back while an old
 * connection lives has two series, summed into one row: a scrape must not
 * show one name twice.  v has room for every series.  Caller holds m->lock.
 */
static size_t
rows_make(struct metrics *m, struct backend **pool, size_t npool,
          struct backend **up, size_t nup, struct row *v)
{
    struct series *s;
    struct backend *b;
    size_t n = 0, i;
    long long live;

    for (s = atomic_load(&m->backends); s != NULL; s = atomic_load(&s->next)) {
        if ((b = atomic_load(&s->b)) == NULL)
            continue;
        live = atomic_load(&s->inflight);
        if (!backend_in(pool, npool, b) && live == 0)
            continue;
        for (i = 0; i < n && strcmp(v[i].name, b->addr.text) != 0; i++)
            ;
        if (i == n)
            v[n++].name = b->addr.text;
        v[i].v[0] |= backend_in(up, nup, b);
        v[i].v[1] += live;
        v[i].v[2] += (long long)get(&s->connections);
        v[i].v[3] += (long long)get(&s->failures);
    }
    return n;
}

static void
backends_write(FILE *f, struct metrics *m, struct harbor *h)
{
    struct backend **pool = NULL, **up = NULL;
    size_t npool = 0, nup = 0, n = 0, max = 1, i;
    struct series *s;
    struct row *v;
    int k;

    /* The pools' locks first, never under m->lock: health_sync() takes
     * m->lock under its own. */
    if (pool_snapshot(&h->pool, &pool, &npool) < 0 ||
        pool_snapshot(&h->health.up, &up, &nup) < 0)
        log_error("%s: %s", __func__, strerror(errno));
    pthread_mutex_lock(&m->lock);
    series_sweep(m);
    for (s = atomic_load(&m->backends); s != NULL; s = atomic_load(&s->next))
        max++;
    if ((v = calloc(max, sizeof(*v))) != NULL)
        n = rows_make(m, pool, npool, up, nup, v);
    for (k = 0; k < 4; k++) {
        family(f, backend_families[k][0], backend_families[k][1],
               backend_families[k][2]);
        for (i = 0; i < n; i++)
            fprintf(f, "%s{backend=\"%s\"} %lld\n", backend_families[k][0],
                    v[i].name, v[i].v[k]);
    }
    pthread_mutex_unlock(&m->lock);
    free(v);
    if (pool != NULL)
        pool_snapshot_free(pool, npool);
    if (up != NULL)
        pool_snapshot_free(up, nup);
}

/*
 * The process, as Prometheus' own client libraries name it, from
 * /proc/self/stat (fields 14, 15, 22 and 24 of proc(5)) and /proc/stat.
 */
static void
process_write(FILE *f)
{
    unsigned long utime = 0, stime = 0;
    unsigned long long start = 0, boot = 0;
    long rss = 0, ticks = sysconf(_SC_CLK_TCK);
    char buf[1024], *p;
    struct rlimit rl;
    struct dirent *e;
    int fds = 0;
    size_t n;
    FILE *in;
    DIR *d;

    if ((in = fopen("/proc/self/stat", "r")) != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, in);
        buf[n] = '\0';
        fclose(in);
        /* After the command, which may hold spaces, in parentheses. */
        if ((p = strrchr(buf, ')')) != NULL)
            sscanf(p + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
                   "%*d %*d %*d %*d %*d %*d %llu %*u %ld",
                   &utime, &stime, &start, &rss);
    }
    if ((in = fopen("/proc/stat", "r")) != NULL) {
        while (fgets(buf, sizeof(buf), in) != NULL &&
               sscanf(buf, "btime %llu", &boot) != 1)
            ;
        fclose(in);
    }
    if ((d = opendir("/proc/self/fd")) != NULL) {
        while ((e = readdir(d)) != NULL)
            fds += e->d_name[0] != '.';
        closedir(d);
        fds--; /* the one that read them */
    }
    single(f, "process_cpu_seconds_total", "counter",
           "Total user and system CPU time spent in seconds.",
           (double)(utime + stime) / (double)ticks);
    single(f, "process_open_fds", "gauge", "Number of open file descriptors.",
           fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        rl.rlim_cur = 0; /* not known: say 0, never an unset value */
    single(f, "process_max_fds", "gauge",
           "Maximum number of open file descriptors.", (double)rl.rlim_cur);
    single(f, "process_resident_memory_bytes", "gauge",
           "Resident memory size in bytes.",
           (double)rss * (double)sysconf(_SC_PAGESIZE));
    single(f, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.",
           (double)boot + (double)start / (double)ticks);
}

static unsigned long long
histogram_count(struct histogram *hg)
{
    unsigned long long n = 0;
    int i;

    for (i = 0; i <= DURATION_BUCKETS; i++)
        n += get(&hg->n[i]);
    return n;
}

/* One histogram's series; label is "" or a label pair, code="2xx". */
static void
histogram_write(FILE *f, const char *name, const char *label,
                struct histogram *hg)
{
    const char *sep = label[0] != '\0' ? "," : "";
    unsigned long long cum = 0;
    char tail[32] = "";
    int i;

    if (label[0] != '\0')
        snprintf(tail, sizeof(tail), "{%s}", label);
    for (i = 0; i < DURATION_BUCKETS; i++) {
        cum += get(&hg->n[i]);
        fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep,
                (double)bucket_us[i] / 1e6, cum);
    }
    cum += get(&hg->n[DURATION_BUCKETS]);
    fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep, cum);
    fprintf(f, "%s_sum%s %.6f\n", name, tail, (double)get(&hg->us) / 1e6);
    fprintf(f, "%s_count%s %llu\n", name, tail, cum);
}

/* Every family, in the text format. */
static void
metrics_write(FILE *f, struct harbor *h)
{
    struct metrics *m = &h->metrics;
    char label[32];
    int i;

    single(f, "harbor_connections_accepted_total", "counter",
           "Client connections accepted.", (double)get(&m->accepted));
    single(f, "harbor_connections_inflight", "gauge",
           "Client connections holding one of MAX_INFLIGHT slots.",
           (double)atomic_load(&m->inflight));
    family(f, "harbor_connection_errors_total", "counter",
           "Client connections that ended in an error, by reason.");
    for (i = 0; i < ERR_REASONS; i++)
        fprintf(f, "harbor_connection_errors_total{reason=\"%s\"} %llu\n",
                reasons[i], get(&m->errors[i]));
    family(f, "harbor_bytes_total", "counter",
           "Bytes forwarded: up from client to backend, down back.");
    fprintf(f, "harbor_bytes_total{direction=\"up\"} %llu\n",
            get(&m->bytes[0]));
    fprintf(f, "harbor_bytes_total{direction=\"down\"} %llu\n",
            get(&m->bytes[1]));
    family(f, "harbor_connection_duration_seconds", "histogram",
           "Client connections that ended, from accept to close.");
    histogram_write(f, "harbor_connection_duration_seconds", "", &m->duration);
    family(f, "harbor_http_requests_total", "counter",
           "Responses sent to clients in MODE=http, by status class.");
    for (i = 0; i < HTTP_CLASSES; i++)
        fprintf(f, "harbor_http_requests_total{code=\"%dxx\"} %llu\n", i + 1,
                histogram_count(&m->requests[i]));
    family(f, "harbor_http_request_duration_seconds", "histogram",
           "Requests, from the whole head to the response's last byte.");
    for (i = 0; i < HTTP_CLASSES; i++) {
        snprintf(label, sizeof(label), "code=\"%dxx\"", i + 1);
        histogram_write(f, "harbor_http_request_duration_seconds", label,
                        &m->requests[i]);
    }
    family(f, "harbor_upstream_connections_total", "counter",
           "Backend connections requests went over: new, or reused idle.");
    fprintf(f, "harbor_upstream_connections_total{how=\"new\"} %llu\n",
            get(&m->upstream[0]));
    fprintf(f, "harbor_upstream_connections_total{how=\"reused\"} %llu\n",
            get(&m->upstream[1]));
    backends_write(f, m, h);
    family(f, "harbor_build_info", "gauge", "Which chapter of Harbor this is.");
    fputs("harbor_build_info{chapter=\"10\"} 1\n", f);
    process_write(f);
}

/* ---- the listener ------------------------------------------------------ */

/*
 * Read a request head into buf, NUL-terminated, within METRICS_TIMEOUT_MS.
 * 0; 1 when it does not fit; -1 on EOF, an error or the deadline.
 */
static int
head_read(int fd, char *buf, size_t len)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    long long end = clock_ms() + METRICS_TIMEOUT_MS, ms;
    size_t n = 0;
    ssize_t r;

    while ((ms = end - clock_ms()) > 0 && poll(&pfd, 1, (int)ms) > 0 &&
           (r = recv(fd, buf + n, len - 1 - n, 0)) > 0) {
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
            return 0;
        if (n == len - 1)
            return 1;
    }
    return -1;
}

static void
reply(int fd, const char *status, const char *extra, const char *body,
      size_t len)
{
    char head[256];
    int n;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 status, extra, len);
    if (write_all(fd, head, (size_t)n) == 0 && body != NULL)
        write_all(fd, body, len);
}

/* One scrape: the request on fd, and the answer. */
static void
scrape(struct harbor *h, int fd)
{
    char req[METRICS_HEAD_MAX + 1], method[8], path[256], *body = NULL;
    size_t len = 0;
    FILE *f;
    int n;

    if ((n = head_read(fd, req, sizeof(req))) < 0)
        return; /* it said nothing in time, or went away */
    if (n > 0) {
        reply(fd, "431 Request Header Fields Too Large", "", NULL, 0);
        return;
    }
    if (sscanf(req, "%7[A-Z] %255[^ \r\n] HTTP/1.%*1[01]", method, path) != 2) {
        reply(fd, "400 Bad Request", "", NULL, 0);
        return;
    }
    path[strcspn(path, "?")] = '\0'; /* a query changes nothing */
    if (strcmp(path, "/metrics") != 0) {
        reply(fd, "404 Not Found", "Content-Type: text/plain\r\n",
              "not found\n", 10);
    } else if (strcmp(method, "GET") != 0) {
        reply(fd, "405 Method Not Allowed", "Allow: GET\r\n", NULL, 0);
    } else if ((f = open_memstream(&body, &len)) == NULL) {
        reply(fd, "500 Internal Server Error", "", NULL, 0);
    } else {
        metrics_write(f, h);
        fclose(f);
        reply(fd, "200 OK",
              "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n",
              body, len);
        free(body);
    }
}

static void *
metrics_main(void *arg)
{
    struct harbor *h = arg;
    struct metrics *m = &h->metrics;
    struct timeval tv = {METRICS_TIMEOUT_MS / 1000,
                         METRICS_TIMEOUT_MS % 1000 * 1000};
    struct sockaddr_storage peer;
    socklen_t len;
    int fd;

    for (;;) {
        len = sizeof(peer);
        if ((fd = net_accept(m->fd, &peer, &len)) < 0) {
            if (!atomic_load(&m->stop))
                log_error("metrics: accept: %s; no more scrapes",
                          strerror(errno));
            return NULL;
        }
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        scrape(h, fd);
        close(fd);
    }
}

int
metrics_start(struct harbor *h)
{
    errno = pthread_create(&h->metrics.tid, NULL, metrics_main, h);
    return errno == 0 ? 0 : -1;
}

void
metrics_stop(struct harbor *h)
{
    struct metrics *m = &h->metrics;

    atomic_store(&m->stop, 1);
    shutdown(m->fd, SHUT_RDWR); /* wakes accept(), as in main.c */
    pthread_join(m->tid, NULL);
    close(m->fd);
}

void
metrics_destroy(struct metrics *m)
{
    struct series *s, *next;
    struct backend *b;

    for (s = atomic_load(&m->backends); s != NULL; s = next) {
        next = atomic_load(&s->next);
        if ((b = atomic_load(&s->b)) != NULL)
            backend_release(b);
        free(s);
    }
    pthread_mutex_destroy(&m->lock);
}
