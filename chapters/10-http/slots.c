/*
 * slots.c - a counting semaphore: at most n connections hold a slot, and
 * a second count of the clients let in, for the accept loop.
 *
 * Built from a mutex and a condition variable rather than POSIX sem_t,
 * because sem_timedwait() takes a wall-clock deadline, which jumps when
 * the clock is set.  A condition variable on CLOCK_MONOTONIC (clock.c)
 * waits out exactly the time it was asked to, and the whole semaphore is a
 * dozen lines a learner can read.
 */
#include <errno.h>

#include "clock.h"
#include "slots.h"

int
slots_init(struct slots *s, unsigned n, unsigned seats)
{
    int err;

    if ((err = pthread_mutex_init(&s->lock, NULL)) != 0)
        goto fail;
    if ((err = cond_init_monotonic(&s->freed)) != 0)
        goto fail_lock;
    if ((err = pthread_cond_init(&s->seat, NULL)) != 0)
        goto fail_freed;
    s->free = n;
    s->seats = seats;
    s->closed = 0;
    return 0;
fail_freed:
    pthread_cond_destroy(&s->freed);
fail_lock:
    pthread_mutex_destroy(&s->lock);
fail:
    errno = err;
    return -1;
}

/*
 * The loop re-checks after every wake-up: a condition variable may wake
 * spuriously, and another waiter may have taken the slot first.
 */
int
slots_acquire(struct slots *s, int timeout_ms)
{
    struct timespec ts, *deadline = deadline_in(&ts, timeout_ms);
    int err = 0;

    pthread_mutex_lock(&s->lock);
    while (s->free == 0 && !s->closed && err == 0)
        err = cond_wait_until(&s->freed, &s->lock, deadline);
    if (s->closed) {
        err = ECANCELED;
    } else if (s->free > 0) {
        s->free--;
        err = 0;
    }
    pthread_mutex_unlock(&s->lock);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

void
slots_release(struct slots *s)
{
    pthread_mutex_lock(&s->lock);
    s->free++;
    pthread_mutex_unlock(&s->lock);
    pthread_cond_signal(&s->freed); /* one slot, one waiter */
}

void
slots_admit(struct slots *s)
{
    pthread_mutex_lock(&s->lock);
    while (s->seats == 0)
        pthread_cond_wait(&s->seat, &s->lock);
    s->seats--;
    pthread_mutex_unlock(&s->lock);
}

void
slots_leave(struct slots *s)
{
    pthread_mutex_lock(&s->lock);
    s->seats++;
    pthread_mutex_unlock(&s->lock);
    pthread_cond_signal(&s->seat); /* only the accept loop waits */
}

void
slots_close(struct slots *s)
{
    pthread_mutex_lock(&s->lock);
    s->closed = 1;
    pthread_mutex_unlock(&s->lock);
    pthread_cond_broadcast(&s->freed);
}
