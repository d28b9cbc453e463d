/*
 * slots.h - a counting semaphore: at most n connections hold a slot
 * (slots.c).
 */
#ifndef HARBOR_SLOTS_H
#define HARBOR_SLOTS_H

#include <pthread.h>

struct slots {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t freed; /* signalled when a slot comes back */
    unsigned free;
    int closed; /* shutting down: waiters give up */
};

/* n slots, all free.  0, or -1 with errno. */
int slots_init(struct slots *s, unsigned n);
/*
 * Take a slot, waiting up to timeout_ms for one (0: as long as it takes).
 * 0, or -1 with errno ETIMEDOUT, or ECANCELED after slots_close().
 */
int slots_acquire(struct slots *s, int timeout_ms);
void slots_release(struct slots *s);
/* Shutting down: wake every waiter, and make them give up. */
void slots_close(struct slots *s);

#endif
