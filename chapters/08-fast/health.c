/*
 * health.c - active health checks, one thread per backend.
 *
 * DESIGN: health_sync() keeps one checker thread per backend in the pool:
 * it starts one for each new backend (holding a reference to it) and stops
 * and joins the checkers of backends a reload removed.  A checker sleeps on
 * a condition variable, so stopping it takes no longer than the check in
 * progress (at most HEALTH_TIMEOUT_MS).  The first checks are spread over
 * one interval, so that a pool of many backends is not probed in one burst.
 * Results, active and passive, go through health_report(), which runs the
 * rise/fall state machine under the backend's lock and flips b->up, the
 * one thing a strategy's pick looks at.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harbor.h"
#include "log.h"
#include "net.h"

struct checker {
    struct harbor *h;
    struct backend *b;    /* held for the checker's lifetime */
    int delay_ms;         /* before the first check */
    int stop;             /* guarded by h->checkers.lock */
    pthread_t tid;        /* joined by health_sync() */
    struct checker *next; /* on h->checkers.list; guarded by its lock */
};

void
health_report(struct harbor *h, struct backend *b, int ok, const char *why)
{
    int flipped;

    pthread_mutex_lock(&b->lock);
    flipped = health_record(&b->health, ok, h->health_rise, h->health_fall);
    if (flipped)
        atomic_store(&b->up, b->health.up);
    pthread_mutex_unlock(&b->lock);
    if (flipped && ok)
        log_info("backend %s UP", b->addr.text);
    else if (flipped)
        log_warn("backend %s DOWN (%s)", b->addr.text, why);
}

/*
 * Read the status line of an HTTP response from fd by deadline, and pass
 * on 2xx only.  A status line can arrive in pieces, so keep reading until
 * its end, a full buffer, EOF or the deadline.
 */
static int
http_status(int fd, const struct timespec *deadline, char *why, size_t len)
{
    char buf[128] = {0};
    size_t got = 0;
    struct pollfd pfd = {fd, POLLIN, 0};
    struct timespec now;
    ssize_t n;
    int ms, status;

    while (got < sizeof(buf) - 1 && memchr(buf, '\n', got) == NULL) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        ms = (int)((deadline->tv_sec - now.tv_sec) * 1000 +
                   (deadline->tv_nsec - now.tv_nsec) / 1000000);
        if (ms <= 0 || poll(&pfd, 1, ms) == 0) {
            snprintf(why, len, "no HTTP status in time");
            return 0;
        }
        if ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) < 0 &&
            errno != EINTR) {
            snprintf(why, len, "%s", strerror(errno));
            return 0;
        }
        if (n == 0)
            break;
        if (n > 0)
            got += (size_t)n;
    }
    buf[got] = '\0';
    if (sscanf(buf, "HTTP/1.%*1[01] %3d", &status) != 1) {
        snprintf(why, len, "not an HTTP status line");
        return 0;
    }
    if (status < 200 || status > 299) {
        snprintf(why, len, "HTTP %d", status);
        return 0;
    }
    return 1;
}

/* One check: connect (tcp), plus GET HEALTH_PATH and a 2xx (http). */
static int
health_check(struct harbor *h, struct backend *b, char *why, size_t len)
{
    struct timespec deadline;
    char req[512];
    int fd, ok = 1, n;

    deadline_in(&deadline, h->health_timeout_ms);
    if ((fd = dial(&b->addr, h->health_timeout_ms)) < 0) {
        snprintf(why, len, "%s",
                 errno == ETIMEDOUT ? "connect timed out" : strerror(errno));
        return 0;
    }
    if (h->health_check == CHECK_HTTP) {
        n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\n"
                     "User-Agent: harbor-health\r\nConnection: close\r\n\r\n",
                     h->health_path, b->addr.text);
        if (write_all(fd, req, (size_t)n) < 0) {
            snprintf(why, len, "%s", strerror(errno));
            ok = 0;
        } else {
            ok = http_status(fd, &deadline, why, len);
        }
    }
    close(fd);
    return ok;
}

/* Sleep ms, or until stopped.  Returns 1 when the checker must stop. */
static int
checker_sleep(struct checker *k, int ms)
{
    struct checkers *l = &k->h->checkers;
    struct timespec deadline;
    int stop;

    deadline_in(&deadline, ms);
    pthread_mutex_lock(&l->lock);
    while (!k->stop &&
           pthread_cond_timedwait(&l->wake, &l->lock, &deadline) == 0)
        ;
    stop = k->stop;
    pthread_mutex_unlock(&l->lock);
    return stop;
}

static void *
checker_main(void *arg)
{
    struct checker *k = arg;
    char why[128];
    int ms = k->delay_ms, ok;

    while (!checker_sleep(k, ms)) {
        ok = health_check(k->h, k->b, why, sizeof(why));
        health_report(k->h, k->b, ok, why);
        ms = k->h->health_interval_ms;
    }
    return NULL;
}

/*
 * Give every backend in the pool a checker, and stop those whose backend
 * left it.  Called at start-up and after each reload, from one thread at a
 * time; with stop_all, stops every checker (at shutdown).
 */
void
health_sync(struct harbor *h, int stop_all)
{
    struct checkers *l = &h->checkers;
    struct checker *k, **kp, *gone = NULL;
    struct backend **v;
    size_t n, keep, i;

    if (h->health_check == CHECK_OFF)
        return;
    if (pool_snapshot(&h->pool, &v, &n) < 0) {
        log_error("%s: %s", __func__, strerror(errno));
        return;
    }
    keep = stop_all ? 0 : n; /* stop_all: as if the pool were empty */

    pthread_mutex_lock(&l->lock);
    for (kp = &l->list; (k = *kp) != NULL;) {
        if (!backend_in(v, keep, k->b)) {
            k->stop = 1;
            *kp = k->next;
            k->next = gone;
            gone = k;
        } else {
            kp = &k->next;
        }
    }
    for (i = 0; i < keep; i++) {
        for (k = l->list; k != NULL && k->b != v[i]; k = k->next)
            ;
        if (k != NULL || (k = calloc(1, sizeof(*k))) == NULL)
            continue;
        k->h = h;
        k->b = v[i];
        backend_hold(k->b);
        k->delay_ms = (int)((long long)h->health_interval_ms * (long long)i /
                            (long long)keep);
        if ((errno = pthread_create(&k->tid, NULL, checker_main, k)) != 0) {
            log_error("%s: checker for %s: %s", __func__, k->b->addr.text,
                      strerror(errno));
            backend_release(k->b);
            free(k);
            continue;
        }
        k->next = l->list;
        l->list = k;
    }
    pthread_cond_broadcast(&l->wake); /* the stopped ones wake and end */
    pthread_mutex_unlock(&l->lock);

    while ((k = gone) != NULL) { /* join outside the lock they sleep on */
        gone = k->next;
        pthread_join(k->tid, NULL);
        backend_release(k->b);
        free(k);
    }
    pool_snapshot_free(v, n);
}
