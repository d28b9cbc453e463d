/*
 * pool.h - the backend pool: every backend Harbor may send a client to.
 *
 * Backends live in a slice guarded by a rwlock: picking a backend (every
 * connection) takes the lock for reading, changing the pool (a reload) for
 * writing.  A backend is reference counted, so a reload can drop it from the
 * pool while connections that already picked it finish with it.  The pool
 * knows nothing about strategies; a strategy reads the pool under its lock.
 */
#ifndef HARBOR_POOL_H
#define HARBOR_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "config.h"
#include "health.h"

struct backend {
    struct addr addr;          /* set by pool_add, never changed */
    atomic_int refs;           /* one for the pool, one per holder */
    atomic_int up;             /* 1 unless health checks say otherwise */
    atomic_int inflight;       /* live connections: strategy start/done */
    atomic_ullong connections; /* connections started, ever */
    atomic_ullong failures;    /* failed connects, ever */
    pthread_mutex_t lock;      /* guards health */
    struct health health;      /* the rise/fall state behind up */
};

struct pool {
    pthread_rwlock_t lock; /* guards everything below */
    struct backend **v;    /* in the order added */
    size_t n, cap;
};

int pool_init(struct pool *p);
void pool_destroy(struct pool *p);

/* Add a backend for a (resolved); -1 with errno EEXIST if a->text is in. */
int pool_add(struct pool *p, const struct addr *a);
/* Remove the backend named text; -1 with errno ENOENT if absent. */
int pool_remove(struct pool *p, const char *text);
size_t pool_size(struct pool *p);

/*
 * The next up backend at or after position i (wrapping around), or NULL if
 * none is up.  Caller holds p->lock for reading and must backend_hold() the
 * result before unlocking if it keeps it.
 */
struct backend *pool_next(struct pool *p, size_t i);

/* A held copy of the slice: *v has *n held backends.  Release with
 * pool_snapshot_free().  0 or -1 (ENOMEM). */
int pool_snapshot(struct pool *p, struct backend ***v, size_t *n);
void pool_snapshot_free(struct backend **v, size_t n);

/* Is b one of v[0..n-1]?  (Compare only backends you hold.) */
int backend_in(struct backend *const *v, size_t n, const struct backend *b);

void backend_hold(struct backend *b);
void backend_release(struct backend *b);

#endif
