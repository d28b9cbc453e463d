/*
 * clock.c - deadlines on the monotonic clock, and waiting for them.
 *
 * Every timed wait in Harbor goes through here.  A deadline is a point on
 * CLOCK_MONOTONIC, which never jumps when someone sets the time; a timeout
 * of 0 means no limit, decided in one place, cond_wait_until().
 */
#include "clock.h"

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

long long
clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock,
                const struct timespec *deadline)
{
    if (deadline == NULL)
        return pthread_cond_wait(cond, lock);
    return pthread_cond_timedwait(cond, lock, deadline);
}

/*
 * The default clock of a condition variable is the wall clock, and a
 * deadline from one clock read against the other is long past or far
 * away: a waiter would spin, or sleep for years.
 */
int
cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int err;

    if ((err = pthread_condattr_init(&attr)) != 0)
        return err;
    if ((err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) == 0)
        err = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return err;
}

long long
clock_us_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000000LL +
           (now.tv_nsec - t0->tv_nsec) / 1000;
}
