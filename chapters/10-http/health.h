/* health.h - health checks, and the backends that are up (health.c). */
#ifndef HARBOR_HEALTH_H
#define HARBOR_HEALTH_H

#include <pthread.h>

#include "pool.h"

struct harbor;
struct checker;

enum { CHECK_TCP, CHECK_HTTP, CHECK_OFF }; /* HEALTH_CHECK, in order */

struct health {
    pthread_mutex_t lock; /* guards everything below, and every checker */
    pthread_cond_t wake;  /* broadcast to stop checkers */
    struct checker *list; /* one per backend in the pool */
    struct pool up;       /* the backends that are up: what is picked */
};

int health_init(struct health *hl);
/* Checkers for h->pool as it is (none: stop_all); rebuild the strategy. */
void health_sync(struct harbor *h, int stop_all);
/* One result for b, from its checker or a failed connect. */
void health_report(struct harbor *h, struct backend *b, int ok,
                   const char *why);

#endif
