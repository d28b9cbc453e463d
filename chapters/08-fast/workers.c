/*
 * workers.c - reuse finished threads instead of starting one per job.
 *
 * DESIGN: workers_run() hands a job to a parked thread when one is waiting,
 * and starts a new thread only when none is.  A thread that has finished a
 * job parks on a condition variable for WORKER_IDLE_MS, then moves itself
 * to w->gone and ends: the next workers_run() that starts a thread joins
 * it, and workers_stop() joins every thread at shutdown, so none is still
 * ending while the process exits.  A job runs from start to end on one
 * thread.  Why: a new thread costs a clone(), an mmap() of its stack and
 * their undoing; a parked one costs a wake-up.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "harbor.h"
#include "workers.h"

/* One thread of the pool. */
struct worker {
    struct workers *w;
    struct job *first;          /* the job it was started for */
    pthread_t tid;              /* joined by whoever takes it off gone */
    struct worker *prev, *next; /* on w->all, or next on w->gone */
};

int
workers_init(struct workers *w)
{
    memset(w, 0, sizeof(*w));
    w->tail = &w->head;
    if ((errno = pthread_mutex_init(&w->lock, NULL)) != 0 ||
        (errno = cond_init_monotonic(&w->wake)) != 0)
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

/* Join and free every worker on the chain k (taken off w->gone). */
static void
workers_join(struct worker *k)
{
    struct worker *next;

    for (; k != NULL; k = next) {
        next = k->next;
        pthread_join(k->tid, NULL);
        free(k);
    }
}

static void *
worker_main(void *arg)
{
    struct worker *k = arg;
    struct workers *w = k->w;
    struct job *j = k->first;
    struct timespec ts, *deadline;
    int err;

    for (;;) {
        j->fn(j->arg); /* may free j: do not touch it after this */
        pthread_mutex_lock(&w->lock);
        w->idle++;
        deadline = deadline_in(&ts, WORKER_IDLE_MS);
        err = 0;
        while (w->head == NULL && !w->stop && err == 0)
            err = cond_wait_until(&w->wake, &w->lock, deadline);
        w->idle--;
        if ((j = w->head) != NULL) {
            if ((w->head = j->next) == NULL)
                w->tail = &w->head;
            w->queued--;
        } else if (!w->stop) {
            /* Parked WORKER_IDLE_MS for nothing: leave, to be joined. */
            worker_unlink(w, k);
            k->next = w->gone;
            w->gone = k;
        }
        pthread_mutex_unlock(&w->lock);
        if (j == NULL)
            return NULL;
    }
}

/*
 * A job is handed over only while there are more parked threads than jobs
 * waiting, so each one queued has a thread that will take it.
 */
int
workers_run(struct workers *w, struct job *j)
{
    pthread_attr_t attr;
    struct worker *k, *gone;
    int err;

    j->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->idle > w->queued) {
        *w->tail = j;
        w->tail = &j->next;
        w->queued++;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
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
    k->w = w;
    k->first = j;
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
        free(k);
        errno = err;
        return -1;
    }
    return 0;
}

void
workers_stop(struct workers *w)
{
    struct worker *all, *gone;

    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    all = w->all;
    gone = w->gone;
    w->all = w->gone = NULL;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    workers_join(all);
    workers_join(gone);
}
