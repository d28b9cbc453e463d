/*
 * metrics.h - what Harbor counts as it runs, and the listener that shows
 * it to Prometheus (metrics.c).
 */
#ifndef HARBOR_METRICS_H
#define HARBOR_METRICS_H

#include <pthread.h>
#include <stdatomic.h>

#include "pool.h"

/* A scrape has this long to send its request, and to take the answer. */
#define METRICS_TIMEOUT_MS 1000
#define METRICS_HEAD_MAX   4096 /* a longer request head gets 431 */

/* Why a client connection ended in an error: harbor_connection_errors_total. */
enum conn_error {
    ERR_NO_BACKEND,    /* no backend was up */
    ERR_CONNECT,       /* every backend tried refused or did not answer */
    ERR_QUEUE_TIMEOUT, /* no in-flight slot within QUEUE_TIMEOUT_MS */
    ERR_IDLE_TIMEOUT,  /* no byte moved for IDLE_TIMEOUT_MS */
    ERR_RESET,         /* a reset, or a write to a peer that was gone */
    ERR_REASONS
};

/* harbor_connection_duration_seconds: the upper bounds, in seconds. */
#define DURATION_BUCKETS 12

/*
 * Durations, by the first bucket they fit (the last is +Inf); the scrape
 * makes them cumulative.  The sum is in microseconds.
 */
struct histogram {
    atomic_ullong n[DURATION_BUCKETS + 1];
    atomic_ullong us;
};

#define HTTP_CLASSES 5 /* status classes 1xx to 5xx */

struct series; /* one backend's numbers (metrics.c) */

/*
 * Every number is an atomic that the thread it happened on adds to: no
 * lock stands between a connection and its count.  The scrape only reads.
 */
struct metrics {
    atomic_ullong accepted;
    atomic_llong inflight; /* clients holding a slot (MAX_INFLIGHT) */
    atomic_ullong errors[ERR_REASONS];
    atomic_ullong bytes[2];    /* [0] up, [1] down; added as they move */
    struct histogram duration; /* connections that ended */
    struct histogram requests[HTTP_CLASSES]; /* MODE=http, by status */
    atomic_ullong upstream[2];         /* a request's backend connection: [0]
                                        * dialled, [1] reused from the idle pool */
    _Atomic(struct series *) backends; /* added to, never taken from */
    pthread_mutex_t lock; /* who adds or frees a series; not its readers */
    int fd;               /* the metrics listener; -1 when off */
    atomic_int stop;      /* metrics_stop(): the listener goes */
    pthread_t tid;
};

struct harbor;

/* 0, or -1 with errno. */
int metrics_init(struct metrics *m);
/* Keep numbers for b, which may be picked from now on. */
void metrics_track(struct metrics *m, struct backend *b);

/* One of the counters above grows by n. */
static inline void
metrics_add(atomic_ullong *c, unsigned long long n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* A connection that ended, after us microseconds. */
void metrics_observe(struct metrics *m, long long us);
/* A response with this status went to a client, us after its request. */
void metrics_request(struct metrics *m, int status, long long us);

/*
 * A client is bridged to b, and its bridge ended; a connect to b failed.
 * The caller holds b.
 */
void metrics_backend_start(struct metrics *m, const struct backend *b);
void metrics_backend_done(struct metrics *m, const struct backend *b);
void metrics_backend_failed(struct metrics *m, const struct backend *b);

/* Serve GET /metrics on the listener m->fd, on a thread of its own.
 * 0, or -1 with errno. */
int metrics_start(struct harbor *h);
/* Close the listener and wait for its thread. */
void metrics_stop(struct harbor *h);
/* Free what metrics_init() and metrics_track() made. */
void metrics_destroy(struct metrics *m);

#endif
