/*
 * slots.h - a counting semaphore: at most n connections hold a slot, and
 * a count of the clients let in at all (slots.c).
 */
#ifndef HARBOR_SLOTS_H
#define HARBOR_SLOTS_H

#include <pthread.h>

struct slots {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t freed; /* signalled when a slot comes back */
    pthread_cond_t seat;  /* signalled when a client leaves */
    unsigned free;        /* slots not held */
    unsigned seats;       /* clients that may still be let in */
    int closed;           /* shutting down: waiters give up */
};

/* n slots, all free, and seats (at least n).  0, or -1 with errno. */
int slots_init(struct slots *s, unsigned n, unsigned seats);
/*
 * Take a slot, waiting up to timeout_ms for one (0: as long as it takes).
 * 0, or -1 with errno ETIMEDOUT, or ECANCELED after slots_close().
 */
int slots_acquire(struct slots *s, int timeout_ms);
void slots_release(struct slots *s);
/*
 * The accept loop's wait, before each accept(): at most seats clients are
 * in at once, with a slot or waiting for one, so that the descriptors they
 * hold have a bound (inflight_fit()).  The rest wait, untouched, in the
 * kernel's listen queue.  slots_leave() when a client that was let in is
 * gone.
 */
void slots_admit(struct slots *s);
void slots_leave(struct slots *s);
/* Shutting down: wake every waiter, and make them give up. */
void slots_close(struct slots *s);

#endif
