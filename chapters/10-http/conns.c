/*
 * conns.c - the registry of live connections.
 *
 * DESIGN: every connection is on the list from conn_start() until its last
 * act, conns_end(), which closes its fds, gives its seat back (slots.c),
 * unlinks it and frees its entry under the list's lock.  So whoever holds
 * that lock sees only open fds, and may shutdown() them to cut a
 * connection short; the accept loop gets a seat only once the fds behind
 * it are closed; and once the count reaches zero, no connection thread
 * will touch the list, an fd or a seat again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "conns.h"
#include "slots.h"

struct conns_entry {
    struct conns_entry *prev, *next; /* guarded by the list's lock */
    int cfd;                         /* the client */
    int bfd;                         /* the backend once dialled, else -1 */
};

int
conns_init(struct conns *l, struct slots *seats)
{
    int err;

    memset(l, 0, sizeof(*l));
    l->seats = seats;
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

struct conns_entry *
conns_add(struct conns *l, int cfd)
{
    struct conns_entry *e;

    if ((e = calloc(1, sizeof(*e))) == NULL)
        return NULL;
    e->cfd = cfd;
    e->bfd = -1;
    pthread_mutex_lock(&l->lock);
    e->next = l->head;
    if (e->next != NULL)
        e->next->prev = e;
    l->head = e;
    l->n++;
    pthread_mutex_unlock(&l->lock);
    return e;
}

void
conns_set_backend(struct conns *l, struct conns_entry *e, int bfd)
{
    pthread_mutex_lock(&l->lock);
    e->bfd = bfd; /* -1: its connection went back to the idle pool */
    if (l->cut && bfd >= 0)
        shutdown(bfd, SHUT_RDWR); /* dialled after the cut: end at once */
    pthread_mutex_unlock(&l->lock);
}

/*
 * close() under the lock is safe here (it does not block without
 * SO_LINGER), and it is what guarantees that a shutdown walking the list
 * never touches an fd number that was closed and reused.
 */
void
conns_end(struct conns *l, struct conns_entry *e)
{
    pthread_mutex_lock(&l->lock);
    if (e->bfd >= 0)
        close(e->bfd);
    close(e->cfd);
    slots_leave(l->seats);
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    l->n--;
    free(e);
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
}

int
conns_live(struct conns *l)
{
    int n;

    pthread_mutex_lock(&l->lock);
    n = l->n;
    pthread_mutex_unlock(&l->lock);
    return n;
}

int
conns_drain(struct conns *l, int timeout_ms)
{
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
conns_hurry(struct conns *l)
{
    pthread_mutex_lock(&l->lock);
    l->hurry = 1;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
}

/*
 * shutdown(SHUT_RDWR) wakes a pump blocked in read() or write() on that
 * socket, and the connection ends as if its peer had gone.  (Clients still
 * queued for a slot have no socket to cut: slots_close() wakes them.)
 */
void
conns_close_all(struct conns *l)
{
    struct conns_entry *e;

    pthread_mutex_lock(&l->lock);
    l->cut = 1;
    for (e = l->head; e != NULL; e = e->next) {
        shutdown(e->cfd, SHUT_RDWR);
        if (e->bfd >= 0)
            shutdown(e->bfd, SHUT_RDWR);
    }
    while (l->n > 0)
        cond_wait_until(&l->changed, &l->lock, NULL);
    pthread_mutex_unlock(&l->lock);
}
