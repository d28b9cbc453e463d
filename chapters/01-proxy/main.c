/*
 * main.c - start-up and the accept loop.
 *
 * Read the configuration, bind the listener, then accept clients forever
 * and hand each one to a thread of its own (conn.c), which picks a backend
 * round-robin and bridges the two sockets (bridge.c).  Everything a thread
 * needs travels in one struct harbor.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "harbor.h"
#include "log.h"
#include "net.h"

static void
harbor_config(struct harbor *h)
{
    struct addr *backends;
    struct backend *b;
    size_t i, n;

    memset(h, 0, sizeof(*h));
    log_init();
    config_listen("LISTEN", ":9090", &h->listen);
    config_backends("BACKENDS", "127.0.0.1:9001,127.0.0.1:9002", &backends, &n);

    /* Every variable is good: only now build and say anything. */
    if (pool_init(&h->pool) < 0)
        fatal("%s: pool: %s", __func__, strerror(errno));
    for (i = 0; i < n; i++) {
        if ((b = backend_new(&backends[i])) == NULL ||
            pool_add(&h->pool, b) < 0)
            fatal("%s: pool: %s", __func__, strerror(errno));
        backend_release(b); /* the pool holds it now */
        log_info("backend %s", backends[i].text);
    }
    free(backends);
    rr_init(&h->strategy);
}

int
main(void)
{
    struct harbor h;
    struct sockaddr_storage peer;
    socklen_t peerlen;
    char bound[ADDR_TEXT_MAX];
    int lfd, cfd;

    harbor_config(&h);
    net_raise_nofile();

    /*
     * A write to a peer that has gone away raises SIGPIPE, whose default
     * action kills the whole process.  Ignored, the write fails with EPIPE
     * instead and only that connection ends.
     */
    signal(SIGPIPE, SIG_IGN);

    if ((lfd = net_listen(&h.listen, bound, sizeof(bound))) < 0)
        fatal("listen %s: %s", h.listen.text, strerror(errno));
    printf("Harbor Up\nlistening on %s\n", bound);
    fflush(stdout);
    log_info("listening on %s, strategy %s", bound, h.strategy.name);

    for (;;) {
        peerlen = sizeof(peer);
        if ((cfd = net_accept(lfd, &peer, &peerlen)) < 0) {
            /* Only a broken listener gets here (EBADF, EINVAL...). */
            fatal("accept: %s", strerror(errno));
        }
        conn_start(&h, cfd, (struct sockaddr *)&peer);
    }
}
