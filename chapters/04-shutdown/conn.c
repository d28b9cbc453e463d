/*
 * conn.c - one client connection, from accept to close.
 *
 * DESIGN: main() accepts and calls conn_start(), which hands the client fd
 * to a new detached thread.  From then on that thread owns both fds: it
 * waits for one of MAX_INFLIGHT slots, picks a backend, dials it, runs the
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
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harbor.h"
#include "log.h"
#include "net.h"

struct conn {
    struct harbor *h;
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
static int
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
        if (errno == ETIMEDOUT)
            log_warn("%s: %s: no free slot in %d ms (MAX_INFLIGHT %d), "
                     "closed",
                     __func__, c->peer, c->h->queue_timeout_ms,
                     c->h->max_inflight);
        goto out;
    }
    if ((b = s->pick(s, &c->h->pool)) == NULL) {
        log_warn("%s: %s: no backend available", __func__, c->peer);
        goto release;
    }
    s->start(s, b);
    if ((bfd = dial(&b->addr, c->h->connect_timeout_ms)) < 0) {
        atomic_fetch_add(&b->failures, 1);
        if (errno == ETIMEDOUT)
            log_warn("%s: connect %s: no answer in %d ms", __func__,
                     b->addr.text, c->h->connect_timeout_ms);
        else
            log_warn("%s: connect %s: %s", __func__, b->addr.text,
                     strerror(errno));
        goto done;
    }
    conn_set_backend(c, bfd);
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
