/*
 * conn.h - one client connection, from accept to close (conn.c).
 */
#ifndef HARBOR_CONN_H
#define HARBOR_CONN_H

#include <sys/socket.h>
#include <time.h>

#include "harbor.h"

struct conn {
    struct harbor *h;
    struct conns_entry *reg;  /* cfd and bfd on h->conns */
    int cfd;                  /* the client; the registry closes it */
    char peer[ADDR_TEXT_MAX]; /* the client's address, for the logs */
    struct timespec started;  /* when accepted, for the duration */
    int reused;               /* conn_dial() took an idle upstream connection */
    int fresh; /* conn_dial() must dial, not take one (a retry) */
};

/*
 * How many threads wait in accept() at once, at most.  Each is a thread
 * that can take the next client without a hand-off.
 */
#define ACCEPTORS 4

/* Start the first thread at the listener h->lfd.  0, or -1 with errno. */
int conn_accept_start(struct harbor *h);
/*
 * Pick an up backend and connect to it, trying others on failure (RETRIES);
 * in MODE=http an idle connection to it is taken first, unless c->fresh.
 * The fd with *bp held and started, or -1 with errno ENOENT when no
 * backend is up (else ECONNREFUSED).
 */
int conn_dial(struct conn *c, struct backend **bp);
/* Wait until the listener is shut down and no thread is left at it. */
void conn_accept_wait(struct harbor *h);

#endif
