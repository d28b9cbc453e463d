/*
 * workers.c - reuse finished threads instead of starting one per job.
 *
 * DESIGN: workers_run() hands a job straight to a parked thread when one is
 * waiting, and starts a new thread only when none is.  A thread that has
 * finished a job parks: it puts itself on w->parked and waits on its own
 * semaphore for WORKER_IDLE_MS.  workers_run() takes the thread parked
 * last (its stack and pipe are the warmest), gives it the job and posts its
 * semaphore: one wake-up, and no lock for the woken thread to fight over.
 * A thread that waited WORKER_IDLE_MS for nothing moves itself to w->gone
 * and ends: the next workers_run() that starts a thread joins it, and
 * workers_stop() joins every thread at shutdown, so none is still ending
 * while the process exits.  A job runs from start to end on one thread.
 * Why: a new thread costs a clone(), an mmap() of its stack and their
 * undoing; a parked one costs a wake-up.
 */
#define _GNU_SOURCE /* sem_clockwait() */
#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "harbor.h"
#include "workers.h"

/* One thread of the pool. */
struct worker {
    struct workers *w;
    struct job *job;              /* the job it runs next; NULL: end */
    sem_t go;                     /* posted when job is set */
    int parked;                   /* on w->parked; guarded by w->lock */
    pthread_t tid;                /* joined by whoever takes it off gone */
    struct worker *prev, *next;   /* on w->all, or next on w->gone */
    struct worker *pprev, *pnext; /* on w->parked */
};

int
workers_init(struct workers *w)
{
    memset(w, 0, sizeof(*w));
    if ((errno = pthread_mutex_init(&w->lock, NULL)) != 0)
        return -1;
    return 0;
}

/* Caller holds w->lock. */
static void
worker_unlink(struct workers *w, struct worker *k)
{
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        w->all = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
}

/* Take k off w->parked.  Caller holds w->lock. */
static void
worker_unpark(struct workers *w, struct worker *k)
{
    if (k->pprev != NULL)
        k->pprev->pnext = k->pnext;
    else
        w->parked = k->pnext;
    if (k->pnext != NULL)
        k->pnext->pprev = k->pprev;
    k->parked = 0;
}

/* Join and free every worker on the chain k (taken off w->gone). */
static void
workers_join(struct worker *k)
{
    struct worker *next;

    for (; k != NULL; k = next) {
        next = k->next;
        pthread_join(k->tid, NULL);
        sem_destroy(&k->go);
        free(k);
    }
}

/*
 * Wait on k's semaphore until it is posted or deadline passes (NULL: no
 * limit, as for cond_wait_until()): 0, or -1 with ETIMEDOUT.
 * sem_clockwait() and not sem_timedwait(): a deadline on CLOCK_MONOTONIC
 * does not move when someone sets the clock (clock.c).
 */
static int
worker_wait(struct worker *k, const struct timespec *deadline)
{
    int rc;

    do
        rc = deadline != NULL ? sem_clockwait(&k->go, CLOCK_MONOTONIC, deadline)
                              : sem_wait(&k->go);
    while (rc < 0 && errno == EINTR);
    return rc;
}

/* Move k to w->gone, to be joined, and end.  Caller holds w->lock. */
static void *
worker_leave(struct workers *w, struct worker *k)
{
    worker_unlink(w, k);
    k->next = w->gone;
    w->gone = k;
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void *
worker_main(void *arg)
{
    struct worker *k = arg;
    struct workers *w = k->w;
    struct job *j = k->job;
    struct timespec ts;
    int rc;

    for (;;) {
        rc = j->fn(j->arg); /* may free j: do not touch it after this */
        pthread_mutex_lock(&w->lock);
        if (w->stop) {
            pthread_mutex_unlock(&w->lock);
            return NULL; /* workers_stop() joins it */
        }
        if (rc != 0)
            return worker_leave(w, k);
        k->job = NULL;
        k->parked = 1;
        k->pprev = NULL;
        k->pnext = w->parked;
        if (k->pnext != NULL)
            k->pnext->pprev = k;
        w->parked = k;
        pthread_mutex_unlock(&w->lock);

        rc = worker_wait(k, deadline_in(&ts, WORKER_IDLE_MS));
        pthread_mutex_lock(&w->lock);
        if (rc < 0 && k->parked) {
            /* Parked WORKER_IDLE_MS for nothing: leave. */
            worker_unpark(w, k);
            return worker_leave(w, k);
        }
        pthread_mutex_unlock(&w->lock);
        if (rc < 0) /* taken just as the wait ran out: a post is coming */
            worker_wait(k, NULL);
        if ((j = k->job) == NULL)
            return NULL; /* workers_stop() */
    }
}

int
workers_run(struct workers *w, struct job *j)
{
    pthread_attr_t attr;
    struct worker *k, *gone;
    int err;

    pthread_mutex_lock(&w->lock);
    if ((k = w->parked) != NULL) {
        worker_unpark(w, k);
        k->job = j;
        pthread_mutex_unlock(&w->lock);
        /* Taken off parked, k waits for this post whatever its clock
         * says, so the post can come after the unlock. */
        sem_post(&k->go);
        return 0;
    }
    gone = w->gone;
    w->gone = NULL;
    pthread_mutex_unlock(&w->lock);

    /* A new thread, started outside the lock: a clone() and an mmap()
     * must not hold up the hand-offs and the parked threads.  The threads
     * that left are joined here too, off the hand-off path. */
    workers_join(gone);
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return -1;
    if (sem_init(&k->go, 0, 0) < 0) {
        free(k);
        return -1;
    }
    k->w = w;
    k->job = j;
    pthread_mutex_lock(&w->lock);
    k->next = w->all;
    if (k->next != NULL)
        k->next->prev = k;
    w->all = k;
    pthread_mutex_unlock(&w->lock);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, CONN_STACK_SIZE);
    err = pthread_create(&k->tid, &attr, worker_main, k);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        pthread_mutex_lock(&w->lock);
        worker_unlink(w, k);
        pthread_mutex_unlock(&w->lock);
        sem_destroy(&k->go);
        free(k);
        errno = err;
        return -1;
    }
    return 0;
}

void
workers_stop(struct workers *w)
{
    struct worker *all, *gone, *k;

    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    while ((k = w->parked) != NULL) {
        worker_unpark(w, k);
        k->job = NULL; /* wakes to end */
        sem_post(&k->go);
    }
    all = w->all;
    gone = w->gone;
    w->all = w->gone = NULL;
    pthread_mutex_unlock(&w->lock);
    workers_join(all);
    workers_join(gone);
}
