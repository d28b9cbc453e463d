/*
 * strategy.c - round-robin behind the strategy interface.
 *
 * The turn is one atomic counter: every pick takes the next number, and
 * the pool maps it onto a backend with a modulo.  Two threads picking at
 * once get different numbers without a lock, so the split is exact however
 * many connections start together.
 */
#include "strategy.h"

static struct backend *
rr_pick(struct strategy *s, struct pool *p)
{
    return pool_next(p, atomic_fetch_add(&s->next, 1));
}

/* Round-robin does not care how long a connection lasts. */
static void
rr_ignore(struct strategy *s, struct backend *b)
{
    (void)s;
    (void)b;
}

/* A changed pool restarts the turn at its first backend. */
static void
rr_rebuild(struct strategy *s, struct pool *p)
{
    (void)p;
    atomic_store(&s->next, 0);
}

static void
rr_destroy(struct strategy *s)
{
    (void)s;
}

void
rr_init(struct strategy *s)
{
    s->name = "rr";
    s->pick = rr_pick;
    s->start = rr_ignore;
    s->done = rr_ignore;
    s->rebuild = rr_rebuild;
    s->destroy = rr_destroy;
    atomic_init(&s->next, 0);
    s->state = NULL;
}
