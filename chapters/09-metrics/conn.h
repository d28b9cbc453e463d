/*
 * conn.h - one client connection, from accept to close (conn.c).
 */
#ifndef HARBOR_CONN_H
#define HARBOR_CONN_H

#include <sys/socket.h>

#include "harbor.h"

/*
 * How many threads wait in accept() at once, at most.  Each is a thread
 * that can take the next client without a hand-off.
 */
#define ACCEPTORS 4

/* Start the first thread at the listener h->lfd.  0, or -1 with errno. */
int conn_accept_start(struct harbor *h);
/* Wait until the listener is shut down and no thread is left at it. */
void conn_accept_wait(struct harbor *h);

#endif
