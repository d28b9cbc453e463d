/*
 * main.c - start-up, the threads at the listener, and shutdown.
 *
 * Read the configuration, bind the listener, then let threads accept
 * clients until shutdown, each serving the client it accepted (conn.c):
 * it picks a backend by STRATEGY and bridges the two sockets (bridge.c).
 * Everything a thread needs travels in one struct harbor.
 *
 * SHUTDOWN: SIGTERM and SIGINT are blocked in every thread and taken by one
 * signal thread with sigwait(), so no code runs in a signal handler.  It
 * wakes the threads in accept() by shutdown() of the listening socket:
 * accept() then fails at once, and new connects are refused.  Not close():
 * on Linux closing an fd does not wake a thread blocked on it, and the
 * number could be reused by the next socket while accept() still holds
 * it.  main() closes it once no thread is left at it.
 *
 * METRICS: a second listener, METRICS_LISTEN, with a thread of its own
 * (metrics.c).  It is bound with the first, before anything is printed,
 * and stays up through the drain: a shutdown is worth watching too.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conn.h"
#include "harbor.h"
#include "least.h"
#include "log.h"
#include "net.h"

static const char *const check_names[] = {"tcp", "http", "off", NULL};
static const char *const strategy_names[] = {"rr", "least", NULL};
static const char *const mode_names[] = {"tcp", "http", NULL};

/*
 * A cap that the open files limit cannot carry fails under load, in
 * socket() and accept(), instead of queueing at the semaphore.  Every
 * client let in may hold CONN_FDS descriptors, in flight, waiting or
 * ending, so the limit gives the seats (slots_admit()); the cap must leave
 * as many seats for clients waiting as for those in flight.  Otherwise it
 * is lowered to what fits, as HAProxy derives its maxconn from the limit,
 * and one line says so.  Returns the cap, and the seats in *seats.
 */
static int
inflight_fit(int want, unsigned *seats)
{
    unsigned long long limit = ULLONG_MAX / 4, fit = (unsigned long long)want;
    unsigned long long n;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        limit = rl.rlim_cur;
    n = limit > FDS_SPARE ? (limit - FDS_SPARE) / CONN_FDS : 0;
    if (n < 2)
        fatal("open files limit %llu: too low for one connection", limit);
    if (fit > n / 2) {
        fit = n / 2;
        log_warn("MAX_INFLIGHT %d needs %llu open files, the limit is %llu: "
                 "lowered to %llu",
                 want, 2ULL * (unsigned)want * CONN_FDS + FDS_SPARE, limit,
                 fit);
    }
    *seats = n > UINT_MAX ? UINT_MAX : (unsigned)n;
    return (int)fit;
}

static void
harbor_config(struct harbor *h)
{
    struct addr *backends;
    struct backend *b;
    size_t i, n;
    char err[256];
    int strategy, idle_max, idle_ms;
    unsigned seats;

    memset(h, 0, sizeof(*h));
    log_init();
    config_listen("LISTEN", ":9090", &h->listen);
    /* BACKENDS_FILE, when set, replaces BACKENDS, and is watched. */
    h->backends_file = getenv("BACKENDS_FILE");
    h->reload_interval_ms = (int)config_number("RELOAD_INTERVAL_MS", 1000);
    if (h->backends_file != NULL) {
        /* Look before reading: a change from here on is a change. */
        stat(h->backends_file, &h->reload.seen);
        if (backends_file_read(h->backends_file, &backends, &n, err,
                               sizeof(err)) < 0)
            config_fail("BACKENDS_FILE", err, h->backends_file);
    } else {
        config_backends("BACKENDS", "127.0.0.1:9001,127.0.0.1:9002", &backends,
                        &n);
    }
    h->connect_timeout_ms = (int)config_number("CONNECT_TIMEOUT_MS", 2000);
    h->idle_timeout_ms = (int)config_number("IDLE_TIMEOUT_MS", 60000);
    h->max_inflight =
        (int)config_range("MAX_INFLIGHT", 1024, 1, CONFIG_NUMBER_MAX);
    h->queue_timeout_ms = (int)config_number("QUEUE_TIMEOUT_MS", 5000);
    h->drain_timeout_ms = (int)config_number("DRAIN_TIMEOUT_MS", 10000);
    h->health_check = config_choice("HEALTH_CHECK", "tcp", check_names);
    h->health_path = getenv("HEALTH_PATH") ? getenv("HEALTH_PATH") : "/health";
    if (h->health_path[0] != '/' || strpbrk(h->health_path, " \r\n") != NULL)
        config_fail("HEALTH_PATH", "must be a path starting with /",
                    h->health_path);
    h->health_interval_ms =
        (int)config_range("HEALTH_INTERVAL_MS", 2000, 1, CONFIG_NUMBER_MAX);
    h->health_timeout_ms =
        (int)config_range("HEALTH_TIMEOUT_MS", 1000, 1, CONFIG_NUMBER_MAX);
    h->health_rise = (int)config_range("HEALTH_RISE", 2, 1, 1000);
    h->health_fall = (int)config_range("HEALTH_FALL", 3, 1, 1000);
    h->retries = (int)config_range("RETRIES", 2, 0, RETRIES_MAX);
    strategy = config_choice("STRATEGY", "rr", strategy_names);
    h->metrics_on = getenv("METRICS_LISTEN") == NULL ||
                    strcmp(getenv("METRICS_LISTEN"), "off") != 0;
    if (h->metrics_on)
        config_listen("METRICS_LISTEN", "127.0.0.1:9190", &h->metrics_listen);
    h->mode = (enum mode)config_choice("MODE", "tcp", mode_names);
    idle_max = (int)config_range("UPSTREAM_IDLE_MAX", 32, 0, 65536);
    idle_ms = (int)config_range("UPSTREAM_IDLE_TIMEOUT_MS", 15000, 1,
                                CONFIG_NUMBER_MAX);
    h->max_header_bytes =
        (int)config_range("MAX_HEADER_BYTES", 16384, 1024, 1 << 20);
    h->request_timeout_ms = (int)config_number("REQUEST_TIMEOUT_MS", 10000);
    h->response_timeout_ms = (int)config_number("RESPONSE_TIMEOUT_MS", 30000);

    /* Every variable is good: only now build and say anything. */
    if (pool_init(&h->pool) < 0)
        fatal("%s: pool: %s", __func__, strerror(errno));
    for (i = 0; i < n; i++) {
        if ((b = backend_new(&backends[i])) == NULL ||
            pool_add(&h->pool, b) < 0)
            fatal("%s: pool: %s", __func__, strerror(errno));
        backend_release(b); /* the pool holds it now */
        log_info("backend %s", backends[i].text);
    }
    free(backends);
    if (strategy == 0)
        rr_init(&h->strategy);
    else if (least_init(&h->strategy) < 0)
        fatal("%s: strategy: %s", __func__, strerror(errno));
    log_info("connect timeout %d ms, idle timeout %d ms", h->connect_timeout_ms,
             h->idle_timeout_ms);
    net_raise_nofile(); /* first: the cap must fit the raised limit */
    h->max_inflight = inflight_fit(h->max_inflight, &seats);
    if (slots_init(&h->slots, (unsigned)h->max_inflight, seats) < 0)
        fatal("%s: slots: %s", __func__, strerror(errno));
    log_info("max in-flight %d, queue timeout %d ms", h->max_inflight,
             h->queue_timeout_ms);
    if (conns_init(&h->conns, &h->slots) < 0)
        fatal("%s: conns: %s", __func__, strerror(errno));
    atomic_init(&h->stopping, 0);
    log_info("drain timeout %d ms", h->drain_timeout_ms);
    if (health_init(&h->health) < 0)
        fatal("%s: health: %s", __func__, strerror(errno));
    if (workers_init(&h->workers) < 0)
        fatal("%s: workers: %s", __func__, strerror(errno));
    if (metrics_init(&h->metrics) < 0)
        fatal("%s: metrics: %s", __func__, strerror(errno));
    if (upool_init(&h->upool, idle_max, idle_ms) < 0)
        fatal("%s: upstream pool: %s", __func__, strerror(errno));
    if (h->mode == MODE_HTTP)
        log_info("mode http: head %d bytes at most, request timeout %d ms, "
                 "response timeout %d ms; %d idle upstream connections per "
                 "backend for %d ms",
                 h->max_header_bytes, h->request_timeout_ms,
                 h->response_timeout_ms, idle_max, idle_ms);
    log_info("health checks %s, %s every %d ms, timeout %d ms, rise %d, "
             "fall %d; %d retries",
             check_names[h->health_check], h->health_path,
             h->health_interval_ms, h->health_timeout_ms, h->health_rise,
             h->health_fall, h->retries);
}

/* The signals the signal thread takes. */
static void
signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

/*
 * The signal thread.  The first SIGTERM or SIGINT stops the accept loop;
 * the second one tells the drain to stop waiting.  SIGHUP reloads.
 */
static void *
signal_main(void *arg)
{
    struct harbor *h = arg;
    sigset_t set;
    int sig;

    signal_set(&set);
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            if (h->backends_file != NULL)
                reload_kick(h);
            else
                log_info("SIGHUP: no BACKENDS_FILE to reload");
        } else if (!atomic_exchange(&h->stopping, 1)) {
            log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            /*
             * The threads at the listener may be waiting for a seat, not
             * in accept(): one more seat takes one there, it fails, and
             * gives the seat to the next.  The seat first: once the
             * listener is down, main() may be gone.
             */
            slots_leave(&h->slots);
            shutdown(h->lfd, SHUT_RDWR);
        } else {
            log_info("%s again: skipping the drain",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT");
            conns_hurry(&h->conns);
        }
    }
    return NULL;
}

/*
 * Let live connections finish for up to DRAIN_TIMEOUT_MS, then cut them.
 * Clients still waiting for a slot give up first: they have no backend to
 * finish with.
 */
static void
harbor_drain(struct harbor *h)
{
    int left;

    log_info("draining %d connections", conns_live(&h->conns));
    if ((left = conns_drain(&h->conns, h->drain_timeout_ms)) > 0) {
        log_info("closing %d connections", left);
        slots_close(&h->slots);
        conns_close_all(&h->conns);
    }
    log_info("shutdown complete");
}

int
main(void)
{
    struct harbor h;
    char bound[ADDR_TEXT_MAX], mbound[ADDR_TEXT_MAX];
    sigset_t set;
    pthread_t tid;
    int lfd, err;

    harbor_config(&h);
    /* Block the stop signals here, before any thread exists: every thread
     * inherits the mask, and only the signal thread will take them. */
    signal_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /*
     * A write to a peer that has gone away raises SIGPIPE, whose default
     * action kills the whole process.  Ignored, the write fails with EPIPE
     * instead and only that connection ends.
     */
    signal(SIGPIPE, SIG_IGN);

    if ((lfd = net_listen(&h.listen, bound, sizeof(bound))) < 0)
        fatal("listen %s: %s", h.listen.text, strerror(errno));
    if (h.metrics_on && (h.metrics.fd = net_listen(&h.metrics_listen, mbound,
                                                   sizeof(mbound))) < 0)
        fatal("listen %s (METRICS_LISTEN): %s", h.metrics_listen.text,
              strerror(errno));
    printf("Harbor Up\nlistening on %s\n", bound);
    if (h.metrics_on)
        printf("metrics on %s\n", mbound);
    fflush(stdout);
    log_info("listening on %s, strategy %s", bound, h.strategy.name);
    h.lfd = lfd;
    health_sync(&h, 0);
    if (h.backends_file != NULL && reload_start(&h) < 0)
        fatal("reload thread: %s", strerror(errno));
    if ((err = pthread_create(&tid, NULL, signal_main, &h)) != 0)
        fatal("signal thread: %s", strerror(err));
    if (h.metrics_on && metrics_start(&h) < 0)
        fatal("metrics thread: %s", strerror(errno));
    if (h.mode == MODE_HTTP && upool_start(&h.upool) < 0)
        fatal("upstream pool thread: %s", strerror(errno));

    if (conn_accept_start(&h) < 0)
        fatal("accept thread: %s", strerror(errno));
    conn_accept_wait(&h); /* until the signal thread shuts the listener */
    close(lfd);
    harbor_drain(&h);
    if (h.metrics_on)
        metrics_stop(&h);
    if (h.backends_file != NULL) /* the reload thread runs */
        reload_stop(&h);
    health_sync(&h, 1);
    upool_stop(&h.upool); /* after the drain: no request takes one now */
    pool_destroy(&h.health.up);
    workers_stop(&h.workers);
    h.strategy.destroy(&h.strategy);
    metrics_destroy(&h.metrics);
    pool_destroy(&h.pool);
    return 0;
}
