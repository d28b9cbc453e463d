/*
 * bridge.c - copy bytes both ways between a client and its backend.
 *
 * DESIGN: a bridge is two pumps, one per direction, each a blocking
 * read-then-write loop.  The connection thread runs the client-to-backend
 * pump itself and hands the reply pump to a worker thread, so a connection
 * costs two threads.  The fds are borrowed: the pumps shut sockets down but
 * never close them; bridge_run() waits for the reply pump before returning,
 * and the connection thread closes both fds after that.
 *
 * SPLICE: the bytes never enter this process.  splice(2) moves them from
 * the source socket into a pipe and from the pipe into the destination
 * socket, page references handed from one kernel buffer to the next, where
 * read() and write() would copy every byte into user space and back.  Each
 * pump uses its thread's pipe, kept from one job to the next; it is empty
 * whenever the pump goes back to read.
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
#define _GNU_SOURCE /* splice(), pipe2() */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
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
#include "workers.h"

struct pump {
    int src, dst;             /* read from src, write to dst */
    unsigned long long bytes; /* moved so far; read after the join */
    atomic_ullong *moved;     /* shared: every pump's bytes this way */
    int err;                  /* why it stopped: 0 for EOF */
    int idle_ms;              /* 0: no deadline */
    atomic_llong *last;       /* shared: ms when a byte last moved */
    int *pipe;                /* src -> pipe[1], pipe[0] -> dst */
    struct job job;           /* runs the reply pump on a worker */
    sem_t done;               /* posted when the reply pump has ended */
};

/*
 * Each thread keeps one pipe for all the pumps it runs: making a pipe costs
 * a pipe2() and two close()s, which a new connection per request would pay
 * twice.  The key is the one piece of static state here; its destructor
 * closes a thread's pipe when the thread ends.
 */
static pthread_key_t pipe_key;
static pthread_once_t pipe_once = PTHREAD_ONCE_INIT;

static void
pipe_free(void *arg)
{
    int *fd = arg;

    close(fd[0]);
    close(fd[1]);
    free(fd);
}

static void
pipe_key_make(void)
{
    pthread_key_create(&pipe_key, pipe_free);
}

/* This thread's pipe, made on first use.  NULL with errno on failure. */
static int *
pipe_get(void)
{
    int *fd;

    pthread_once(&pipe_once, pipe_key_make);
    if ((fd = pthread_getspecific(pipe_key)) != NULL)
        return fd;
    if ((fd = malloc(2 * sizeof(*fd))) == NULL)
        return NULL;
    if (pipe2(fd, O_CLOEXEC) < 0) {
        free(fd);
        return NULL;
    }
    pthread_setspecific(pipe_key, fd);
    return fd;
}

/* A failed write may leave bytes in the pipe: throw it away. */
static void
pipe_drop(void)
{
    int *fd = pthread_getspecific(pipe_key);

    if (fd != NULL) {
        pthread_setspecific(pipe_key, NULL);
        pipe_free(fd);
    }
}

void
bridge_forget(void)
{
    pipe_drop();
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Move the n bytes in the pipe to dst, stamping the shared clock at every
 * bit of progress: a slow reader that takes a minute over one buffer is
 * still moving bytes.
 */
static int
pump_write(struct pump *p, size_t n)
{
    ssize_t w;

    while (n > 0) {
        w = splice(p->pipe[0], NULL, p->dst, NULL, n, SPLICE_F_MOVE);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            errno = ETIMEDOUT; /* SO_SNDTIMEO: no progress for idle_ms */
        if (w < 0)
            return -1;
        atomic_store(p->last, now_ms());
        atomic_fetch_add_explicit(p->moved, (unsigned long long)w,
                                  memory_order_relaxed);
        n -= (size_t)w;
    }
    return 0;
}

static void *
pump_run(void *arg)
{
    struct pump *p = arg;
    ssize_t n = -1;

    if ((p->pipe = pipe_get()) == NULL)
        goto out;
    for (;;) {
        n = splice(p->src, NULL, p->pipe[1], NULL, BRIDGE_PIPE_LEN,
                   SPLICE_F_MOVE);
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
        if (pump_write(p, (size_t)n) < 0) {
            n = -1;
            break;
        }
        p->bytes += (unsigned long long)n;
    }
out:
    if (n < 0) {
        p->err = errno;
        pipe_drop();
    }
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

/* The reply pump's job.  p lives on the connection thread's stack, which
 * may be gone once done is posted: touch nothing after sem_post(). */
static int
pump_job(void *arg)
{
    struct pump *p = arg;

    pump_run(p);
    sem_post(&p->done);
    return 0;
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
bridge_run(struct workers *w, int cfd, int bfd, int idle_ms,
           atomic_ullong moved[2], struct bridge_stats *st)
{
    atomic_llong last = now_ms();
    struct pump up = {.src = cfd,
                      .dst = bfd,
                      .moved = &moved[0],
                      .idle_ms = idle_ms,
                      .last = &last};
    struct pump down = {.src = bfd,
                        .dst = cfd,
                        .moved = &moved[1],
                        .idle_ms = idle_ms,
                        .last = &last};

    if (idle_ms > 0) {
        set_deadlines(cfd, idle_ms);
        set_deadlines(bfd, idle_ms);
    }
    /* Pass each piece on as soon as it is read (see net_nodelay()). */
    net_nodelay(cfd);
    net_nodelay(bfd);
    sem_init(&down.done, 0, 0);
    down.job.fn = pump_job;
    down.job.arg = &down;
    if (workers_run(w, &down.job) < 0) {
        log_warn("%s: %s", __func__, strerror(errno));
        sem_destroy(&down.done);
        return -1;
    }
    pump_run(&up);
    while (sem_wait(&down.done) < 0 && errno == EINTR)
        ;
    sem_destroy(&down.done);
    st->up = up.bytes;
    st->down = down.bytes;
    st->err = up.err != 0 ? up.err : down.err;
    return 0;
}
