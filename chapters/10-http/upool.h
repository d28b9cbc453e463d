/*
 * upool.h - idle upstream connections, kept per backend for the next
 * request (upool.c).
 */
#ifndef HARBOR_UPOOL_H
#define HARBOR_UPOOL_H

#include <pthread.h>

#include "pool.h"

struct idle; /* one idle connection (upool.c) */

struct upool {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;  /* the reaper's tick, cut short by upool_stop() */
    struct idle *list;    /* the most recently put first */
    int max;              /* UPSTREAM_IDLE_MAX per backend; 0: keep none */
    int timeout_ms;       /* UPSTREAM_IDLE_TIMEOUT_MS */
    int stop;
    int running; /* the reaper thread was started */
    pthread_t reaper;
};

/* 0, or -1 with errno. */
int upool_init(struct upool *u, int max, int timeout_ms);
/* Start the thread that closes connections idle for too long.  0 or -1. */
int upool_start(struct upool *u);
/* An idle connection to b that still looks alive, or -1 if none. */
int upool_take(struct upool *u, struct backend *b);
/* fd, to b, carried a whole exchange and may carry another: keep it, or
 * close it if b has max already. */
void upool_put(struct upool *u, struct backend *b, int fd);
/* Close every idle connection to b: it went down, or left the pool. */
void upool_drop(struct upool *u, const struct backend *b);
/* Stop the reaper and close every idle connection. */
void upool_stop(struct upool *u);

#endif
