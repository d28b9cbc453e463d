/*
 * upool.c - idle upstream connections, kept per backend for the next
 * request.
 *
 * A connection to a backend costs a handshake, and in HTTP mode a client
 * connection may send a request to a different backend each time; keeping
 * the backend connections that finished an exchange cleanly lets the next
 * request to that backend skip the connect.  This is HAProxy's
 * http-reuse and nginx's upstream keepalive.
 *
 * DESIGN: one list under one mutex; a request takes a connection out (it
 * is then its own, and nobody else touches it) and puts it back after a
 * whole response.  Each idle connection holds its backend, so the pointer
 * compared in upool_take() is never a freed one.  A reaper thread wakes
 * every second and closes what has been idle for UPSTREAM_IDLE_TIMEOUT_MS:
 * a backend may close idle connections of its own first, and a connection
 * idle for long is the likeliest to be stale.  Nothing blocking runs under
 * the lock: close() without SO_LINGER does not block.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "upool.h"

#define REAP_TICK_MS 1000

struct idle {
    struct idle *next;
    struct backend *b; /* held */
    int fd;
    long long since; /* ms on the monotonic clock when put back */
};

int
upool_init(struct upool *u, int max, int timeout_ms)
{
    u->list = NULL;
    u->max = max;
    u->timeout_ms = timeout_ms;
    u->stop = u->running = 0;
    if ((errno = pthread_mutex_init(&u->lock, NULL)) != 0)
        return -1;
    if ((errno = cond_init_monotonic(&u->wake)) != 0) {
        pthread_mutex_destroy(&u->lock);
        return -1;
    }
    return 0;
}

/* Unlink *ip and free it; the caller has closed or kept its fd. */
static void
idle_free(struct idle **ip)
{
    struct idle *i = *ip;

    *ip = i->next;
    backend_release(i->b);
    free(i);
}

/*
 * Does fd still look usable?  An idle connection has nothing to say: if
 * it is readable, the backend closed it (EOF), reset it, or sent bytes no
 * request asked for.  Any of those makes it useless.  (A backend can still
 * close it just after this look; upool_take()'s callers retry for that.)
 */
static int
idle_alive(int fd)
{
    struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};

    return poll(&p, 1, 0) == 0;
}

int
upool_take(struct upool *u, struct backend *b)
{
    struct idle **ip;
    int fd = -1;

    pthread_mutex_lock(&u->lock);
    for (ip = &u->list; *ip != NULL && fd < 0;) {
        if ((*ip)->b != b) {
            ip = &(*ip)->next;
            continue;
        }
        if (idle_alive((*ip)->fd))
            fd = (*ip)->fd;
        else
            close((*ip)->fd);
        idle_free(ip);
    }
    pthread_mutex_unlock(&u->lock);
    return fd;
}

void
upool_put(struct upool *u, struct backend *b, int fd)
{
    struct idle *i, *n;
    int count = 0;

    pthread_mutex_lock(&u->lock);
    for (n = u->list; n != NULL; n = n->next)
        count += n->b == b;
    if (u->stop || count >= u->max || (i = malloc(sizeof(*i))) == NULL) {
        pthread_mutex_unlock(&u->lock);
        close(fd);
        return;
    }
    backend_hold(b);
    i->b = b;
    i->fd = fd;
    i->since = clock_ms();
    i->next = u->list;
    u->list = i;
    pthread_mutex_unlock(&u->lock);
}

/* Close the idle connections that match: b's, or (b NULL) those idle for
 * longer than before.  Caller holds u->lock. */
static void
idle_close(struct upool *u, const struct backend *b, long long before)
{
    struct idle **ip;

    for (ip = &u->list; *ip != NULL;) {
        if ((b != NULL && (*ip)->b == b) ||
            (b == NULL && (*ip)->since < before)) {
            close((*ip)->fd);
            idle_free(ip);
        } else {
            ip = &(*ip)->next;
        }
    }
}

void
upool_drop(struct upool *u, const struct backend *b)
{
    pthread_mutex_lock(&u->lock);
    idle_close(u, b, 0);
    pthread_mutex_unlock(&u->lock);
}

static void *
reaper_main(void *arg)
{
    struct upool *u = arg;
    struct timespec ts;

    pthread_mutex_lock(&u->lock);
    while (!u->stop) {
        idle_close(u, NULL, clock_ms() - u->timeout_ms);
        cond_wait_until(&u->wake, &u->lock, deadline_in(&ts, REAP_TICK_MS));
    }
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

int
upool_start(struct upool *u)
{
    if ((errno = pthread_create(&u->reaper, NULL, reaper_main, u)) != 0)
        return -1;
    u->running = 1;
    return 0;
}

void
upool_stop(struct upool *u)
{
    pthread_mutex_lock(&u->lock);
    u->stop = 1;
    pthread_cond_broadcast(&u->wake);
    pthread_mutex_unlock(&u->lock);
    if (u->running)
        pthread_join(u->reaper, NULL);
    pthread_mutex_lock(&u->lock);
    while (u->list != NULL) {
        close(u->list->fd);
        idle_free(&u->list);
    }
    pthread_mutex_unlock(&u->lock);
    pthread_cond_destroy(&u->wake);
    pthread_mutex_destroy(&u->lock);
}
