/*
 * conn.c - one client connection, from accept to close.
 *
 * DESIGN: up to ACCEPTORS threads wait in accept() on the listener at once
 * (leader/follower, as in Apache's worker model).  The kernel hands each
 * new client to one of them, and that thread serves it itself:
 *   - waits for one of MAX_INFLIGHT slots;
 *   - picks and dials a backend, and another on failure (RETRIES);
 *   - runs the bridge, which borrows the fds and hands the reply direction
 *     to a parked worker, waited for before bridge_run() returns;
 *   - has both fds closed, on its single way out.
 * No thread stands between accept() and the backend.  The last thread to
 * leave accept() first has a worker take its place, so someone is always
 * there.  A thread done with its client goes back to accept() while fewer
 * than ACCEPTORS wait there, and parks with the workers otherwise; one
 * that waits WORKER_IDLE_MS there for nothing ends, unless it is the last.
 * A failure anywhere ends this one client.
 *
 * SHUTDOWN: the fds are on the registry (conns.c) from conn_new() on, so
 * that a shutdown can cut them; the registry closes them, as the thread's
 * last act.  h->accepting counts the threads at the listener; when the
 * signal thread shuts it down they all leave, and main() waits for that
 * before it drains.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "clock.h"
#include "conn.h"
#include "dial.h"
#include "log.h"
#include "net.h"
#include "proxy.h"

/* Count c's duration, free c, then hand its fds to the registry to close:
 * the last act. */
static void
conn_end(struct conn *c)
{
    struct conns *l = &c->h->conns;
    struct conns_entry *reg = c->reg;

    metrics_observe(&c->h->metrics, clock_us_since(&c->started));
    free(c);
    conns_end(l, reg);
}

/* Dial b for c (in MODE=http, first look for an idle connection to it);
 * on failure, log which backend and why.  The fd, or -1. */
static int
conn_try(struct conn *c, struct backend *b)
{
    char why[80];
    int fd, local;

    c->reused = 0;
    if (c->h->mode == MODE_HTTP && !c->fresh &&
        (fd = upool_take(&c->h->upool, b)) >= 0) {
        c->reused = 1;
        return fd;
    }
    if ((fd = dial(&b->addr, c->h->connect_timeout_ms)) >= 0)
        return fd;
    local = dial_local(errno);
    if (errno == ETIMEDOUT)
        snprintf(why, sizeof(why), "no answer in %d ms",
                 c->h->connect_timeout_ms);
    else
        snprintf(why, sizeof(why), "%s%s", strerror(errno),
                 local ? " (here, not at the backend)" : "");
    log_warn("%s: %s: connect %s: %s", __func__, c->peer, b->addr.text, why);
    if (!local)
        metrics_backend_failed(&c->h->metrics, b);
    if (c->h->health_check != CHECK_OFF && !local)
        health_report(c->h, b, 0, why); /* passive detection */
    return -1;
}

/*
 * Dial an up backend, and on failure an up backend not tried yet, up to
 * RETRIES more times.  A retry walks the up set: asked again,
 * least-connections would pick the same dead (so idle) backend.  Tried
 * backends stay held, so that comparing pointers is safe.
 */
int
conn_dial(struct conn *c, struct backend **bp)
{
    struct strategy *s = &c->h->strategy;
    struct pool *up = &c->h->health.up;
    struct backend *tried[RETRIES_MAX + 1], *b;
    int ntried = 0, fd = -1, i;

    for (b = s->pick(s, up); b != NULL;) {
        s->start(s, b);
        if ((fd = conn_try(c, b)) >= 0) {
            *bp = b;
            break;
        }
        s->done(s, b);
        tried[ntried++] = b;
        /* The first up backend not tried yet, in the up set's order. */
        for (b = NULL, i = 0;
             ntried <= c->h->retries && b == NULL && (size_t)i < pool_size(up);
             i++) {
            b = pool_next(up, (size_t)i);
            if (b != NULL && backend_in(tried, (size_t)ntried, b)) {
                backend_release(b);
                b = NULL;
            }
        }
    }
    if (fd < 0) {
        log_warn("%s: %s: %s, closed", __func__, c->peer,
                 ntried == 0 ? "no backend up" : "every try failed");
        metrics_add(
            &c->h->metrics.errors[ntried == 0 ? ERR_NO_BACKEND : ERR_CONNECT],
            1);
    }
    for (i = 0; i < ntried; i++)
        backend_release(tried[i]);
    if (fd < 0)
        errno = ntried == 0 ? ENOENT : ECONNREFUSED;
    return fd;
}

static void
conn_main(struct conn *c)
{
    struct strategy *s = &c->h->strategy;
    struct metrics *m = &c->h->metrics;
    struct bridge_stats st = {0, 0, 0};
    struct backend *b;
    int bfd = -1;

    /*
     * Wait for a slot before touching any backend: a client over the cap
     * costs the backends nothing while it waits.  Every path from here on
     * passes through release: exactly once, so no slot ever leaks.
     */
    if (slots_acquire(&c->h->slots, c->h->queue_timeout_ms) < 0) {
        if (errno == ETIMEDOUT) { /* not ECANCELED: a shutdown */
            log_warn("%s: %s: no free slot in %d ms (MAX_INFLIGHT %d), closed",
                     __func__, c->peer, c->h->queue_timeout_ms,
                     c->h->max_inflight);
            metrics_add(&m->errors[ERR_QUEUE_TIMEOUT], 1);
            if (c->h->mode == MODE_HTTP)
                proxy_refuse(c, 503);
        }
        goto out;
    }
    atomic_fetch_add(&m->inflight, 1);
    if (c->h->mode == MODE_HTTP) {
        proxy_run(c); /* request by request, each to its own backend */
        goto release;
    }
    if ((bfd = conn_dial(c, &b)) < 0)
        goto release;
    conns_set_backend(&c->h->conns, c->reg, bfd);
    metrics_backend_start(m, b);
    if (bridge_run(&c->h->workers, c->cfd, bfd, c->h->idle_timeout_ms, m->bytes,
                   &st) < 0)
        goto done;
    if (st.err == ETIMEDOUT)
        log_info("%s: %s -> %s: no progress for %d ms, closed", __func__,
                 c->peer, b->addr.text, c->h->idle_timeout_ms);
    if (st.err != 0)
        metrics_add(
            &m->errors[st.err == ETIMEDOUT ? ERR_IDLE_TIMEOUT : ERR_RESET], 1);
    log_debug("%s: %s -> %s: %llu bytes up, %llu down, %lld ms, %s", __func__,
              c->peer, b->addr.text, st.up, st.down,
              clock_us_since(&c->started) / 1000,
              st.err != 0 ? strerror(st.err) : "closed");
done:
    metrics_backend_done(m, b);
    s->done(s, b);
    backend_release(b);
release:
    atomic_fetch_sub(&m->inflight, 1);
    slots_release(&c->h->slots);
out:
    conn_end(c);
}

/* A client just accepted, on the registry.  NULL when out of memory: the
 * client is closed, the rest go on. */
static struct conn *
conn_new(struct harbor *h, int cfd, const struct sockaddr *peer)
{
    struct conn *c;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        goto fail;
    c->h = h;
    c->cfd = cfd;
    net_ntop(peer, c->peer, sizeof(c->peer));
    clock_gettime(CLOCK_MONOTONIC, &c->started);
    /* On the list before anything waits, so a drain counts it. */
    if ((c->reg = conns_add(&h->conns, cfd)) != NULL)
        return c;
fail:
    log_warn("%s: %s", __func__, strerror(ENOMEM));
    free(c);
    close(cfd);
    slots_leave(&h->slots);
    return NULL;
}

/* h->accepting += d; the last one out at shutdown wakes main(). */
static void
accepting_add(struct harbor *h, int d)
{
    pthread_mutex_lock(&h->accept_lock);
    if ((h->accepting += d) == 0)
        pthread_cond_broadcast(&h->accept_none);
    pthread_mutex_unlock(&h->accept_lock);
}

/*
 * Leave accept() with a client.  The last thread there first has a worker
 * take its place; it counts in h->accepting from now on.  0 to serve the
 * client, or -1 when no thread can be had: then this one stays.
 */
static int
accept_leave(struct harbor *h)
{
    int last;

    pthread_mutex_lock(&h->accept_lock);
    last = h->accepting == 1 && !atomic_load(&h->stopping);
    if (!last && --h->accepting == 0)
        pthread_cond_broadcast(&h->accept_none);
    pthread_mutex_unlock(&h->accept_lock);
    if (!last || workers_run(&h->workers, &h->accept_job) == 0)
        return 0;
    log_warn("%s: %s", __func__, strerror(errno));
    return -1;
}

/* Back to accept() if fewer than ACCEPTORS are there: 1, else 0. */
static int
accept_return(struct harbor *h)
{
    int back;

    pthread_mutex_lock(&h->accept_lock);
    back = h->accepting < ACCEPTORS && !atomic_load(&h->stopping);
    h->accepting += back;
    pthread_mutex_unlock(&h->accept_lock);
    return back;
}

/* WORKER_IDLE_MS in accept() for nothing: 1 to end, unless the last. */
static int
accept_idle(struct harbor *h)
{
    int end;

    pthread_mutex_lock(&h->accept_lock);
    end = h->accepting > 1;
    h->accepting -= end;
    pthread_mutex_unlock(&h->accept_lock);
    if (!end)
        bridge_forget(); /* the last keeps nothing it does not need */
    return end;
}

/* A thread's turns at the listener: the job h->accept_job. */
static int
accept_main(void *arg)
{
    struct harbor *h = arg;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    struct conn *c;
    int cfd;

    for (;;) {
        slots_admit(&h->slots); /* a seat first: the descriptors have a bound */
        peerlen = sizeof(peer);
        if ((cfd = net_accept(h->lfd, &peer, &peerlen)) < 0) {
            slots_leave(&h->slots); /* for the next thread in line */
            if (atomic_load(&h->stopping)) {
                /* The signal thread shut the listener down. */
                accepting_add(h, -1);
                return 0;
            }
            if (errno != EAGAIN)
                fatal("accept: %s", strerror(errno)); /* a broken listener */
            if (accept_idle(h))
                return 1;
            continue;
        }
        metrics_add(&h->metrics.accepted, 1);
        if ((c = conn_new(h, cfd, (struct sockaddr *)&peer)) == NULL)
            continue;
        if (accept_leave(h) < 0) {
            conn_end(c); /* out of threads: this client is closed */
            continue;
        }
        conn_main(c);
        if (!accept_return(h))
            return 0;
    }
}

int
conn_accept_start(struct harbor *h)
{
    /* accept() honours SO_RCVTIMEO: how accept_idle() gets its turn. */
    struct timeval tv = {WORKER_IDLE_MS / 1000, WORKER_IDLE_MS % 1000 * 1000};

    if ((errno = pthread_mutex_init(&h->accept_lock, NULL)) != 0 ||
        (errno = pthread_cond_init(&h->accept_none, NULL)) != 0)
        return -1;
    setsockopt(h->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    h->accept_job.fn = accept_main;
    h->accept_job.arg = h;
    h->accepting = 1;
    return workers_run(&h->workers, &h->accept_job);
}

void
conn_accept_wait(struct harbor *h)
{
    pthread_mutex_lock(&h->accept_lock);
    while (h->accepting > 0)
        pthread_cond_wait(&h->accept_none, &h->accept_lock);
    pthread_mutex_unlock(&h->accept_lock);
}
