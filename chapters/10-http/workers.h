/* workers.h - reuse finished threads (workers.c). */
#ifndef HARBOR_WORKERS_H
#define HARBOR_WORKERS_H

#include <pthread.h>

/* A parked worker thread waits this long for a job, then ends. */
#define WORKER_IDLE_MS 10000

/*
 * A job for a worker thread: fn(arg), from start to end on one thread.
 * fn returns 0 for its thread to park, nonzero for it to end.  The same
 * job may run on several threads at once.
 */
struct job {
    int (*fn)(void *arg);
    void *arg;
};

struct worker;

/* Parked threads, and every thread of the pool. */
struct workers {
    pthread_mutex_t lock;  /* guards everything below */
    struct worker *parked; /* waiting for a job; the last parked first */
    struct worker *all;    /* every thread still serving or parked */
    struct worker *gone;   /* threads that left, not yet joined */
    int stop;              /* shutting down: threads end, none parks */
};

/* 0, or -1 with errno. */
int workers_init(struct workers *w);
/* Run j on a parked thread, or a new one.  0, or -1 with errno. */
int workers_run(struct workers *w, struct job *j);
/* Shutdown, once every job has ended: wake the parked threads, join all. */
void workers_stop(struct workers *w);

#endif
