/*
 * conn.c - one client connection, from accept to close.
 *
 * DESIGN: main() accepts and calls conn_start(), which hands the client fd
 * to a worker thread (workers.c: a parked one, or a new one).  From then on
 * that thread owns both fds: it waits for one of MAX_INFLIGHT slots, picks and
 * dials a backend (the next one on failure, up to RETRIES more), runs the
 * bridge (which borrows the fds and adds one thread for the reply direction,
 * joined before it returns), and closes both fds on its single way out.  A
 * failure anywhere ends this one client; the accept loop never waits for a
 * connection.
 *
 * SHUTDOWN: every connection is on h->conns from conn_start() until its
 * last act, conn_end(), which closes its fds, unlinks it and frees it under
 * the list's lock.  So whoever holds that lock sees only open fds, and may
 * shutdown() them to cut a connection short; once the count reaches zero,
 * no connection thread will touch anything again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harbor.h"
#include "log.h"
#include "net.h"

struct conn {
    struct harbor *h;
    struct job job;           /* runs conn_main() on a worker thread */
    struct conn *prev, *next; /* on h->conns; guarded by its lock */
    int bfd;                  /* the backend once dialled, else -1; ditto */
    int cfd;                  /* the client; this thread closes it */
    char peer[ADDR_TEXT_MAX]; /* the client's address, for the logs */
    struct timespec started;  /* when accepted, for the duration */
};

/*
 * Connect to the backend within timeout_ms.  A blocking connect() to a host
 * that never answers waits out the kernel's SYN retries: over two minutes
 * on Linux.  So: make the socket non-blocking, start the connect (it says
 * EINPROGRESS), poll() for writable until the deadline, read the outcome
 * with SO_ERROR, and make the socket blocking again for the bridge.
 * Returns the fd, or -1 with errno (ETIMEDOUT when the deadline passed).
 */
int
dial(const struct addr *a, int timeout_ms)
{
    struct pollfd pfd;
    socklen_t len = sizeof(int);
    int fd, flags, err = 0, rc, saved;

    if ((fd = socket(a->sa.ss_family, SOCK_STREAM, 0)) < 0)
        return -1;
    flags = fcntl(fd, F_GETFL);
    if (timeout_ms > 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        goto fail;
    if (connect(fd, (const struct sockaddr *)&a->sa, a->salen) == 0)
        goto done; /* loopback can connect at once */
    if (errno != EINPROGRESS)
        goto fail;
    pfd.fd = fd;
    pfd.events = POLLOUT;
    do
        rc = poll(&pfd, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        goto fail;
    if (rc == 0) {
        errno = ETIMEDOUT;
        goto fail;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        goto fail;
    if (err != 0) {
        errno = err;
        goto fail;
    }
done:
    if (fcntl(fd, F_SETFL, flags) < 0)
        goto fail;
    return fd;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

static long
ms_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 +
           (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Publish the backend fd, so a shutdown can cut this connection too. */
static void
conn_set_backend(struct conn *c, int bfd)
{
    struct conns *l = &c->h->conns;

    pthread_mutex_lock(&l->lock);
    c->bfd = bfd;
    if (l->cut)
        shutdown(bfd, SHUT_RDWR); /* dialled after the cut: end at once */
    pthread_mutex_unlock(&l->lock);
}

/*
 * A connection's last act.  close() under the lock is safe here (it does
 * not block without SO_LINGER), and it is what guarantees that a shutdown
 * walking the list never touches an fd number that was closed and reused.
 */
static void
conn_end(struct conn *c)
{
    struct conns *l = &c->h->conns;

    pthread_mutex_lock(&l->lock);
    if (c->bfd >= 0)
        close(c->bfd);
    close(c->cfd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    l->n--;
    free(c);
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
}

/*
 * The next up backend after `after` in pool order that is not in tried[],
 * held; NULL if there is none.  A retry walks the pool instead of asking
 * the strategy again: least-connections would hand back the same backend,
 * idle because it is dead, every time.
 */
static struct backend *
next_untried(struct pool *p, const struct backend *after,
             struct backend *const *tried, int ntried)
{
    struct backend *b = NULL;
    size_t start = 0, k;

    pthread_rwlock_rdlock(&p->lock);
    for (k = 0; k < p->n; k++)
        if (p->v[k] == after)
            start = k + 1;
    for (k = 0; k < p->n && b == NULL; k++) {
        b = p->v[(start + k) % p->n];
        if (!atomic_load(&b->up) || backend_in(tried, (size_t)ntried, b))
            b = NULL;
    }
    if (b != NULL)
        backend_hold(b);
    pthread_rwlock_unlock(&p->lock);
    return b;
}

/*
 * Pick a backend and dial it.  A failed connect counts as a failed health
 * check (passive detection), and the client moves on to the next up
 * backend it has not tried, up to RETRIES more times: a client sees a
 * failure only when every try failed.  Tried backends stay held until the
 * end, so that comparing pointers is safe.  Returns the fd with *bp held
 * and started, or -1.
 */
static int
conn_dial(struct conn *c, struct backend **bp)
{
    struct harbor *h = c->h;
    struct strategy *s = &h->strategy;
    struct backend *tried[RETRIES_MAX + 1], *b;
    int ntried = 0, fd = -1, i;
    char why[64];

    for (b = s->pick(s, &h->pool); b != NULL;) {
        s->start(s, b);
        if ((fd = dial(&b->addr, h->connect_timeout_ms)) >= 0) {
            *bp = b;
            break;
        }
        if (errno == ETIMEDOUT)
            snprintf(why, sizeof(why), "no answer in %d ms",
                     h->connect_timeout_ms);
        else
            snprintf(why, sizeof(why), "%s", strerror(errno));
        atomic_fetch_add(&b->failures, 1);
        log_warn("%s: connect %s: %s", __func__, b->addr.text, why);
        if (h->health_check != CHECK_OFF)
            health_report(h, b, 0, why);
        s->done(s, b);
        tried[ntried++] = b;
        b = ntried <= h->retries ? next_untried(&h->pool, b, tried, ntried)
                                 : NULL;
    }
    if (fd < 0)
        log_warn("%s: %s: %s, closed", __func__, c->peer,
                 ntried == 0 ? "no backend up" : "every try failed");
    for (i = 0; i < ntried; i++)
        backend_release(tried[i]);
    return fd;
}

static void
conn_main(void *arg)
{
    struct conn *c = arg;
    struct strategy *s = &c->h->strategy;
    struct bridge_stats st = {0, 0, 0};
    struct backend *b = NULL;
    int bfd = -1;

    /*
     * Wait for a slot before touching any backend: a client over the cap
     * costs the backends nothing while it waits.  Every path from here on
     * passes through release: exactly once, so no slot ever leaks.
     */
    if (slots_acquire(&c->h->slots, c->h->queue_timeout_ms) < 0) {
        if (errno == ETIMEDOUT)
            log_warn("%s: %s: no free slot in %d ms (MAX_INFLIGHT %d), "
                     "closed",
                     __func__, c->peer, c->h->queue_timeout_ms,
                     c->h->max_inflight);
        goto out;
    }
    if ((bfd = conn_dial(c, &b)) < 0)
        goto release;
    conn_set_backend(c, bfd);
    if (bridge_run(&c->h->workers, c->cfd, bfd, c->h->idle_timeout_ms, &st) < 0)
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
}

void
conn_start(struct harbor *h, int cfd, const struct sockaddr *peer)
{
    struct conn *c;
    int err = ENOMEM;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        goto fail;
    c->h = h;
    c->cfd = cfd;
    c->bfd = -1;
    net_ntop(peer, c->peer, sizeof(c->peer));
    clock_gettime(CLOCK_MONOTONIC, &c->started);

    /* On the list before the thread starts, so a drain counts it. */
    pthread_mutex_lock(&h->conns.lock);
    c->next = h->conns.head;
    if (c->next != NULL)
        c->next->prev = c;
    h->conns.head = c;
    h->conns.n++;
    pthread_mutex_unlock(&h->conns.lock);

    c->job.fn = conn_main;
    c->job.arg = c;
    if (workers_run(&h->workers, &c->job) == 0)
        return;
    /* Out of threads: this client is closed, the rest go on. */
    log_warn("%s: %s", __func__, strerror(errno));
    conn_end(c);
    return;
fail:
    log_warn("%s: %s", __func__, strerror(err));
    close(cfd);
}

int
conns_init(struct conns *l)
{
    int err;

    memset(l, 0, sizeof(*l));
    if ((err = pthread_mutex_init(&l->lock, NULL)) != 0)
        goto fail;
    if ((err = cond_init_monotonic(&l->changed)) != 0) {
        pthread_mutex_destroy(&l->lock);
        goto fail;
    }
    return 0;
fail:
    errno = err;
    return -1;
}

int
conns_live(struct harbor *h)
{
    int n;

    pthread_mutex_lock(&h->conns.lock);
    n = h->conns.n;
    pthread_mutex_unlock(&h->conns.lock);
    return n;
}

/*
 * Wait until every connection has ended, timeout_ms has passed (0: no
 * limit) or conns_hurry() was called.  Returns how many are still live.
 */
int
conns_drain(struct harbor *h, int timeout_ms)
{
    struct conns *l = &h->conns;
    struct timespec ts, *deadline = deadline_in(&ts, timeout_ms);
    int err = 0, n;

    pthread_mutex_lock(&l->lock);
    while (l->n > 0 && !l->hurry && err == 0)
        err = cond_wait_until(&l->changed, &l->lock, deadline);
    n = l->n;
    pthread_mutex_unlock(&l->lock);
    return n;
}

/* A second signal: whoever waits in conns_drain() stops waiting. */
void
conns_hurry(struct harbor *h)
{
    pthread_mutex_lock(&h->conns.lock);
    h->conns.hurry = 1;
    pthread_cond_broadcast(&h->conns.changed);
    pthread_mutex_unlock(&h->conns.lock);
}

/*
 * Cut every live connection and wait until all their threads are done.
 * shutdown(SHUT_RDWR) wakes a pump blocked in read() or write() on that
 * socket; clients still queued for a slot are woken by slots_close().
 */
void
conns_close_all(struct harbor *h)
{
    struct conns *l = &h->conns;
    struct conn *c;

    pthread_mutex_lock(&l->lock);
    l->cut = 1;
    for (c = l->head; c != NULL; c = c->next) {
        shutdown(c->cfd, SHUT_RDWR);
        if (c->bfd >= 0)
            shutdown(c->bfd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&l->lock);
    slots_close(&h->slots);

    pthread_mutex_lock(&l->lock);
    while (l->n > 0)
        pthread_cond_wait(&l->changed, &l->lock);
    pthread_mutex_unlock(&l->lock);
}
