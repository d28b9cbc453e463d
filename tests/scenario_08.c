/*
 * scenario_08.c - chapter 08 (fast): a thread that finished a connection
 * or a pump parks for WORKER_IDLE_MS and takes the next job, then ends;
 * each thread keeps its splice pipe across jobs and drops it after a
 * failed transfer.  None of this changes what a client sees, so these
 * scenarios watch Harbor itself through /proc: its thread count (status,
 * Threads:), its descriptors (fd/), and which system call each thread is
 * blocked in (task/<tid>/syscall), which tells a parked thread, blocked in
 * futex(2) on its condition variable, from one still at work.
 */
#define _GNU_SOURCE /* syscall numbers */

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* chapters/08-fast/harbor.h: how long a parked thread waits for a job. */
#define WORKER_IDLE_MS 10000

/* For the parked threads to leave: WORKER_IDLE_MS and room for a loaded
 * machine under a sanitizer, within the TCase's 30 s. */
#define EXPIRY_WAIT_MS (WORKER_IDLE_MS + 8000)

/* For a connection's threads to finish and park: they have nothing left
 * to wait for, so this only runs out when something is broken. */
#define QUIET_WAIT_MS HARNESS_PROMPT_MS

#define STEP_MS        2  /* how often the waits look at /proc again */
#define EXPIRY_STEP_MS 50 /* the same, over the ten seconds of an expiry */
#define CLOCK_SLACK_MS 2  /* whole ms here, nanoseconds in Harbor */
#define MAX_TIDS       64 /* threads a Harbor runs before its first client */

#define BIG_BODY (256u << 20) /* GET /bytes/<n>: more than all buffers hold */

/*
 * What /proc shows of Harbor at one moment.  Workers are the threads
 * started since start-up: the connection and pump threads.
 */
struct view {
    int threads; /* Threads: in /proc/<pid>/status */
    int fds;     /* entries of /proc/<pid>/fd */
    int sockets; /* of those, sockets */
    int workers; /* threads not there at start-up */
    int parked;  /* of those, blocked in futex(2) */
    int busy;    /* start-up threads at work: see look() */
};

/* Harbor, and the threads and descriptors it had before any client. */
struct watch {
    struct harness_proc *harbor;
    int lfd; /* its listener's descriptor number, in Harbor */
    pid_t startup[MAX_TIDS];
    long startup_nr[MAX_TIDS]; /* the system call each was blocked in */
    int nstartup;
    struct view before;
};

/* The pause between two looks in a bounded wait. */
static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};

    nanosleep(&ts, NULL);
}

/*
 * The system call thread tid of pid is blocked in; -1 when it is running,
 * -2 when the file cannot be read (the thread is gone, or this process
 * may not look: reading it needs the rights ptrace(2) would).
 */
static long
blocked_in(pid_t pid, pid_t tid)
{
    char path[64], line[256];
    FILE *f;
    long nr = -2;

    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    if ((f = fopen(path, "r")) == NULL)
        return -2;
    if (fgets(line, sizeof line, f) != NULL)
        nr = strncmp(line, "running", 7) == 0 ? -1 : strtol(line, NULL, 10);
    fclose(f);
    return nr;
}

static int
status_threads(pid_t pid)
{
    char path[64], line[256];
    FILE *f;
    int n = -1;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (n < 0 && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "Threads: %d", &n) != 1)
            n = -1;
    fclose(f);
    return n;
}

static long
startup_nr(const struct watch *w, pid_t tid)
{
    for (int i = 0; i < w->nstartup; i++)
        if (w->startup[i] == tid)
            return w->startup_nr[i];
    return -2;
}

static int
is_startup(const struct watch *w, pid_t tid)
{
    for (int i = 0; i < w->nstartup; i++)
        if (w->startup[i] == tid)
            return 1;
    return 0;
}

/* Whether system call nr is accept(2), by either of its numbers. */
static int
in_accept(long nr)
{
#ifdef SYS_accept
    if (nr == SYS_accept)
        return 1;
#endif
#ifdef SYS_accept4
    if (nr == SYS_accept4)
        return 1;
#endif
    return 0;
}

/*
 * Whether thread tid of pid is blocked in accept() on its descriptor lfd:
 * the listener's, not another's (from chapter 09 on, the metrics thread
 * waits in accept() too).  The syscall file gives the first argument.
 */
static int
at_listener(pid_t pid, pid_t tid, int lfd)
{
    char path[64], line[256];
    unsigned long arg0 = 0;
    long nr = -2;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    if (fgets(line, sizeof line, f) == NULL ||
        sscanf(line, "%ld %lx", &nr, &arg0) != 2)
        nr = -2;
    fclose(f);
    return in_accept(nr) && arg0 == (unsigned long)lfd;
}

/*
 * The descriptor number, in Harbor, of its listening socket: the inode of
 * the socket listening on its port (/proc/net/tcp and tcp6, state 0A),
 * then the fd of Harbor's that links to "socket:[<inode>]".
 */
static int
listener_fd(const struct harness_proc *harbor)
{
    static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    char line[512], want[64], link[64], path[64];
    unsigned long inode = 0, ino;
    unsigned port, state;
    struct dirent *e;
    FILE *f;
    DIR *d;
    int fd = -1;

    for (int t = 0; t < 2 && inode == 0; t++) {
        if ((f = fopen(tables[t], "r")) == NULL)
            continue;
        while (inode == 0 && fgets(line, sizeof line, f) != NULL)
            if (sscanf(line,
                       " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x "
                       "%*x:%*x %*x:%*x %*x %*u %*u %lu",
                       &port, &state, &ino) == 3 &&
                port == harbor->port && state == 0x0A)
                inode = ino;
        fclose(f);
    }
    ck_assert_msg(inode != 0, "no socket listens on port %u", harbor->port);
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    snprintf(path, sizeof path, "/proc/%d/fd", (int)harbor->pid);
    ck_assert_msg((d = opendir(path)) != NULL, "%s: %s", path, strerror(errno));
    while (fd < 0 && (e = readdir(d)) != NULL) {
        ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);

        if (n > 0 && (link[n] = '\0', strcmp(link, want) == 0))
            fd = atoi(e->d_name);
    }
    closedir(d);
    ck_assert_msg(fd >= 0, "harbor holds no %s", want);
    return fd;
}

/* Look at Harbor now. */
static void
look(const struct watch *w, struct view *v)
{
    pid_t pid = w->harbor->pid;
    char path[64], link[64];
    struct dirent *e;
    DIR *d;

    memset(v, 0, sizeof *v);
    v->threads = status_threads(pid);
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    if ((d = opendir(path)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            pid_t tid = (pid_t)atoi(e->d_name);
            long nr;

            if (tid <= 0)
                continue;
            nr = blocked_in(pid, tid);
            /*
             * A start-up thread may serve clients too (the first thread
             * at the listener): it is at rest in the call it was in at
             * start-up, or parked, or back in accept(); anything else
             * (running, splice(), close()...) is work in progress.
             */
            if (is_startup(w, tid)) {
                v->busy += nr != startup_nr(w, tid) && nr != SYS_futex &&
                           !in_accept(nr);
                continue;
            }
            v->workers++;
            v->parked += nr == SYS_futex || in_accept(nr);
        }
        closedir(d);
    }
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    if ((d = opendir(path)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            ssize_t n;

            if (e->d_name[0] == '.')
                continue;
            v->fds++;
            n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
            v->sockets += n > 7 && strncmp(link, "socket:", 7) == 0;
        }
        closedir(d);
    }
}

/*
 * Harbor's threads now: their ids into tids (up to max), and how many of
 * them are blocked in accept() on its listener lfd.  Returns how many
 * threads there are.
 */
static int
threads_now(pid_t pid, int lfd, pid_t *tids, int max, int *accepting)
{
    char path[64];
    struct dirent *e;
    DIR *d;
    int n = 0;

    *accepting = 0;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    ck_assert_msg((d = opendir(path)) != NULL, "%s: %s", path, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        pid_t tid = (pid_t)atoi(e->d_name);

        if (tid <= 0)
            continue;
        if (n < max)
            tids[n] = tid;
        n++;
        *accepting += at_listener(pid, tid, lfd);
    }
    closedir(d);
    return n;
}

/*
 * Wait until Harbor's start-up is over - a thread blocked in accept(),
 * the last thing it starts, and every thread blocked - then note its
 * threads, the call each rests in, and what it holds before any client.
 */
static void
watch_start(struct watch *w, struct harness_proc *harbor)
{
    long deadline = harness_now_ms() + HARNESS_START_MS;
    int accepting, running;

    memset(w, 0, sizeof *w);
    w->harbor = harbor;
    w->lfd = listener_fd(harbor);
    for (;;) {
        w->nstartup =
            threads_now(harbor->pid, w->lfd, w->startup, MAX_TIDS, &accepting);
        /* Each at rest in a call of its own: that call is its rest. */
        running = 0;
        for (int i = 0; i < w->nstartup && i < MAX_TIDS; i++)
            running +=
                (w->startup_nr[i] = blocked_in(harbor->pid, w->startup[i])) < 0;
        if (accepting > 0 && running == 0)
            break;
        ck_assert_msg(harness_now_ms() < deadline,
                      "no thread of harbor blocked in accept() within %d ms",
                      HARNESS_START_MS);
        sleep_ms(STEP_MS);
    }
    ck_assert_int_le(w->nstartup, MAX_TIDS);
    look(w, &w->before);
    ck_assert_int_eq(w->before.workers, 0);
}

/*
 * Wait until no client connection is open in Harbor (no socket but those
 * of start-up), every worker is parked, and every start-up thread is back
 * at rest (the first thread at the listener serves clients too), and
 * return what it holds then.
 * A worker blocked in futex(2) could also be waiting for a lock or for its
 * pump; with every connection closed and every worker blocked, there is
 * nothing such a wait could be for, so it is parked.  Only then is the
 * next client sure to find them: one that comes while a thread is still
 * on its way back to the pool is given a new thread, as it should be.
 */
static void
wait_quiet(const struct watch *w, struct view *v, const char *when)
{
    long deadline = harness_now_ms() + QUIET_WAIT_MS;

    for (;;) {
        look(w, v);
        if (v->sockets == w->before.sockets && v->parked == v->workers &&
            v->busy == 0)
            return;
        ck_assert_msg(harness_now_ms() < deadline,
                      "%s: after %d ms harbor still has %d sockets (%d at "
                      "start-up), %d of %d workers parked and %d start-up "
                      "threads at work; alive: %d",
                      when, QUIET_WAIT_MS, v->sockets, w->before.sockets,
                      v->parked, v->workers, v->busy, harness_alive(w->harbor));
        sleep_ms(STEP_MS);
    }
}

static const char *const no_checks[] = {"HEALTH_CHECK=off", NULL};

/* One GET through Harbor, served. */
static void
served(struct harness_proc *harbor, const char *path)
{
    struct harness_http_response rs;

    ck_assert_msg(harness_http_get(harbor->port, path, &rs) == 0,
                  "GET %s: %s; harbor's stderr: %s", path,
                  harness_end_name(rs.end), harness_log_tail(harbor));
    ck_assert_int_eq(rs.status, 200);
    harness_http_response_free(&rs);
}

/* A keep-alive connection with one GET served on it, left open: its fd. */
static int
held_get(struct harness_proc *harbor)
{
    struct harness_http_request rq = {"GET", "/held", NULL, 0, 0};
    struct harness_http_response rs;
    int fd = harness_connect(harbor->port);

    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    ck_assert_msg(harness_http(fd, &rq, &rs) == 0, "keep-alive GET: %s",
                  harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 200);
    harness_http_response_free(&rs);
    return fd;
}

/*
 * Three clients, each once Harbor is quiet again.  Two threads take turns
 * at the listener: the kernel wakes the one that has waited in accept()
 * longest, and the one that served goes back behind the other.  The
 * second thread is started for the first client, and on a loaded machine
 * may not be in accept() yet when the second comes (a thread on its way
 * there, blocked a moment on a lock, looks parked): the first thread then
 * serves again, and the third client is the second thread's.  After that
 * each has served and keeps its pipe, as does the parked thread that ran
 * the reply pumps: Harbor is warm.
 */
static void
warm_up(const struct watch *w, const char *path)
{
    struct view v;

    for (int i = 0; i < 3; i++) {
        if (i > 0)
            wait_quiet(w, &v, "between the warm-up clients");
        served(w->harbor, path);
    }
}

/* Whether system call nr is one a pump blocks in: splice(2) or read(2). */
static int
in_pump(long nr)
{
    return nr == SYS_splice || nr == SYS_read;
}

/*
 * Leader/follower: the thread the kernel hands a client to in accept()
 * serves it itself.  While a keep-alive connection is held, one of the
 * threads that were blocked in accept() before it came is blocked in its
 * pump, waiting for the next request; with a hand-off, they would all
 * still be in accept() and some other thread would be reading.
 */
START_TEST(the_thread_that_accepts_a_client_serves_it)
{
    struct harness_stage st;
    struct watch w;
    struct view v;
    pid_t at[MAX_TIDS];
    long deadline;
    int n, accepting, k, fd, serving = 0;

    harness_stage_up(&st, 1, "http", no_checks);
    watch_start(&w, st.harbor);
    served(st.harbor, "/first");
    wait_quiet(&w, &v, "after the first client");
    n = threads_now(st.harbor->pid, w.lfd, at, MAX_TIDS, &accepting);
    ck_assert_int_le(n, MAX_TIDS);
    for (int i = k = 0; i < n; i++) /* keep those in accept() */
        if (at_listener(st.harbor->pid, at[i], w.lfd))
            at[k++] = at[i];
    ck_assert_msg(k == accepting && k > 0, "%d threads in accept(), then %d",
                  accepting, k);

    fd = held_get(st.harbor);
    deadline = harness_now_ms() + QUIET_WAIT_MS;
    while (!serving) {
        for (int i = 0; i < k; i++)
            serving += in_pump(blocked_in(st.harbor->pid, at[i]));
        ck_assert_msg(serving || harness_now_ms() < deadline,
                      "none of the %d threads that were in accept() is in a "
                      "pump %d ms into a held connection: the client was "
                      "handed to another thread",
                      k, QUIET_WAIT_MS);
        if (!serving)
            sleep_ms(STEP_MS);
    }
    harness_finish(fd);
    ck_assert(harness_alive(st.harbor));
    harness_stage_down(&st);
}
END_TEST

/*
 * A connection's two threads outlive it, parked; the next connections
 * take them instead of new ones, so twenty clients one after another
 * leave Harbor with exactly the threads and descriptors (the threads'
 * pipes) that the first client left.
 */
START_TEST(parked_threads_serve_the_next_clients_without_new_ones)
{
    struct harness_stage st;
    struct watch w;
    struct view first, v;
    char when[32];
    int fd;

    harness_stage_up(&st, 1, "http", no_checks);
    watch_start(&w, st.harbor);
    warm_up(&w, "/first");
    wait_quiet(&w, &first, "after the first clients");
    ck_assert_msg(first.workers > 0 && first.threads > w.before.threads,
                  "no thread outlived the first connection: %d threads, "
                  "%d before it",
                  first.threads, w.before.threads);

    /* A held connection runs on the parked threads: none is started. */
    fd = held_get(st.harbor);
    look(&w, &v);
    ck_assert_msg(v.threads == first.threads,
                  "%d threads during a held connection, %d parked before it",
                  v.threads, first.threads);
    ck_assert_int_eq(v.workers, first.workers);
    harness_finish(fd);
    wait_quiet(&w, &v, "after the held connection");

    for (int i = 0; i < 20; i++) {
        served(st.harbor, "/next");
        snprintf(when, sizeof when, "after client %d of 20", i + 1);
        wait_quiet(&w, &v, when);
        ck_assert_msg(v.threads == first.threads,
                      "%s: %d threads, %d after the first client", when,
                      v.threads, first.threads);
    }
    ck_assert_msg(v.fds == first.fds,
                  "%d descriptors after 20 clients, %d after the first", v.fds,
                  first.fds);
    ck_assert(harness_alive(st.harbor));
    harness_stage_down(&st);
}
END_TEST

/*
 * Parked threads that get no job leave after WORKER_IDLE_MS - not before
 * - and their pipes go with them: Harbor is back to what it had before
 * its first client.
 */
START_TEST(parked_threads_leave_after_worker_idle_ms)
{
    struct harness_stage st;
    struct watch w;
    struct view v;
    long started, left;

    harness_stage_up(&st, 1, "http", no_checks);
    watch_start(&w, st.harbor);
    started = harness_now_ms(); /* every thread parks after this */
    served(st.harbor, "/idle");
    wait_quiet(&w, &v, "after the client");
    ck_assert_msg(v.threads > w.before.threads,
                  "no thread outlived the connection: %d threads, %d before",
                  v.threads, w.before.threads);
    do {
        sleep_ms(EXPIRY_STEP_MS);
        look(&w, &v);
        left = harness_now_ms() - started;
    } while ((v.threads != w.before.threads || v.fds != w.before.fds) &&
             left < EXPIRY_WAIT_MS);
    ck_assert_msg(v.threads == w.before.threads && v.fds == w.before.fds,
                  "%ld ms after the client: %d threads and %d descriptors, "
                  "%d and %d before it",
                  left, v.threads, v.fds, w.before.threads, w.before.fds);
    ck_assert_msg(left >= WORKER_IDLE_MS - CLOCK_SLACK_MS,
                  "the parked threads left %ld ms after the client came, "
                  "before WORKER_IDLE_MS (%d)",
                  left, WORKER_IDLE_MS);
    ck_assert(harness_alive(st.harbor));
    harness_stage_down(&st);
}
END_TEST

/*
 * The next client is served on the parked threads, and Harbor is back to
 * the threads and descriptors of its warm start.
 */
static void
assert_back_to_warm(const struct watch *w, const struct view *warm)
{
    struct view v;

    wait_quiet(w, &v, "after the next client");
    ck_assert_msg(v.fds == warm->fds && v.threads == warm->threads,
                  "after the next client: %d descriptors and %d threads, "
                  "%d and %d after the warm-up",
                  v.fds, v.threads, warm->fds, warm->threads);
    ck_assert(harness_alive(w->harbor));
}

/*
 * A client that asks for a body far larger than any buffer, reads a
 * little and resets, fails Harbor's splice into its socket in the middle
 * of the transfer.  The pump that failed drops its pipe, which may still
 * hold bytes; the next client is served on the same threads, which make
 * new pipes, and Harbor is back to the descriptors of a warm start.
 */
START_TEST(client_reset_in_the_middle_of_a_splice_leaks_nothing)
{
    struct harness_stage st;
    struct watch w;
    struct view warm, v;
    char req[128], *buf = malloc(64 * 1024);
    enum harness_end end;
    int fd;

    ck_assert(buf != NULL);
    harness_stage_up(&st, 1, "http", no_checks);
    watch_start(&w, st.harbor);
    warm_up(&w, "/warm-up");
    wait_quiet(&w, &warm, "after the warm-up client");

    snprintf(req, sizeof req,
             "GET /bytes/%u HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             BIG_BODY);
    fd = harness_connect(st.harbor->port);
    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    ck_assert_int_eq(harness_send_all(fd, req, strlen(req)), 0);
    end = harness_read_n(fd, buf, 64 * 1024, HARNESS_XFER_MS);
    ck_assert_msg(end == HARNESS_DONE, "the first 64 KiB of the body: %s",
                  harness_end_name(end));
    harness_reset(fd);
    wait_quiet(&w, &v, "after the reset");
    ck_assert_msg(v.fds <= warm.fds - 2,
                  "%d descriptors after the reset, %d after the warm-up: "
                  "the pump that failed kept its pipe, or leaked it",
                  v.fds, warm.fds);

    warm_up(&w, "/after-the-reset");
    assert_back_to_warm(&w, &warm);
    free(buf);
    harness_stage_down(&st);
}
END_TEST

/* One MODE=tcp round trip through Harbor: msg out, FIN, msg back, EOF. */
static void
tcp_round(struct harness_proc *harbor, const char *msg)
{
    struct harness_buf in = {0};
    enum harness_end end;
    size_t n = strlen(msg);
    int fd = harness_connect(harbor->port);

    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    end = harness_exchange(fd, msg, n, 1, &in, HARNESS_XFER_MS);
    ck_assert_msg(end == HARNESS_EOF && in.len == n,
                  "\"%s\" through harbor: %zu bytes back, then %s", msg, in.len,
                  harness_end_name(end));
    ck_assert_msg(memcmp(in.data, msg, n) == 0,
                  "\"%s\" through harbor: other bytes came back", msg);
    harness_buf_free(&in);
    close(fd);
}

/*
 * Send pieces of chunk[] without reading the echo until the socket takes
 * no more: then bytes fill every buffer from here to the backend and back,
 * and both of Harbor's pumps are in the middle of a transfer.  Returns
 * how many bytes went out.
 */
static size_t
fill(int fd, const unsigned char *chunk, size_t len)
{
    long deadline = harness_now_ms() + HARNESS_XFER_MS;
    size_t sent = 0;
    ssize_t n;

    for (;;) {
        n = send(fd, chunk + sent % len, len - sent % len,
                 MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return sent;
        ck_assert_msg(n > 0, "send after %zu bytes: %s", sent, strerror(errno));
        sent += (size_t)n;
        ck_assert_msg(harness_now_ms() < deadline,
                      "%zu bytes sent in %d ms and the socket still takes "
                      "more: nothing pushes back",
                      sent, HARNESS_XFER_MS);
    }
}

/*
 * The other side: the MODE=tcp backend is killed while bytes flow both
 * ways through Harbor.  The client is closed, having got back only bytes
 * it sent; the next client, to an echo started again on the same port, is
 * served on the same threads; and Harbor is back to the descriptors of a
 * warm start.
 */
START_TEST(backend_killed_in_the_middle_of_a_splice_leaks_nothing)
{
    enum { CHUNK = 64 * 1024 };
    struct harness_stage st;
    struct harness_buf in = {0};
    struct watch w;
    struct view warm, v;
    unsigned char *chunk = malloc(CHUNK);
    enum harness_end end;
    size_t sent;
    int fd;

    ck_assert(chunk != NULL);
    harness_random(chunk, CHUNK, 0x0808);
    harness_stage_up(&st, 1, "tcp", no_checks);
    watch_start(&w, st.harbor);
    for (int i = 0; i < 3; i++) { /* as warm_up() */
        tcp_round(st.harbor, "warm-up");
        wait_quiet(&w, &warm, "after a warm-up client");
    }

    fd = harness_connect(st.harbor->port);
    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    sent = fill(fd, chunk, CHUNK);
    harness_kill(st.echo[0], SIGKILL);
    ck_assert_int_eq(harness_wait_exit(st.echo[0], HARNESS_STOP_MS, NULL), 0);
    harness_stop(st.echo[0]);
    st.echo[0] = NULL;
    end = harness_read_to_end(fd, &in, HARNESS_XFER_MS);
    ck_assert_msg(end == HARNESS_EOF || end == HARNESS_RESET,
                  "client of the killed backend: %s after %zu bytes, want "
                  "closed",
                  harness_end_name(end), in.len);
    ck_assert_msg(in.len <= sent, "%zu bytes back, %zu sent", in.len, sent);
    for (size_t i = 0; i < in.len; i += CHUNK) {
        size_t n = in.len - i < CHUNK ? in.len - i : CHUNK;

        ck_assert_msg(memcmp(in.data + i, chunk, n) == 0,
                      "the echo differs from what was sent in bytes %zu..%zu",
                      i, i + n);
    }
    harness_buf_free(&in);
    close(fd);
    wait_quiet(&w, &v, "after the kill");

    harness_stage_echo(&st, 0, "tcp", st.port[0]);
    for (int i = 0; i < 3; i++) { /* as warm_up() */
        if (i > 0)
            wait_quiet(&w, &v, "between clients after the kill");
        tcp_round(st.harbor, "after the kill");
    }
    assert_back_to_warm(&w, &warm);
    free(chunk);
    harness_stage_down(&st);
}
END_TEST

void
scenarios_08(Suite *s)
{
    TCase *tc;

    tc = harness_tcase(s, "workers", 8, NULL);
    tcase_add_test(tc, parked_threads_serve_the_next_clients_without_new_ones);
    tcase_add_test(tc, the_thread_that_accepts_a_client_serves_it);
    tcase_add_test(tc, client_reset_in_the_middle_of_a_splice_leaks_nothing);
    tcase_add_test(tc, backend_killed_in_the_middle_of_a_splice_leaks_nothing);

    /* About WORKER_IDLE_MS long: a TCase of its own, so CK_RUN_CASE=workers
     * stays quick. */
    tc = harness_tcase(s, "workers-idle", 8, NULL);
    tcase_add_test(tc, parked_threads_leave_after_worker_idle_ms);
}
