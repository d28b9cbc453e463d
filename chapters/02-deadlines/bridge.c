/*
 * bridge.c - copy bytes both ways between a client and its backend.
 *
 * DESIGN: a bridge is two pumps, one per direction, each a blocking
 * read-then-write loop.  The connection thread runs the client-to-backend
 * pump itself and starts one more thread for the reply, so a connection
 * costs two threads.  The fds are borrowed: the pumps shut sockets down but
 * never close them; bridge_run() joins the reply thread before returning,
 * and the connection thread closes both fds after that.
 *
 * DEADLINES: each pump blocks in read() for at most a tick (SO_RCVTIMEO),
 * then asks whether any byte has moved *either way* within idle_ms.  One
 * clock shared by both pumps, stamped on every read and every write, is
 * what lets them agree: during a long download the client has nothing to
 * say, and a per-direction read timeout would cut its quiet upload side -
 * and with it the whole connection.  A write gets SO_SNDTIMEO of idle_ms:
 * one that makes no progress that long (a peer that stopped reading) fails
 * and ends the connection.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "harbor.h"
#include "log.h"
#include "net.h"

struct pump {
    int src, dst;             /* read from src, write to dst */
    unsigned long long bytes; /* moved so far; read after the join */
    int err;                  /* why it stopped: 0 for EOF */
    int idle_ms;              /* 0: no deadline */
    atomic_llong *last;       /* shared: ms when a byte last moved */
};

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * write_all(), stamping the shared clock at every bit of progress: a slow
 * reader that takes a minute over one buffer is still moving bytes.
 */
static int
pump_write(struct pump *p, const char *buf, size_t n)
{
    ssize_t w;

    while (n > 0) {
        w = write(p->dst, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            errno = ETIMEDOUT; /* SO_SNDTIMEO: no progress for idle_ms */
        if (w < 0)
            return -1;
        atomic_store(p->last, now_ms());
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

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
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* A tick with nothing to read: idle only if the other way
             * was quiet for as long. */
            if (now_ms() - atomic_load(p->last) < p->idle_ms)
                continue;
            errno = ETIMEDOUT;
        }
        if (n <= 0)
            break;
        atomic_store(p->last, now_ms());
        if (pump_write(p, buf, (size_t)n) < 0) {
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

/*
 * Wake a blocked read() every tick (a quarter of idle_ms, between 10 ms and
 * 1 s), so an idle connection is cut between idle_ms and idle_ms + tick.
 */
static void
set_deadlines(int fd, int idle_ms)
{
    int tick = idle_ms / 4 < 10 ? 10 : idle_ms / 4 > 1000 ? 1000 : idle_ms / 4;
    struct timeval rcv = {tick / 1000, (tick % 1000) * 1000};
    struct timeval snd = {idle_ms / 1000, (idle_ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
}

int
bridge_run(int cfd, int bfd, int idle_ms, struct bridge_stats *st)
{
    atomic_llong last = now_ms();
    struct pump up = {
        .src = cfd, .dst = bfd, .idle_ms = idle_ms, .last = &last};
    struct pump down = {
        .src = bfd, .dst = cfd, .idle_ms = idle_ms, .last = &last};
    pthread_attr_t attr;
    pthread_t tid;
    int err;

    if (idle_ms > 0) {
        set_deadlines(cfd, idle_ms);
        set_deadlines(bfd, idle_ms);
    }
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
