/*
 * bridge.c - copy bytes both ways between a client and its backend.
 *
 * DESIGN: a bridge is two pumps, one per direction, each a blocking
 * read-then-write loop.  The connection thread runs the client-to-backend
 * pump itself and starts one more thread for the reply, so a connection
 * costs two threads.  The fds are borrowed: the pumps shut sockets down but
 * never close them; bridge_run() joins the reply thread before returning,
 * and the connection thread closes both fds after that.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "harbor.h"
#include "log.h"
#include "net.h"

struct pump {
    int src, dst;             /* read from src, write to dst */
    unsigned long long bytes; /* moved so far; read after the join */
    int err;                  /* why it stopped: 0 for EOF */
};

static void *
pump_run(void *arg)
{
    struct pump *p = arg;
    char buf[BRIDGE_BUF_SIZE];
    ssize_t n;

    for (;;) {
        n = read(p->src, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (write_all(p->dst, buf, (size_t)n) < 0) {
            n = -1;
            break;
        }
        p->bytes += (unsigned long long)n;
    }
    if (n < 0)
        p->err = errno;
    if (n == 0) {
        /*
         * The half-close.  src sent EOF, so forward it: shutdown(SHUT_WR)
         * sends our FIN to dst but leaves the socket open for reading, and
         * the other pump goes on carrying dst's reply until it ends too.
         */
        shutdown(p->dst, SHUT_WR);
    } else {
        /*
         * A reset, or a write to a peer that is gone: the connection is
         * over both ways.  The other pump may be blocked in read() on one
         * of these sockets; shutdown(SHUT_RDWR) wakes it with EOF.  (Not
         * close(): the fd number could be reused by another connection
         * while the other thread still reads from it.)
         */
        shutdown(p->src, SHUT_RDWR);
        shutdown(p->dst, SHUT_RDWR);
    }
    return NULL;
}

int
bridge_run(int cfd, int bfd, struct bridge_stats *st)
{
    struct pump up = {.src = cfd, .dst = bfd};
    struct pump down = {.src = bfd, .dst = cfd};
    pthread_attr_t attr;
    pthread_t tid;
    int err;

    /* Pass each piece on as soon as it is read (see net_nodelay()). */
    net_nodelay(cfd);
    net_nodelay(bfd);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, CONN_STACK_SIZE);
    err = pthread_create(&tid, &attr, pump_run, &down);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        log_warn("%s: %s", __func__, strerror(err));
        return -1;
    }
    pump_run(&up);
    pthread_join(tid, NULL);
    st->up = up.bytes;
    st->down = down.bytes;
    st->err = up.err != 0 ? up.err : down.err;
    return 0;
}
