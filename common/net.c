/*
 * net.c - listen, accept, write_all: the socket idioms Beej readers know.
 *
 * These never change between chapters, so they live here once.  What does
 * change - how a backend is dialled, how a bridge copies - stays in the
 * chapters, where a diff can show it.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"

/*
 * Bind and listen on the first address of host:port that works (host NULL:
 * the wildcard of family).  Returns the fd, or -1 with errno set.
 */
static int
listen_on(const char *host, const char *port, int family)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, one = 1, zero = 0, saved = EADDRNOTAVAIL;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)) <
            0) {
            saved = errno;
            continue;
        }
        /*
         * SO_REUSEADDR: a restarted balancer or backend can bind its port
         * again at once, while old connections still sit in TIME_WAIT.
         */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* The IPv6 wildcard takes IPv4 clients too (as ::ffff:a.b.c.d). */
        if (host == NULL && ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, NET_BACKLOG) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        errno = saved;
    return fd;
}

/*
 * With no host, listen on IPv6 "::" so that both families reach us and
 * "localhost" works whichever one it resolves to first; on a machine
 * without IPv6, fall back to IPv4's 0.0.0.0.
 */
int
net_listen(const struct addr *a, char *bound, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char port[8];
    int fd, saved;

    snprintf(port, sizeof(port), "%u", a->port);
    if (a->host[0] != '\0')
        fd = listen_on(a->host, port, AF_UNSPEC);
    else if ((fd = listen_on(NULL, port, AF_INET6)) < 0 && errno != EADDRINUSE)
        fd = listen_on(NULL, port, AF_INET);
    if (fd < 0)
        return -1;
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (a->host[0] == '\0')
        snprintf(bound, len, ":%u", net_port((struct sockaddr *)&ss));
    else
        net_ntop((struct sockaddr *)&ss, bound, len);
    return fd;
}

int
net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len)
{
    /* 100 ms: long enough for a connection to finish and free an fd. */
    static const struct timespec backoff = {0, 100 * 1000 * 1000};
    socklen_t size = *len;
    int fd;

    for (;;) {
        *len = size;
        fd = accept(lfd, (struct sockaddr *)peer, len);
        if (fd >= 0)
            return fd;
        switch (errno) {
        case EINTR:
        case ECONNABORTED: /* the client gave up while queued */
        case EPROTO:       /* Linux hands pending network errors of the */
        case ENETDOWN:     /* new connection to accept(); accept(2) says */
        case ENETUNREACH:  /* to treat them as "try again" */
        case EHOSTDOWN:
        case EHOSTUNREACH:
        case ENOPROTOOPT:
        case EOPNOTSUPP:
        case EPERM: /* a firewall rule refused this one connection */
            continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            /*
             * Out of descriptors or memory.  Retrying at once would spin
             * on the same error; the pending client waits in the backlog
             * until a live connection ends and frees what we need.
             */
            log_warn("%s: %s; retrying in 100 ms", __func__, strerror(errno));
            nanosleep(&backoff, NULL);
            continue;
        default:
            return -1;
        }
    }
}

/*
 * Each connection holds two descriptors (more in later chapters), and many
 * systems start processes with a soft limit of 1024: a balancer would run
 * out at about 500 clients while the hard limit allows far more.  Raising
 * the soft limit is what nginx's worker_rlimit_nofile and HAProxy do too.
 */
void
net_raise_nofile(void)
{
    struct rlimit rl;
    rlim_t was;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        log_info("open files limit raised from %llu to %llu",
                 (unsigned long long)was, (unsigned long long)rl.rlim_max);
}

/*
 * A proxy writes what it has just read.  With Nagle's algorithm on, a small
 * write waits while an earlier segment is unacknowledged, and the peer may
 * be delaying that ACK for up to 40 ms: a reply that arrives from the
 * backend in two pieces would stall.  TCP_NODELAY sends each write at once.
 */
int
net_nodelay(int fd)
{
    int one = 1;

    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int
write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    ssize_t w;

    while (n > 0) {
        w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void
net_ntop(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            /* An IPv4 client of the dual-stack listener: print it as one. */
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], host, sizeof(host));
            snprintf(buf, len, "%s:%u", host, ntohs(s6->sin6_port));
            return;
        }
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
    } else {
        snprintf(buf, len, "(family %d)", sa->sa_family);
    }
}

unsigned
net_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    return 0;
}
