/*
 * conn.c - one client connection, from accept to close.
 *
 * DESIGN: main() accepts and calls conn_start(), which hands the client fd
 * to a new detached thread.  From then on that thread owns both fds, and:
 *   - waits for one of MAX_INFLIGHT slots;
 *   - picks a backend and dials it;
 *   - runs the bridge, which borrows the fds and adds one thread for the
 *     reply direction, joined before bridge_run() returns;
 *   - has both fds closed, on its single way out.
 * A failure anywhere ends this one client; the accept loop never waits for
 * a connection, only for a seat (slots_admit()), which conns_end() gives
 * back.
 *
 * SHUTDOWN: the fds are on the registry (conns.c) from conn_start() on, so
 * that a shutdown can cut them; the registry closes them, as the thread's
 * last act.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "conn.h"
#include "dial.h"
#include "log.h"
#include "net.h"

struct conn {
    struct harbor *h;
    struct conns_entry *reg;  /* cfd and bfd on h->conns */
    int cfd;                  /* the client; the registry closes it */
    char peer[ADDR_TEXT_MAX]; /* the client's address, for the logs */
    struct timespec started;  /* when accepted, for the duration */
};

static long
ms_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 +
           (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Free c, then hand its fds to the registry to close: the last act. */
static void
conn_end(struct conn *c)
{
    struct conns *l = &c->h->conns;
    struct conns_entry *reg = c->reg;

    free(c);
    conns_end(l, reg);
}

/* Dial b for c; on failure, log which backend and why.  The fd, or -1. */
static int
conn_try(struct conn *c, struct backend *b)
{
    char why[80];
    int fd, local;

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
    return -1;
}

static void *
conn_main(void *arg)
{
    struct conn *c = arg;
    struct strategy *s = &c->h->strategy;
    struct bridge_stats st = {0, 0, 0};
    struct backend *b;
    int bfd = -1;

    /*
     * Wait for a slot before touching any backend: a client over the cap
     * costs the backends nothing while it waits.  Every path from here on
     * passes through release: exactly once, so no slot ever leaks.
     */
    if (slots_acquire(&c->h->slots, c->h->queue_timeout_ms) < 0) {
        if (errno == ETIMEDOUT) /* not ECANCELED: a shutdown */
            log_warn("%s: %s: no free slot in %d ms (MAX_INFLIGHT %d), closed",
                     __func__, c->peer, c->h->queue_timeout_ms,
                     c->h->max_inflight);
        goto out;
    }
    if ((b = s->pick(s, &c->h->pool)) == NULL) {
        log_warn("%s: %s: no backend available", __func__, c->peer);
        goto release;
    }
    s->start(s, b);
    if ((bfd = conn_try(c, b)) < 0)
        goto done;
    conns_set_backend(&c->h->conns, c->reg, bfd);
    if (bridge_run(c->cfd, bfd, c->h->idle_timeout_ms, &st) < 0)
        goto done;
    if (st.err == ETIMEDOUT)
        log_info("%s: %s -> %s: no progress for %d ms, closed", __func__,
                 c->peer, b->addr.text, c->h->idle_timeout_ms);
    log_debug("%s: %s -> %s: %llu bytes up, %llu down, %ld ms, %s", __func__,
              c->peer, b->addr.text, st.up, st.down, ms_since(&c->started),
              st.err != 0 ? strerror(st.err) : "closed");
done:
    s->done(s, b);
    backend_release(b);
release:
    slots_release(&c->h->slots);
out:
    conn_end(c);
    return NULL;
}

void
conn_start(struct harbor *h, int cfd, const struct sockaddr *peer)
{
    pthread_attr_t attr;
    pthread_t tid;
    struct conn *c;
    int err = ENOMEM;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        goto fail;
    c->h = h;
    c->cfd = cfd;
    net_ntop(peer, c->peer, sizeof(c->peer));
    clock_gettime(CLOCK_MONOTONIC, &c->started);
    /* On the list before the thread starts, so a drain counts it. */
    if ((c->reg = conns_add(&h->conns, cfd)) == NULL)
        goto fail;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, CONN_STACK_SIZE);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    err = pthread_create(&tid, &attr, conn_main, c);
    pthread_attr_destroy(&attr);
    if (err == 0)
        return;
    /* Out of threads: this client is closed, the rest go on. */
    log_warn("%s: %s", __func__, strerror(err));
    conn_end(c);
    return;
fail:
    /* Out of memory: the same. */
    log_warn("%s: %s", __func__, strerror(err));
    free(c);
    close(cfd);
    slots_leave(&h->slots);
}
