/*
 * unit_net.c - the socket idioms of common/net.c: write_all() over partial
 * writes, EINTR and a closed peer; net_ntop() and net_port() for each
 * family; net_listen() on port 0, what it says it bound, and a port that
 * is taken.  Every socket here has a timeout (IO_MS), so a broken net.c
 * fails a test instead of hanging it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "net.h"
#include "unit.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define IO_MS 5000 /* SO_RCVTIMEO, SO_SNDTIMEO and poll() in these tests */

static void
set_timeouts(int fd)
{
    struct timeval tv = {IO_MS / 1000, (IO_MS % 1000) * 1000};

    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv),
                     0);
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv),
                     0);
}

/* ---- write_all -------------------------------------------------------- */

/*
 * The reader of write_all_delivers_every_byte_*: it reads in small pieces
 * and, after each, interrupts the writer with SIGUSR1.  A blocking write()
 * returns short only when a signal interrupts it after some bytes went
 * out (and fails with EINTR when none had), so write_all() sees both.
 * It asserts nothing (Check's assertions belong to the test's thread).
 */
struct reader {
    int fd;
    pthread_t writer;
    atomic_int *done; /* set by the writer when write_all() returns */
    unsigned char *got;
    size_t len, cap;
    int err; /* errno of a failed read, 0 at EOF */
};

static void
on_usr1(int sig)
{
    (void)sig; /* only here to interrupt the writer's write() */
}

static void *
reader_run(void *arg)
{
    struct reader *r = arg;
    ssize_t n;

    for (;;) {
        size_t want = r->cap - r->len < 1000 ? r->cap - r->len : 1000;

        n = want > 0 ? read(r->fd, r->got + r->len, want) : 0;
        if (n <= 0)
            break;
        r->len += (size_t)n;
        if (!atomic_load(r->done))
            pthread_kill(r->writer, SIGUSR1);
    }
    r->err = n < 0 ? errno : 0;
    return NULL;
}

START_TEST(write_all_delivers_every_byte_through_small_buffers)
{
    enum { N = 512 * 1024 };
    atomic_int done = 0;
    struct sigaction sa, old;
    struct reader r;
    pthread_t tid;
    unsigned char *data = malloc(N);
    int sv[2], small = 4096, rc;

    ck_assert(data != NULL);
    for (size_t i = 0; i < N; i++)
        data[i] = (unsigned char)(i * 31 + i / 251);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART: write() must come back */
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    ck_assert_int_eq(
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    set_timeouts(sv[0]);
    set_timeouts(sv[1]);

    r = (struct reader){sv[1], pthread_self(), &done, malloc(N + 1),
                        0,     N + 1,          0};
    ck_assert(r.got != NULL);
    ck_assert_int_eq(pthread_create(&tid, NULL, reader_run, &r), 0);
    rc = write_all(sv[0], data, N);
    atomic_store(&done, 1);
    ck_assert_msg(rc == 0, "write_all: %s", strerror(errno));
    close(sv[0]); /* EOF for the reader */
    pthread_join(tid, NULL);
    ck_assert_msg(r.err == 0, "reader: %s", strerror(r.err));
    ck_assert_uint_eq(r.len, N);
    ck_assert_msg(memcmp(r.got, data, N) == 0, "the bytes read differ");
    sigaction(SIGUSR1, &old, NULL);
    close(sv[1]);
    free(r.got);
    free(data);
}
END_TEST

START_TEST(write_all_to_a_closed_peer_fails_with_epipe)
{
    void (*was)(int) = signal(SIGPIPE, SIG_IGN); /* EPIPE, not death */
    int sv[2], rc;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    set_timeouts(sv[0]);
    close(sv[1]);
    errno = 0;
    rc = write_all(sv[0], "x", 1);
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(errno == EPIPE, "errno %s, want EPIPE", strerror(errno));
    close(sv[0]);
    signal(SIGPIPE, was);
}
END_TEST

/* ---- net_ntop, net_port ----------------------------------------------- */

static const struct {
    int family;
    const char *host;
    unsigned port;
    const char *want;
} ntop_cases[] = {
    {AF_INET, "1.2.3.4", 80, "1.2.3.4:80"},
    {AF_INET, "127.0.0.1", 65535, "127.0.0.1:65535"},
    {AF_INET6, "::1", 80, "[::1]:80"},
    {AF_INET6, "2001:db8::7", 9001, "[2001:db8::7]:9001"},
    /* An IPv4 client of the dual-stack listener prints as IPv4. */
    {AF_INET6, "::ffff:10.0.0.1", 40000, "10.0.0.1:40000"},
};

/* ntop_cases[i] as a sockaddr. */
static void
case_sockaddr(int i, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (ntop_cases[i].family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)ntop_cases[i].port);
        ck_assert_int_eq(inet_pton(AF_INET, ntop_cases[i].host, &s4->sin_addr),
                         1);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)ntop_cases[i].port);
        ck_assert_int_eq(
            inet_pton(AF_INET6, ntop_cases[i].host, &s6->sin6_addr), 1);
    }
}

START_TEST(net_ntop_formats_each_family)
{
    struct sockaddr_storage ss;
    char buf[ADDR_TEXT_MAX];

    case_sockaddr(_i, &ss);
    memset(buf, 'x', sizeof buf);
    net_ntop((struct sockaddr *)&ss, buf, sizeof buf);
    ck_assert_str_eq(buf, ntop_cases[_i].want);
}
END_TEST

START_TEST(net_port_reads_the_port_of_each_family)
{
    struct sockaddr_storage ss;

    case_sockaddr(_i, &ss);
    ck_assert_uint_eq(net_port((struct sockaddr *)&ss), ntop_cases[_i].port);
}
END_TEST

START_TEST(net_port_of_another_family_is_0)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNIX;
    ck_assert_uint_eq(net_port((struct sockaddr *)&ss), 0);
}
END_TEST

/* ---- net_listen ------------------------------------------------------- */

/* The port lfd is bound to, by getsockname(). */
static unsigned
bound_port(int lfd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
    return net_port((struct sockaddr *)&ss);
}

/*
 * Connect to 127.0.0.1:port and accept on lfd: the accepted peer must be
 * the client just connected, by its port.
 */
static void
assert_reaches(int lfd, unsigned port)
{
    struct sockaddr_in sin = {0};
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof peer, llen = sizeof local;
    struct pollfd pfd = {lfd, POLLIN, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0), afd;

    ck_assert_int_ge(fd, 0);
    set_timeouts(fd); /* a blocking connect() honours SO_SNDTIMEO */
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0,
                  "connect 127.0.0.1:%u: %s", port, strerror(errno));
    ck_assert_msg(poll(&pfd, 1, IO_MS) == 1, "nothing to accept in %d ms",
                  IO_MS);
    afd = accept(lfd, (struct sockaddr *)&peer, &plen);
    ck_assert_msg(afd >= 0, "accept: %s", strerror(errno));
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&local, &llen), 0);
    ck_assert_uint_eq(net_port((struct sockaddr *)&peer),
                      net_port((struct sockaddr *)&local));
    close(afd);
    close(fd);
}

/* Each listen address, and the bound text expected before the port. */
static const struct {
    const char *listen, *prefix;
} listen_cases[] = {
    {"127.0.0.1:0", "127.0.0.1:"},
    {":0", ":"}, /* any address: no host in the bound text */
};

START_TEST(net_listen_on_port_0_binds_a_real_port_and_says_which)
{
    struct addr a;
    const char *why = NULL;
    char bound[ADDR_TEXT_MAX], want[ADDR_TEXT_MAX];
    int lfd, listening = 0;
    socklen_t len = sizeof listening;
    unsigned port;

    ck_assert_msg(addr_parse(listen_cases[_i].listen, &a, &why) == 0,
                  "addr_parse %s: %s", listen_cases[_i].listen, why);
    lfd = net_listen(&a, bound, sizeof bound);
    ck_assert_msg(lfd >= 0, "net_listen %s: %s", listen_cases[_i].listen,
                  strerror(errno));
    ck_assert_int_eq(
        getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len), 0);
    ck_assert_int_eq(listening, 1);
    port = bound_port(lfd);
    ck_assert_uint_ne(port, 0);
    snprintf(want, sizeof want, "%s%u", listen_cases[_i].prefix, port);
    ck_assert_str_eq(bound, want);
    assert_reaches(lfd, port);
    close(lfd);
}
END_TEST

START_TEST(net_listen_on_a_port_in_use_fails_with_eaddrinuse)
{
    struct addr a, again;
    const char *why = NULL;
    char bound[ADDR_TEXT_MAX], taken[32];
    int lfd, fd;

    ck_assert_int_eq(addr_parse("127.0.0.1:0", &a, &why), 0);
    lfd = net_listen(&a, bound, sizeof bound);
    ck_assert_msg(lfd >= 0, "net_listen: %s", strerror(errno));
    snprintf(taken, sizeof taken, "127.0.0.1:%u", bound_port(lfd));
    ck_assert_msg(addr_parse(taken, &again, &why) == 0, "addr_parse %s: %s",
                  taken, why);
    errno = 0;
    fd = net_listen(&again, bound, sizeof bound);
    ck_assert_msg(fd < 0, "listened on %s twice", taken);
    ck_assert_msg(errno == EADDRINUSE, "errno %s, want EADDRINUSE",
                  strerror(errno));
    close(lfd);
}
END_TEST

Suite *
net_suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("write_all");

    tcase_set_timeout(tc, 30); /* 512 KiB in 1000-byte reads, under TSan */
    tcase_add_test(tc, write_all_delivers_every_byte_through_small_buffers);
    tcase_add_test(tc, write_all_to_a_closed_peer_fails_with_epipe);
    suite_add_tcase(s, tc);

    tc = tcase_create("address");
    tcase_add_loop_test(tc, net_ntop_formats_each_family, 0, COUNT(ntop_cases));
    tcase_add_loop_test(tc, net_port_reads_the_port_of_each_family, 0,
                        COUNT(ntop_cases));
    tcase_add_test(tc, net_port_of_another_family_is_0);
    suite_add_tcase(s, tc);

    tc = tcase_create("listen");
    tcase_add_loop_test(tc,
                        net_listen_on_port_0_binds_a_real_port_and_says_which,
                        0, COUNT(listen_cases));
    tcase_add_test(tc, net_listen_on_a_port_in_use_fails_with_eaddrinuse);
    suite_add_tcase(s, tc);
    return s;
}
