/*
 * clock.h - deadlines on the monotonic clock, and condition variables that
 * wait for them (clock.c).
 */
#ifndef HARBOR_CLOCK_H
#define HARBOR_CLOCK_H

#include <pthread.h>
#include <time.h>

/*
 * Fill *ts with the CLOCK_MONOTONIC time ms milliseconds from now.  Returns
 * ts, or NULL when ms is 0: a timeout of 0 means no limit, and that is what
 * cond_wait_until() makes of a NULL deadline.
 */
struct timespec *deadline_in(struct timespec *ts, int ms);

/* Wait on cond, lock held, until deadline (NULL: no limit).  0 or ETIMEDOUT
 * (or another pthread_cond_timedwait error). */
int cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock,
                    const struct timespec *deadline);

/* Milliseconds on CLOCK_MONOTONIC: for measuring, never for the date. */
long long clock_ms(void);
/* Microseconds on CLOCK_MONOTONIC since *t0, taken from the same clock. */
long long clock_us_since(const struct timespec *t0);

/* pthread_cond_init() for a condition variable whose timed waits read
 * CLOCK_MONOTONIC.  0 or an error number. */
int cond_init_monotonic(pthread_cond_t *cond);

#endif
