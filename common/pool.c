/*
 * pool.c - the backend pool: a slice of reference-counted backends under a
 * rwlock.
 *
 * Readers (a connection picking a backend) far outnumber writers (a reload),
 * so a rwlock lets picks run side by side.  The lock is held only for a few
 * loads and a reference count bump, never across I/O.  The pool holds one
 * reference to each backend in it; whoever picked it holds another, so
 * removing a backend never frees it under a live connection.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

struct backend *
backend_new(const struct addr *a)
{
    struct backend *b;

    if ((b = calloc(1, sizeof(*b))) == NULL)
        return NULL;
    b->addr = *a;
    atomic_init(&b->refs, 1); /* the caller's */
    return b;
}

void
backend_hold(struct backend *b)
{
    atomic_fetch_add(&b->refs, 1);
}

void
backend_release(struct backend *b)
{
    if (atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

int
backend_in(struct backend *const *v, size_t n, const struct backend *b)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (v[i] == b)
            return 1;
    return 0;
}

int
pool_init(struct pool *p)
{
    memset(p, 0, sizeof(*p));
    errno = pthread_rwlock_init(&p->lock, NULL);
    return errno == 0 ? 0 : -1;
}

void
pool_destroy(struct pool *p)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        backend_release(p->v[i]);
    free(p->v);
    pthread_rwlock_destroy(&p->lock);
}

/* Caller holds p->lock. */
static ssize_t
pool_find(struct pool *p, const char *text)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        if (strcmp(p->v[i]->addr.text, text) == 0)
            return (ssize_t)i;
    return -1;
}

int
pool_add(struct pool *p, struct backend *b)
{
    struct backend **v;
    int rc = -1;

    pthread_rwlock_wrlock(&p->lock);
    if (pool_find(p, b->addr.text) >= 0) {
        errno = EEXIST;
        goto out;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        if ((v = realloc(p->v, cap * sizeof(*v))) == NULL)
            goto out;
        p->v = v;
        p->cap = cap;
    }
    backend_hold(b); /* the pool's reference */
    p->v[p->n++] = b;
    rc = 0;
out:
    pthread_rwlock_unlock(&p->lock);
    return rc;
}

int
pool_remove(struct pool *p, const char *text)
{
    struct backend *b = NULL;
    ssize_t i;

    pthread_rwlock_wrlock(&p->lock);
    if ((i = pool_find(p, text)) >= 0) {
        b = p->v[i];
        memmove(&p->v[i], &p->v[i + 1], (p->n - (size_t)i - 1) * sizeof(b));
        p->n--;
    }
    pthread_rwlock_unlock(&p->lock);
    if (b == NULL) {
        errno = ENOENT;
        return -1;
    }
    backend_release(b); /* freed now, or when its last holder lets go */
    return 0;
}

size_t
pool_size(struct pool *p)
{
    size_t n;

    pthread_rwlock_rdlock(&p->lock);
    n = p->n;
    pthread_rwlock_unlock(&p->lock);
    return n;
}

struct backend *
pool_next(struct pool *p, size_t i)
{
    struct backend *b = NULL;

    pthread_rwlock_rdlock(&p->lock);
    if (p->n > 0) {
        b = p->v[i % p->n];
        backend_hold(b);
    }
    pthread_rwlock_unlock(&p->lock);
    return b;
}

int
pool_snapshot(struct pool *p, struct backend ***v, size_t *n)
{
    size_t i;
    int rc = 0;

    pthread_rwlock_rdlock(&p->lock);
    *n = p->n;
    *v = calloc(p->n ? p->n : 1, sizeof(**v));
    if (*v == NULL) {
        *n = 0; /* nothing to free */
        rc = -1;
    } else {
        for (i = 0; i < p->n; i++) {
            backend_hold(p->v[i]);
            (*v)[i] = p->v[i];
        }
    }
    pthread_rwlock_unlock(&p->lock);
    return rc;
}

void
pool_snapshot_free(struct backend **v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        backend_release(v[i]);
    free(v);
}
