/*
 * health.c - active health checks, one thread per backend, and the set of
 * backends that are up.
 *
 * DESIGN: one checker per backend in the pool (health_sync()).  Results,
 * active and passive, go through the backend's rise/fall machine; one that
 * flips leaves or rejoins h->health.up, a pool of its own, and the strategy
 * is rebuilt over it.  Connections pick from the up set: neither the pool
 * nor the strategy hears of health.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "clock.h"
#include "dial.h"
#include "harbor.h"
#include "log.h"
#include "net.h"
#include "risefall.h"

struct checker {
    struct harbor *h;
    struct backend *b;    /* held for the checker's lifetime */
    struct risefall rf;   /* b's state; guarded by h->health.lock */
    int delay_ms;         /* before the first check */
    int stop;             /* guarded by h->health.lock */
    int running;          /* its thread started: health_sync() joins it */
    pthread_t tid;        /* read by health_sync() only */
    struct checker *next; /* on h->health.list; guarded by its lock */
};

int
health_init(struct health *hl)
{
    memset(hl, 0, sizeof(*hl));
    if ((errno = pthread_mutex_init(&hl->lock, NULL)) != 0 ||
        (errno = cond_init_monotonic(&hl->wake)) != 0)
        return -1;
    return pool_init(&hl->up);
}

/* b's checker, or NULL.  Caller holds hl->lock. */
static struct checker *
checker_of(struct health *hl, const struct backend *b)
{
    struct checker *k;

    for (k = hl->list; k != NULL && k->b != b; k = k->next)
        ;
    return k;
}

void
health_report(struct harbor *h, struct backend *b, int ok, const char *why)
{
    struct health *hl = &h->health;
    struct checker *k;
    int flipped = 0;

    pthread_mutex_lock(&hl->lock);
    /* No checker: b left the pool, and its results go with it. */
    if ((k = checker_of(hl, b)) != NULL)
        flipped = risefall_record(&k->rf, ok, h->health_rise, h->health_fall);
    if (flipped && ok)
        pool_add(&hl->up, b);
    else if (flipped)
        pool_remove(&hl->up, b->addr.text);
    if (flipped)
        h->strategy.rebuild(&h->strategy, &hl->up);
    pthread_mutex_unlock(&hl->lock);
    if (flipped && ok)
        log_info("backend %s UP", b->addr.text);
    else if (flipped)
        log_warn("backend %s DOWN (%s)", b->addr.text, why);
    if (flipped && !ok)
        upool_drop(&h->upool, b); /* its idle connections are likely dead */
}

/*
 * GET HEALTH_PATH; pass on a 2xx only.  With SO_RCVTIMEO set to the time
 * left, one recv(MSG_WAITALL) returns when the buffer is full, at EOF (we
 * ask for Connection: close) or at the deadline, whichever comes first.
 */
static int
http_check(struct harbor *h, struct backend *b, int fd,
           const struct timespec *deadline, char *why, size_t len)
{
    char req[512], buf[128] = {0};
    struct timespec now;
    struct timeval tv;
    int n, ms, status = 0;

    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                 h->health_path, b->addr.text);
    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (int)((deadline->tv_sec - now.tv_sec) * 1000 +
               (deadline->tv_nsec - now.tv_nsec) / 1000000);
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    if (ms <= 0 || write_all(fd, req, (size_t)n) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        recv(fd, buf, sizeof(buf) - 1, MSG_WAITALL) < 0) {
        snprintf(why, len, "%s",
                 ms <= 0 || errno == EAGAIN ? "no HTTP status in time"
                                            : strerror(errno));
        return 0;
    }
    sscanf(buf, "HTTP/1.%*1[01] %3d", &status); /* 0: not a status line */
    if (status < 200 || status > 299) {
        snprintf(why, len, "HTTP status %d", status);
        return 0;
    }
    return 1;
}

/*
 * One check: connect (tcp), plus an HTTP exchange (http).  1 or 0, or -1
 * for no verdict: a shortage of ours (dial_local()) says nothing about b.
 */
static int
health_check(struct harbor *h, struct backend *b, char *why, size_t len)
{
    struct timespec deadline;
    int fd, ok = 1;

    deadline_in(&deadline, h->health_timeout_ms);
    if ((fd = dial(&b->addr, h->health_timeout_ms)) < 0) {
        ok = dial_local(errno) ? -1 : 0;
        snprintf(why, len, "%s",
                 errno == ETIMEDOUT ? "connect timed out" : strerror(errno));
        return ok;
    }
    if (h->health_check == CHECK_HTTP)
        ok = http_check(h, b, fd, &deadline, why, len);
    close(fd);
    return ok;
}

/* Check, sleep an interval, again; the sleep ends early on stop. */
static void *
checker_main(void *arg)
{
    struct checker *k = arg;
    struct health *hl = &k->h->health;
    struct timespec ts, *deadline = deadline_in(&ts, k->delay_ms);
    char why[128];
    int ok;

    pthread_mutex_lock(&hl->lock);
    for (;;) {
        while (!k->stop && deadline != NULL && /* NULL: a delay of 0 */
               cond_wait_until(&hl->wake, &hl->lock, deadline) == 0)
            ;
        if (k->stop)
            break;
        pthread_mutex_unlock(&hl->lock); /* never held across a check */
        if ((ok = health_check(k->h, k->b, why, sizeof(why))) < 0)
            log_warn("%s: %s: %s, no verdict", __func__, k->b->addr.text, why);
        else
            health_report(k->h, k->b, ok, why);
        deadline = deadline_in(&ts, k->h->health_interval_ms);
        pthread_mutex_lock(&hl->lock);
    }
    pthread_mutex_unlock(&hl->lock);
    return NULL;
}

/*
 * The first checks are spread over one interval.  Threads start and are
 * joined outside the lock they sleep on; only this function touches
 * running and tid, on one thread at a time.
 */
void
health_sync(struct harbor *h, int stop_all)
{
    struct health *hl = &h->health;
    struct checker *k, **kp, *gone = NULL;
    struct backend **v;
    size_t n, keep, i;

    if (pool_snapshot(&h->pool, &v, &n) < 0) {
        log_error("%s: %s", __func__, strerror(errno));
        return;
    }
    keep = stop_all ? 0 : n; /* stop_all: as if the pool were empty */
    pthread_mutex_lock(&hl->lock);
    for (kp = &hl->list; (k = *kp) != NULL;) {
        if (!backend_in(v, keep, k->b)) {
            k->stop = 1;
            *kp = k->next;
            k->next = gone;
            gone = k;
            pool_remove(&hl->up, k->b->addr.text);
        } else {
            kp = &k->next;
        }
    }
    for (i = 0; i < keep; i++) {
        if (checker_of(hl, v[i]) != NULL || (k = calloc(1, sizeof(*k))) == NULL)
            continue;
        k->h = h;
        k->b = v[i];
        backend_hold(k->b);
        k->rf.up = 1;
        k->delay_ms = (int)(h->health_interval_ms * (long long)i / (long)n);
        k->next = hl->list;
        hl->list = k;
        metrics_track(&h->metrics, k->b); /* counted before it is picked */
        pool_add(&hl->up, k->b);
    }
    h->strategy.rebuild(&h->strategy, &hl->up);
    pthread_cond_broadcast(&hl->wake); /* the stopped ones wake and end */
    pthread_mutex_unlock(&hl->lock);

    for (k = hl->list; k != NULL && h->health_check != CHECK_OFF; k = k->next) {
        if (k->running)
            continue;
        if ((errno = pthread_create(&k->tid, NULL, checker_main, k)) == 0)
            k->running = 1;
        else
            log_error("%s: checker %s: %s", __func__, k->b->addr.text,
                      strerror(errno));
    }
    while ((k = gone) != NULL) {
        gone = k->next;
        if (k->running)
            pthread_join(k->tid, NULL);
        upool_drop(&h->upool, k->b); /* it left the pool: no more requests */
        backend_release(k->b);
        free(k);
    }
    pool_snapshot_free(v, n);
}
