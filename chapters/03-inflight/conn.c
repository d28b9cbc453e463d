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
        log_warn("%s: %s: no free slot in %d ms (MAX_INFLIGHT %d), closed",
                 __func__, c->peer, c->h->queue_timeout_ms, c->h->max_inflight);
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
    if (bfd >= 0)
        close(bfd);
    close(c->cfd);
    free(c);
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

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, CONN_STACK_SIZE);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    err = pthread_create(&tid, &attr, conn_main, c);
    pthread_attr_destroy(&attr);
    if (err == 0)
        return;
fail:
    /* Out of threads or memory: this client is closed, the rest go on. */
    log_warn("%s: %s", __func__, strerror(err));
    free(c);
    close(cfd);
}
