/*
 * harbor.h - what the parts of chapter 01 share.
 *
 * One struct carries the configuration and the pool to every thread, passed
 * explicitly: no globals, so each thread's inputs are in plain sight.
 */
#ifndef HARBOR_H
#define HARBOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "pool.h"
#include "strategy.h"

/*
 * Threads get a small, explicit stack.  The default is 8 MiB of address
 * space per thread (ulimit -s): a thousand connections, two threads each,
 * would reserve 16 GiB.  A connection thread needs its 16 KiB copy buffer
 * and a few frames; 64 KiB is room to spare (and for the sanitizers).
 */
#define CONN_STACK_SIZE (64 * 1024)
#define BRIDGE_BUF_SIZE (16 * 1024)

/* A counting semaphore (slots.c): how many more connections may start. */
struct slots {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t freed; /* signalled when a slot comes back */
    unsigned free;
    int closed; /* shutting down: waiters give up */
};

/*
 * Every live connection (conn.c), so that a shutdown can count them, wait
 * for them, and cut the ones still there when the drain deadline passes.
 */
struct conn;
struct conns {
    pthread_mutex_t lock;   /* guards everything below */
    pthread_cond_t changed; /* broadcast when one ends, and on hurry */
    struct conn *head;      /* doubly linked through conn->prev, next */
    int n;
    int hurry; /* a second signal: stop waiting for the drain */
    int cut;   /* shut down every socket, even those dialled from now on */
};

struct harbor {
    struct addr listen;       /* LISTEN */
    struct pool pool;         /* BACKENDS */
    struct strategy strategy; /* round-robin */
    int connect_timeout_ms;   /* CONNECT_TIMEOUT_MS; 0: the kernel's */
    int idle_timeout_ms;      /* IDLE_TIMEOUT_MS; 0: never */
    int max_inflight;         /* MAX_INFLIGHT */
    int queue_timeout_ms;     /* QUEUE_TIMEOUT_MS; 0: no limit */
    struct slots slots;       /* MAX_INFLIGHT of them */
    int drain_timeout_ms;     /* DRAIN_TIMEOUT_MS; 0: no limit */
    int lfd;                  /* the listener, shut down on SIGTERM */
    atomic_int stopping;      /* set on the first SIGTERM or SIGINT */
    struct conns conns;       /* every live connection */
};

/* What a bridge did: bytes each way, and why it ended. */
struct bridge_stats {
    unsigned long long up;   /* client to backend */
    unsigned long long down; /* backend to client */
    int err; /* 0 for EOF both ways, ETIMEDOUT when idle, else the errno */
};

struct timespec *deadline_in(struct timespec *ts, int ms);
int cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock,
                    const struct timespec *deadline);
int cond_init_monotonic(pthread_cond_t *cond);
int slots_init(struct slots *s, unsigned n);
int slots_acquire(struct slots *s, int timeout_ms);
void slots_release(struct slots *s);
void slots_close(struct slots *s);

int conns_init(struct conns *l);
int conns_live(struct harbor *h);
int conns_drain(struct harbor *h, int timeout_ms);
void conns_hurry(struct harbor *h);
void conns_close_all(struct harbor *h);

/* Serve the client on cfd from a new thread; cfd is the thread's now. */
void conn_start(struct harbor *h, int cfd, const struct sockaddr *peer);

/*
 * Copy both ways between cfd and bfd until both directions end, or no byte
 * has moved either way for idle_ms (0: no limit).  0 or -1.
 */
int bridge_run(int cfd, int bfd, int idle_ms, struct bridge_stats *st);

#endif
