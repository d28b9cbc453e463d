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
#include <sys/stat.h>
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
#define RETRIES_MAX     16 /* a client waits for at most 17 connects */

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

/* The reload thread (reload.c). */
struct reload {
    pthread_mutex_t lock; /* guards hup and stop */
    pthread_cond_t wake;  /* signalled on SIGHUP and on stop */
    int hup;              /* a SIGHUP is waiting to be served */
    int stop;
    pthread_t tid;    /* joined by reload_stop() */
    struct stat seen; /* the file as last read; the thread's own */
};

/* The checker threads (health.c), one per backend. */
enum { CHECK_TCP, CHECK_HTTP, CHECK_OFF }; /* HEALTH_CHECK, in order */
struct checker;
struct checkers {
    pthread_mutex_t lock; /* guards the list and each checker's stop */
    pthread_cond_t wake;  /* broadcast to stop checkers */
    struct checker *list;
};

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
    struct checkers checkers;
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

int backends_file_read(const char *path, struct addr **v, size_t *n, char *err,
                       size_t errlen);
int reload_start(struct harbor *h);
void reload_kick(struct harbor *h);
void reload_stop(struct harbor *h);

/* Dial a within timeout_ms (conn.c).  The fd, or -1 with errno. */
int dial(const struct addr *a, int timeout_ms);

void health_sync(struct harbor *h, int stop_all);
void health_report(struct harbor *h, struct backend *b, int ok,
                   const char *why);

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
