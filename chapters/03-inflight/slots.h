/*
 * slots.h - a counting semaphore: at most n connections hold a slot
 * (slots.c).
 */
#ifndef HARBOR_SLOTS_H
#define HARBOR_SLOTS_H

#include <pthread.h>

struct slots {
    pthread_mutex_t lock; /* guards free */
    pthread_cond_t freed; /* signalled when a slot comes back */
    unsigned free;
};

/* n slots, all free.  0, or -1 with errno. */
int slots_init(struct slots *s, unsigned n);
/*
 * Take a slot, waiting up to timeout_ms for one (0: as long as it takes).
 * 0, or -1 with errno ETIMEDOUT.
 */
int slots_acquire(struct slots *s, int timeout_ms);
void slots_release(struct slots *s);

#endif
