/*
 * strategy.c - round-robin and least-connections behind one interface.
 *
 * Both read the pool under its read lock and hand back a held backend, so a
 * reload may remove it a moment later without freeing it under the caller.
 * Both count live connections per backend in start/done: least needs the
 * count to choose, and round-robin keeps it too, so that whatever reports
 * per-backend load sees the same number whichever strategy runs.
 */
#include <errno.h>

#include "strategy.h"

const char *const strategy_names[] = {"rr", "least", NULL};

/* Round-robin: one atomic increment and a modulo (in pool_next). */
static struct backend *
rr_pick(struct strategy *s, struct pool *p)
{
    struct backend *b = NULL;

    pthread_rwlock_rdlock(&p->lock);
    if (p->n > 0)
        b = pool_next(p, atomic_fetch_add(&s->next, 1) % p->n);
    if (b != NULL)
        backend_hold(b);
    pthread_rwlock_unlock(&p->lock);
    return b;
}

/*
 * Least-connections: the up backend with the fewest live connections.  The
 * scan starts where round-robin would, and only a strictly smaller count
 * wins, so equal backends take turns instead of the first one taking all.
 * The counts move while we look; a pick that is off by one connection under
 * a race is still a good pick, and no lock is needed to make it.
 */
static struct backend *
least_pick(struct strategy *s, struct pool *p)
{
    struct backend *best = NULL;
    size_t start, k;

    pthread_rwlock_rdlock(&p->lock);
    if (p->n > 0) {
        start = atomic_fetch_add(&s->next, 1) % p->n;
        for (k = 0; k < p->n; k++) {
            struct backend *b = p->v[(start + k) % p->n];
            if (!atomic_load(&b->up))
                continue;
            if (best == NULL ||
                atomic_load(&b->inflight) < atomic_load(&best->inflight))
                best = b;
        }
    }
    if (best != NULL)
        backend_hold(best);
    pthread_rwlock_unlock(&p->lock);
    return best;
}

static void
count_start(struct strategy *s, struct backend *b)
{
    (void)s;
    atomic_fetch_add(&b->inflight, 1);
    atomic_fetch_add(&b->connections, 1);
}

static void
count_done(struct strategy *s, struct backend *b)
{
    (void)s;
    atomic_fetch_sub(&b->inflight, 1);
}

/*
 * Neither strategy keeps a table derived from the pool, so a change only
 * restarts the turn order at the first backend.
 */
static void
cursor_reset(struct strategy *s, struct pool *p)
{
    (void)p;
    atomic_store(&s->next, 0);
}

int
strategy_init(struct strategy *s, int which)
{
    switch (which) {
    case 0:
        s->pick = rr_pick;
        break;
    case 1:
        s->pick = least_pick;
        break;
    default:
        errno = EINVAL;
        return -1;
    }
    s->name = strategy_names[which];
    s->start = count_start;
    s->done = count_done;
    s->rebuild = cursor_reset;
    atomic_init(&s->next, 0);
    return 0;
}
