/*
 * conn.h - one client connection, from accept to close (conn.c).
 */
#ifndef HARBOR_CONN_H
#define HARBOR_CONN_H

#include <sys/socket.h>

#include "harbor.h"

/* Serve the client on cfd from a new thread; cfd is the thread's now. */
void conn_start(struct harbor *h, int cfd, const struct sockaddr *peer);

#endif
