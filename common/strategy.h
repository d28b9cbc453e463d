/*
 * strategy.h - how Harbor picks a backend for the next client.
 *
 * A strategy is a few function pointers, so a chapter can bring a new
 * policy without touching the pool or the code that calls it:
 *   pick     a held backend of p for a new connection, or NULL if p is empty
 *   start    a connection to b begins
 *   done     it ended: on every exit path, exactly once after start
 *   rebuild  p, the set picks come from, changed: forget what no longer fits
 *   destroy  at exit: let go of whatever the strategy keeps
 * Round-robin, here, is one atomic increment and a modulo, and keeps nothing
 * else.  A strategy that keeps per-backend state (least-connections, in
 * chapter 07) hangs it on state and updates it in start, done and rebuild.
 */
#ifndef HARBOR_STRATEGY_H
#define HARBOR_STRATEGY_H

#include <stdatomic.h>

#include "pool.h"

struct strategy {
    const char *name;
    struct backend *(*pick)(struct strategy *s, struct pool *p);
    void (*start)(struct strategy *s, struct backend *b);
    void (*done)(struct strategy *s, struct backend *b);
    void (*rebuild)(struct strategy *s, struct pool *p);
    void (*destroy)(struct strategy *s);
    atomic_size_t next; /* the round-robin cursor */
    void *state;        /* a strategy's own; round-robin has none */
};

/* Make s round-robin. */
void rr_init(struct strategy *s);

#endif
