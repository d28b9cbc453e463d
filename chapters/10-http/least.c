/*
 * least.c - least-connections: pick the backend with the fewest live
 * connections, ties taken in turn.
 *
 * DESIGN: a strategy is five function pointers (strategy.h), so this file
 * is the whole lesson: neither the pool nor the connection code changes.
 * The counts are the strategy's own state, a table of rows (backend, live
 * connections) under one mutex: start and done move a row's count, and
 * rebuild fits the table to the set picks come from.  A backend that left
 * the set keeps its row while it still has connections, so that their
 * done() finds it; a later rebuild drops the row once it has none.  Rows
 * hold their backend, so a pointer in the table is never a dangling one.
 *
 * The scans are linear, and nested (each backend of the set, then its
 * row): a balancer has a handful of backends, and a few dozen compares
 * under one lock cost less than the hashing that would replace them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "least.h"

struct row {
    struct backend *b; /* held */
    int live;          /* connections started and not yet done */
};

struct least {
    pthread_mutex_t lock; /* guards everything below */
    struct row *v;
    size_t n, cap;
};

/* b's row, or NULL.  Caller holds l->lock. */
static struct row *
row_of(struct least *l, const struct backend *b)
{
    size_t i;

    for (i = 0; i < l->n; i++)
        if (l->v[i].b == b)
            return &l->v[i];
    return NULL;
}

/* A new row for b, at 0; NULL if out of memory.  Caller holds l->lock. */
static struct row *
row_add(struct least *l, struct backend *b)
{
    struct row *v;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        if ((v = realloc(l->v, cap * sizeof(*v))) == NULL)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    backend_hold(b);
    l->v[l->n] = (struct row){b, 0};
    return &l->v[l->n++];
}

/* b's live connections (0 without a row).  Caller holds l->lock. */
static int
live_of(struct least *l, const struct backend *b)
{
    struct row *r = row_of(l, b);

    return r != NULL ? r->live : 0;
}

/*
 * Two passes under the lock, so the counts hold still: find the fewest
 * live connections and how many backends have that few, then take the
 * turn-th of those, so that equal backends take exact turns instead of the
 * first one taking all.  Lock order: the set's, then the table's (rebuild
 * does the same).
 */
static struct backend *
least_pick(struct strategy *s, struct pool *p)
{
    struct least *l = s->state;
    struct backend *best = NULL;
    size_t k, ties = 0, turn;
    int live, fewest = 0;

    pthread_rwlock_rdlock(&p->lock);
    pthread_mutex_lock(&l->lock);
    for (k = 0; k < p->n; k++) {
        live = live_of(l, p->v[k]);
        if (k == 0 || live < fewest) {
            fewest = live;
            ties = 0;
        }
        if (live == fewest)
            ties++;
    }
    if (ties > 0) {
        turn = atomic_fetch_add(&s->next, 1) % ties;
        for (k = 0; best == NULL; k++)
            if (live_of(l, p->v[k]) == fewest && turn-- == 0)
                best = p->v[k];
        backend_hold(best);
    }
    pthread_mutex_unlock(&l->lock);
    pthread_rwlock_unlock(&p->lock);
    return best;
}

static void
least_start(struct strategy *s, struct backend *b)
{
    struct least *l = s->state;
    struct row *r;

    pthread_mutex_lock(&l->lock);
    if ((r = row_of(l, b)) != NULL || (r = row_add(l, b)) != NULL)
        r->live++;
    pthread_mutex_unlock(&l->lock);
}

static void
least_done(struct strategy *s, struct backend *b)
{
    struct least *l = s->state;
    struct row *r;

    pthread_mutex_lock(&l->lock);
    if ((r = row_of(l, b)) != NULL && r->live > 0)
        r->live--;
    pthread_mutex_unlock(&l->lock);
}

/* A row for every backend of p; none for those gone from it and idle. */
static void
least_rebuild(struct strategy *s, struct pool *p)
{
    struct least *l = s->state;
    size_t i, k;

    pthread_rwlock_rdlock(&p->lock);
    pthread_mutex_lock(&l->lock);
    for (i = k = 0; i < l->n; i++) {
        if (l->v[i].live == 0 && !backend_in(p->v, p->n, l->v[i].b))
            backend_release(l->v[i].b);
        else
            l->v[k++] = l->v[i];
    }
    l->n = k;
    for (i = 0; i < p->n; i++)
        if (row_of(l, p->v[i]) == NULL)
            row_add(l, p->v[i]); /* out of memory: counted at its start */
    pthread_mutex_unlock(&l->lock);
    pthread_rwlock_unlock(&p->lock);
    atomic_store(&s->next, 0);
}

static void
least_destroy(struct strategy *s)
{
    struct least *l = s->state;
    size_t i;

    for (i = 0; i < l->n; i++)
        backend_release(l->v[i].b);
    free(l->v);
    pthread_mutex_destroy(&l->lock);
    free(l);
    s->state = NULL;
}

int
least_init(struct strategy *s)
{
    struct least *l;

    if ((l = calloc(1, sizeof(*l))) == NULL)
        return -1;
    if ((errno = pthread_mutex_init(&l->lock, NULL)) != 0) {
        free(l);
        return -1;
    }
    s->name = "least";
    s->pick = least_pick;
    s->start = least_start;
    s->done = least_done;
    s->rebuild = least_rebuild;
    s->destroy = least_destroy;
    atomic_init(&s->next, 0);
    s->state = l;
    return 0;
}
