/*
 * workers.c - reuse finished threads instead of starting one per job.
 *
 * DESIGN: workers_run() hands a job to a parked thread when one is waiting,
 * and starts a new thread only when none is.  A thread that has finished a
 * job parks on a condition variable for WORKER_IDLE_MS; if no job comes it
 * detaches itself and ends, so a quiet balancer goes back to no spare
 * threads.  At shutdown workers_stop() wakes the parked ones and joins
 * them, so that none is still ending while the process exits.  A job runs
 * from start to end on one thread: a connection still owns its threads
 * while it lives.  Why: a new thread costs a clone(), an mmap() of its
 * stack with a guard page, and their undoing; a parked one costs a wake-up.
 */
#include <errno.h>
#include <stdlib.h>

#include "harbor.h"

/* One thread of the pool. */
struct worker {
    struct workers *w;
    struct job *first;          /* the job it was started for */
    pthread_t tid;              /* read by workers_stop() only */
    struct worker *prev, *next; /* on w->all; guarded by w->lock */
};

int
workers_init(struct workers *w)
{
    int err;

    w->head = NULL;
    w->tail = &w->head;
    w->all = NULL;
    w->queued = w->idle = w->stop = 0;
    if ((err = pthread_mutex_init(&w->lock, NULL)) != 0 ||
        (err = cond_init_monotonic(&w->wake)) != 0) {
        errno = err;
        return -1;
    }
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

static void *
worker_main(void *arg)
{
    struct worker *k = arg;
    struct workers *w = k->w;
    struct job *j = k->first;
    struct timespec deadline;
    int err;

    for (;;) {
        j->fn(j->arg); /* may free j: do not touch it after this */
        pthread_mutex_lock(&w->lock);
        w->idle++;
        deadline_in(&deadline, WORKER_IDLE_MS);
        err = 0;
        while (w->head == NULL && !w->stop && err == 0)
            err = pthread_cond_timedwait(&w->wake, &w->lock, &deadline);
        w->idle--;
        if ((j = w->head) != NULL) {
            if ((w->head = j->next) == NULL)
                w->tail = &w->head;
            w->queued--;
        } else if (!w->stop) {
            /* Parked WORKER_IDLE_MS for nothing: leave, and let nobody
             * wait to join us. */
            worker_unlink(w, k);
            pthread_detach(pthread_self());
            free(k);
        }
        pthread_mutex_unlock(&w->lock);
        if (j == NULL)
            return NULL;
    }
}

/*
 * Run j->fn(j->arg) on a parked thread, or on a new one.  A job is handed
 * over only while there are more parked threads than jobs waiting, so each
 * one queued has a thread that will take it.  0, or -1 with errno.
 */
int
workers_run(struct workers *w, struct job *j)
{
    pthread_attr_t attr;
    struct worker *k;
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
    pthread_mutex_unlock(&w->lock);

    /* A new thread, started outside the lock: a clone() and an mmap()
     * must not hold up the hand-offs and the parked threads. */
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

/* Shutdown, once every job has ended: wake the parked threads and join
 * them all. */
void
workers_stop(struct workers *w)
{
    struct worker *k, *all;

    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    all = w->all;
    w->all = NULL;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    while ((k = all) != NULL) {
        all = k->next;
        pthread_join(k->tid, NULL);
        free(k);
    }
}
