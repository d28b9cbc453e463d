/*
 * pool.h - the backend pool: a set of backends Harbor may send a client to.
 *
 * Backends live in a slice guarded by a rwlock: picking a backend (every
 * connection) takes the lock for reading, changing the pool (a reload) for
 * writing.  A backend is reference counted, so a reload can drop it from the
 * pool while connections that already picked it finish with it, and one
 * backend can sit in more than one pool.  The pool knows nothing about
 * strategies or health: it is a set, and the next one in turn.
 */
#ifndef HARBOR_POOL_H
#define HARBOR_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "config.h"

struct backend {
    struct addr addr; /* set by backend_new(), never changed */
    atomic_int refs;  /* one per pool it is in, one per holder */
};

struct pool {
    pthread_rwlock_t lock; /* guards everything below */
    struct backend **v;    /* held, in the order added */
    size_t n, cap;
};

/* A new backend for a (resolved), held once by the caller; NULL (ENOMEM). */
struct backend *backend_new(const struct addr *a);
void backend_hold(struct backend *b);
void backend_release(struct backend *b);

/* Is b one of v[0..n-1]?  (Compare only backends you hold.) */
int backend_in(struct backend *const *v, size_t n, const struct backend *b);

int pool_init(struct pool *p);
void pool_destroy(struct pool *p);

/* Put b in the pool, which holds it; -1 with errno EEXIST if b->addr.text
 * is in already, ENOMEM if out of memory. */
int pool_add(struct pool *p, struct backend *b);
/* Take the backend named text out; -1 with errno ENOENT if absent. */
int pool_remove(struct pool *p, const char *text);
size_t pool_size(struct pool *p);

/* The backend at turn i (position i modulo the size), held; NULL if the
 * pool is empty. */
struct backend *pool_next(struct pool *p, size_t i);

/* A held copy of the slice: *v has *n held backends.  Release with
 * pool_snapshot_free().  0 or -1 (ENOMEM). */
int pool_snapshot(struct pool *p, struct backend ***v, size_t *n);
void pool_snapshot_free(struct backend **v, size_t n);

#endif
