/*
 * conns.h - the registry of live connections (conns.c), so that a shutdown
 * can count them, wait for them, and cut those still there at the drain
 * deadline.
 */
#ifndef HARBOR_CONNS_H
#define HARBOR_CONNS_H

#include <pthread.h>

struct conns_entry; /* one connection's fds, on the list */
struct slots;

struct conns {
    pthread_mutex_t lock;     /* guards everything below */
    pthread_cond_t changed;   /* broadcast when one ends, and on hurry */
    struct conns_entry *head; /* doubly linked */
    int n;                    /* entries on the list */
    int hurry;                /* a second signal: stop waiting */
    int cut;                  /* shut down every socket, even later ones */
    struct slots *seats;      /* conns_end() gives a seat back */
};

/* The registry, giving the seats of ended connections back to seats.
 * 0, or -1 with errno. */
int conns_init(struct conns *l, struct slots *seats);

/* Register the client cfd; the registry closes it in conns_end().  The
 * entry, or NULL (ENOMEM). */
struct conns_entry *conns_add(struct conns *l, int cfd);
/* The connection dialled bfd; the registry closes it too. */
void conns_set_backend(struct conns *l, struct conns_entry *e, int bfd);
/* A connection's last act: close its fds, give its seat back, take it
 * off, free e. */
void conns_end(struct conns *l, struct conns_entry *e);

int conns_live(struct conns *l);
/* Wait until none is live, timeout_ms passed (0: no limit) or conns_hurry()
 * was called.  Returns how many are still live. */
int conns_drain(struct conns *l, int timeout_ms);
void conns_hurry(struct conns *l);
/* Cut every live connection, and wait until each has ended. */
void conns_close_all(struct conns *l);

#endif
