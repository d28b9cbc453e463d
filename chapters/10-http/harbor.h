/*
 * harbor.h - the state every thread of the balancer shares.
 *
 * One struct carries the configuration and the pool to every thread, passed
 * explicitly: no globals, so each thread's inputs are in plain sight.  Each
 * part of the balancer has its own file and header; this one only ties them
 * together.
 */
#ifndef HARBOR_H
#define HARBOR_H

#include <stdatomic.h>

#include "config.h"
#include "conns.h"
#include "health.h"
#include "metrics.h"
#include "pool.h"
#include "reload.h"
#include "slots.h"
#include "strategy.h"
#include "upool.h"
#include "workers.h"

/*
 * Threads get a small, explicit stack.  The default is 8 MiB of address
 * space per thread (ulimit -s): a thousand connections, two threads each,
 * would reserve 16 GiB.  A connection thread needs a few frames (its bytes
 * go through a pipe, not its stack); 64 KiB is room to spare (and for the
 * sanitizers).
 */
#define CONN_STACK_SIZE (64 * 1024)

/*
 * Descriptors, for chapter 03's budget: a client let in holds at most
 * CONN_FDS, its own and its backend's, whether in flight, waiting for a
 * slot or ending; the process keeps FDS_SPARE of its own (stdio, the
 * listener, and a few to spare).  Here every thread that has run a pump
 * keeps a pipe (bridge.c), and a client has up to two threads.
 */
#define CONN_FDS  6
#define FDS_SPARE 32

#define RETRIES_MAX 16 /* a client waits for at most 17 connects */

enum mode { MODE_TCP, MODE_HTTP }; /* MODE, in the order of its names */

struct harbor {
    struct addr listen;       /* LISTEN */
    struct pool pool;         /* BACKENDS */
    struct strategy strategy; /* STRATEGY: rr or least */
    int connect_timeout_ms;   /* CONNECT_TIMEOUT_MS; 0: the kernel's */
    int idle_timeout_ms;      /* IDLE_TIMEOUT_MS; 0: never */
    int max_inflight;         /* MAX_INFLIGHT */
    int queue_timeout_ms;     /* QUEUE_TIMEOUT_MS; 0: no limit */
    struct slots slots;       /* MAX_INFLIGHT of them */
    int drain_timeout_ms;     /* DRAIN_TIMEOUT_MS; 0: no limit */
    int lfd;                  /* the listener, shut down on SIGTERM */
    atomic_int stopping;      /* set on the first SIGTERM or SIGINT */
    struct conns conns;       /* every live connection */
    char *backends_file;      /* BACKENDS_FILE; NULL: BACKENDS is used */
    int reload_interval_ms;   /* RELOAD_INTERVAL_MS; 0: on SIGHUP only */
    struct reload reload;
    int health_check;        /* HEALTH_CHECK: CHECK_TCP, _HTTP or _OFF */
    const char *health_path; /* HEALTH_PATH */
    int health_interval_ms;  /* HEALTH_INTERVAL_MS */
    int health_timeout_ms;   /* HEALTH_TIMEOUT_MS */
    int health_rise;         /* HEALTH_RISE */
    int health_fall;         /* HEALTH_FALL */
    int retries;             /* RETRIES: more backends to try */
    struct health health;    /* checkers, and the backends that are up */
    struct workers workers;  /* threads for connections and pumps */
    struct job accept_job;   /* a turn at the listener (conn.c) */
    pthread_mutex_t accept_lock;
    pthread_cond_t accept_none; /* signalled when accepting drops to 0 */
    int accepting; /* threads in accept(), or on their way; accept_lock */
    struct addr metrics_listen; /* METRICS_LISTEN, unless off */
    int metrics_on;             /* 0: METRICS_LISTEN=off */
    struct metrics metrics;     /* what is counted, and its listener */
    enum mode mode;             /* MODE: bytes, or requests */
    int max_header_bytes;       /* MAX_HEADER_BYTES: a request head */
    int request_timeout_ms;     /* REQUEST_TIMEOUT_MS; 0: no limit */
    int response_timeout_ms;    /* RESPONSE_TIMEOUT_MS; 0: no limit */
    struct upool upool;         /* UPSTREAM_IDLE_MAX, _TIMEOUT_MS */
};

#endif
