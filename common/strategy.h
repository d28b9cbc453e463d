/*
 * strategy.h - how Harbor picks a backend for the next client.
 *
 * A strategy is four function pointers, so a chapter can swap the policy
 * without touching the code that calls it:
 *   pick     a held, up backend for a new connection, or NULL if none is up
 *   start    the connection to b begins (b->inflight goes up)
 *   done     it ended, on every exit path, exactly once (inflight goes down)
 *   rebuild  the pool changed; forget what no longer fits
 * Round-robin is one atomic increment and a modulo.  Least-connections picks
 * the up backend with the fewest live connections, ties in round-robin order.
 */
#ifndef HARBOR_STRATEGY_H
#define HARBOR_STRATEGY_H

#include <stdatomic.h>
#include <stddef.h>

#include "pool.h"

struct strategy {
    const char *name;
    struct backend *(*pick)(struct strategy *s, struct pool *p);
    void (*start)(struct strategy *s, struct backend *b);
    void (*done)(struct strategy *s, struct backend *b);
    void (*rebuild)(struct strategy *s, struct pool *p);
    atomic_size_t next; /* round-robin cursor, also breaks least's ties */
};

/* NULL-terminated, in the order STRATEGY accepts them: "rr", "least". */
extern const char *const strategy_names[];

/* Set s up as strategy_names[which].  0, or -1 (EINVAL) if out of range. */
int strategy_init(struct strategy *s, int which);

#endif
