/*
 * workers.c - reuse finished threads instead of starting one per job.
 *
 * DESIGN: workers_run() hands a job to a parked thread when one is waiting,
 * and starts a new detached thread only when none is.  A thread that has
 * finished a job parks on a condition variable for WORKER_IDLE_MS; if no
 * job comes it ends, so a quiet balancer goes back to no spare threads.
 * A job runs from start to end on one thread, so a connection still owns
 * its threads while it lives.  Why: a new thread costs a clone(), an mmap()
 * of its stack with a guard page, and their undoing when it ends; a parked
 * thread costs one mutex and one wake-up.
 */
#include <errno.h>

#include "harbor.h"

int
workers_init(struct workers *w)
{
    int err;

    w->head = NULL;
    w->tail = &w->head;
    w->queued = w->idle = 0;
    if ((err = pthread_mutex_init(&w->lock, NULL)) != 0 ||
        (err = cond_init_monotonic(&w->wake)) != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

static void *
worker_main(void *arg)
{
    struct job *j = arg;
    struct workers *w = j->w;
    struct timespec deadline;
    int err;

    for (;;) {
        j->fn(j->arg); /* may free j: do not touch it after this */
        pthread_mutex_lock(&w->lock);
        w->idle++;
        deadline_in(&deadline, WORKER_IDLE_MS);
        err = 0;
        while (w->head == NULL && err == 0)
            err = pthread_cond_timedwait(&w->wake, &w->lock, &deadline);
        w->idle--;
        if ((j = w->head) != NULL) {
            if ((w->head = j->next) == NULL)
                w->tail = &w->head;
            w->queued--;
        }
        pthread_mutex_unlock(&w->lock);
        if (j == NULL)
            return NULL; /* parked WORKER_IDLE_MS for nothing: end */
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
    pthread_t tid;
    int err;

    j->w = w;
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

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, CONN_STACK_SIZE);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    err = pthread_create(&tid, &attr, worker_main, j);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}
