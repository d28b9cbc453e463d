/*
 * net.h - the socket idioms every chapter shares: listen, accept, write_all,
 * and printing an address.  Dialling a backend is not here: how to connect
 * (blocking, with a deadline, with retries) is what the chapters teach.
 */
#ifndef HARBOR_NET_H
#define HARBOR_NET_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>

#include "config.h"

#define NET_BACKLOG 4096 /* the kernel clamps it to net.core.somaxconn */

/*
 * Bind and listen on a (any address when a->host is ""), with SO_REUSEADDR.
 * Writes the real bound address to bound ("host:port", or ":port" when no
 * host was given).  Returns the fd, or -1 with errno set.
 */
int net_listen(const struct addr *a, char *bound, size_t len);

/*
 * accept() that retries EINTR and ECONNABORTED, and on EMFILE, ENFILE,
 * ENOBUFS or ENOMEM logs, sleeps a little and retries instead of spinning.
 * Returns the new fd, or -1 with errno set on any other error.
 */
int net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len);

/* Raise the soft limit on open files to the hard limit; logs the change. */
void net_raise_nofile(void);

/* Send small writes at once (TCP_NODELAY).  0 or -1. */
int net_nodelay(int fd);

/* Write all n bytes, looping over short writes and EINTR.  0 or -1. */
int write_all(int fd, const void *buf, size_t n);

/* Format sa as "1.2.3.4:80" or "[::1]:80" into buf. */
void net_ntop(const struct sockaddr *sa, char *buf, size_t len);

/* The port sa is bound to. */
unsigned net_port(const struct sockaddr *sa);

#endif
