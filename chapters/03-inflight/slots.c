/*
 * slots.c - a counting semaphore: at most n connections hold a slot.
 *
 * Built from a mutex and a condition variable rather than POSIX sem_t:
 * sem_timedwait() takes a wall-clock deadline, which jumps when the clock is
 * set, and macOS has no unnamed semaphores at all.  A condition variable on
 * CLOCK_MONOTONIC waits out exactly the time it was asked to, and the whole
 * semaphore is a dozen lines a learner can read.
 */
#include <errno.h>
#include <time.h>

#include "harbor.h"

/*
 * A condition variable whose timed waits read CLOCK_MONOTONIC, the clock
 * deadline_in() uses; the default is the wall clock, and a deadline from
 * one clock read against the other is long past or far away.
 */
int
cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int err;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    err = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return err;
}

int
slots_init(struct slots *s, unsigned n)
{
    int err;

    if ((err = pthread_mutex_init(&s->lock, NULL)) != 0)
        goto fail;
    if ((err = cond_init_monotonic(&s->freed)) != 0) {
        pthread_mutex_destroy(&s->lock);
        goto fail;
    }
    s->free = n;
    return 0;
fail:
    errno = err;
    return -1;
}

/*
 * Fill *ts with the CLOCK_MONOTONIC time ms milliseconds from now.  Returns
 * ts, or NULL when ms is 0: a timeout of 0 means no limit, and that is what
 * cond_wait_until() makes of a NULL deadline.
 */
struct timespec *
deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
    return ms > 0 ? ts : NULL;
}

/* Wait on cond, lock held, until deadline (NULL: no limit).  0 or ETIMEDOUT. */
int
cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock,
                const struct timespec *deadline)
{
    if (deadline == NULL)
        return pthread_cond_wait(cond, lock);
    return pthread_cond_timedwait(cond, lock, deadline);
}

/*
 * Take a slot, waiting up to timeout_ms for one (0: as long as it takes).
 * 0, or -1 with errno ETIMEDOUT.  The loop re-checks after every wake-up:
 * a condition variable may wake spuriously, and another waiter may have
 * taken the slot first.
 */
int
slots_acquire(struct slots *s, int timeout_ms)
{
    struct timespec ts, *deadline = deadline_in(&ts, timeout_ms);
    int err = 0;

    pthread_mutex_lock(&s->lock);
    while (s->free == 0 && err == 0)
        err = cond_wait_until(&s->freed, &s->lock, deadline);
    if (s->free > 0) {
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
