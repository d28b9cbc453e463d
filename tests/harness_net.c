/*
 * harness_net.c - sockets and a minimal HTTP/1.1 client for the scenarios.
 *
 * Every socket made here has SO_RCVTIMEO and SO_SNDTIMEO, and every read
 * loop a deadline, so a balancer that stops answering fails a scenario
 * instead of hanging it.  The processes half of the harness is harness.c.
 */
#define _GNU_SOURCE

#include "harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- sockets ---------------------------------------------------------- */

void
harness_buf_free(struct harness_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void
buf_append(struct harness_buf *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 4096;
        unsigned char *d;

        while (cap < b->len + n + 1)
            cap *= 2;
        d = realloc(b->data, cap);
        ck_assert_msg(d != NULL, "out of memory");
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

const char *
harness_end_name(enum harness_end e)
{
    static const char *const names[] = {"done", "EOF", "reset", "timeout",
                                        "error"};

    return names[e];
}

static int
set_timeouts(int fd)
{
    struct timeval tv = {HARNESS_IO_MS / 1000, (HARNESS_IO_MS % 1000) * 1000};

    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return -1;
    return 0;
}

static int
loopback_socket(unsigned port, struct sockaddr_in *sin, int flags)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);

    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((unsigned short)port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && set_timeouts(fd) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int
harness_connect(unsigned port)
{
    struct sockaddr_in sin;
    struct pollfd pfd;
    int fd = loopback_socket(port, &sin, SOCK_NONBLOCK), err = 0;
    socklen_t errlen = sizeof err;

    if (fd < 0)
        return -1;
    /* Non-blocking connect, so the wait for it has a deadline. */
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        if (errno != EINPROGRESS)
            goto fail;
        pfd = (struct pollfd){fd, POLLOUT, 0};
        if (poll(&pfd, 1, HARNESS_IO_MS) <= 0) {
            errno = ETIMEDOUT;
            goto fail;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
            goto fail;
        if (err != 0) {
            errno = err;
            goto fail;
        }
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        goto fail;
    return fd;

fail:
    err = errno;
    close(fd);
    errno = err;
    return -1;
}

int
harness_send_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL); /* SO_SNDTIMEO bounds it */

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void
harness_reset(int fd)
{
    /* A zero linger makes close() send RST instead of FIN. */
    struct linger lg = {1, 0};

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

void
harness_finish(int fd)
{
    struct harness_buf in = {0};
    enum harness_end end;

    shutdown(fd, SHUT_WR);
    end = harness_read_to_end(fd, &in, HARNESS_PROMPT_MS);
    ck_assert_msg(end == HARNESS_EOF, "held connection after FIN: %s",
                  harness_end_name(end));
    harness_buf_free(&in);
    close(fd);
}

/*
 * The one loop under every exchange: send out[] as the socket takes it,
 * read whatever arrives, and stop when done() says the reply is complete,
 * at EOF, at an error, or at the deadline.
 */
static enum harness_end
pump(int fd, const void *out, size_t n, int shut_wr, struct harness_buf *in,
     long deadline, int (*done)(const struct harness_buf *, void *), void *arg)
{
    const unsigned char *o = out;
    size_t sent = 0;
    int shut = 0;

    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        unsigned char chunk[65536];
        long left = deadline - harness_now_ms();
        ssize_t r;

        if (sent == n && shut_wr && !shut) {
            shutdown(fd, SHUT_WR); /* forward our EOF, keep reading */
            shut = 1;
        }
        if (done != NULL && done(in, arg))
            return HARNESS_DONE;
        if (left <= 0)
            return HARNESS_TIMEOUT;
        if (sent < n)
            pfd.events |= POLLOUT;
        r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return HARNESS_ERROR;
        if (r == 0)
            return HARNESS_TIMEOUT;
        if (sent < n && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
            r = send(fd, o + sent, n - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (r > 0)
                sent += (size_t)r;
            else if (errno != EAGAIN && errno != EINTR)
                sent = n; /* the peer is gone: read what it left us */
        }
        if (!(pfd.revents & (POLLIN | POLLERR | POLLHUP)))
            continue;
        r = recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (r > 0)
            buf_append(in, chunk, (size_t)r);
        else if (r == 0)
            return HARNESS_EOF;
        else if (errno == ECONNRESET)
            return HARNESS_RESET;
        else if (errno != EAGAIN && errno != EINTR)
            return HARNESS_ERROR;
    }
}

int
harness_accept(int lfd, int timeout_ms)
{
    struct timeval tv = {HARNESS_IO_MS / 1000, 0};
    struct pollfd pfd = {lfd, POLLIN, 0};
    int fd;

    if (poll(&pfd, 1, timeout_ms) <= 0)
        return -1;
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

enum harness_end
harness_read_n(int fd, void *buf, size_t n, int timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms;
    size_t got = 0;

    while (got < n) {
        struct pollfd pfd = {fd, POLLIN, 0};
        long left = deadline - harness_now_ms();
        ssize_t r;

        if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
            return HARNESS_TIMEOUT;
        r = recv(fd, (char *)buf + got, n - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0)
            return HARNESS_EOF;
        else if (errno == ECONNRESET || errno == EPIPE)
            return HARNESS_RESET;
        else if (errno != EAGAIN && errno != EINTR)
            return HARNESS_ERROR;
    }
    return HARNESS_DONE;
}

enum harness_end
harness_read_to_end(int fd, struct harness_buf *in, int timeout_ms)
{
    return pump(fd, NULL, 0, 0, in, harness_now_ms() + timeout_ms, NULL, NULL);
}

enum harness_end
harness_exchange(int fd, const void *out, size_t n, int shut_wr,
                 struct harness_buf *in, int timeout_ms)
{
    return pump(fd, out, n, shut_wr, in, harness_now_ms() + timeout_ms, NULL,
                NULL);
}

enum harness_end
harness_exchange_until(int fd, const void *out, size_t n,
                       struct harness_buf *in, int timeout_ms,
                       int (*done)(const struct harness_buf *, void *),
                       void *arg)
{
    return pump(fd, out, n, 0, in, harness_now_ms() + timeout_ms, done, arg);
}

static int
bound_socket(unsigned *port, int backlog)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int fd = loopback_socket(0, &sin, 0);

    if (fd < 0)
        return -1;
    /* No SO_REUSEADDR: nobody else may bind this port while we hold it. */
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0 ||
        (backlog > 0 && listen(fd, backlog) < 0)) {
        close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

int
harness_refusing_port(unsigned *port)
{
    /* Bound, never listening: Linux answers a connect with RST. */
    return bound_socket(port, 0);
}

int
harness_busy_port(unsigned *port)
{
    return bound_socket(port, 1);
}

/* ---- HTTP ------------------------------------------------------------- */

/* Copy header name's value (trimmed) from the header block into out. */
static void
header(const char *head, size_t head_len, const char *name, char *out,
       size_t len)
{
    size_t nlen = strlen(name);
    const char *p = strstr(head, "\r\n"), *end = head + head_len;

    out[0] = '\0';
    while (p != NULL && p + 2 < end) {
        p += 2;
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1, *e = strstr(v, "\r\n");

            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(out, len, "%.*s", (int)(e - v), v);
            return;
        }
        p = strstr(p, "\r\n");
    }
}

/*
 * Parse what has arrived; 1 when a whole response is in.  At EOF, a
 * response without Content-Length is whole: its body ran to the close.
 */
static int
http_parse_at(const struct harness_buf *in, struct harness_http_response *rs,
              int eof)
{
    const char *data = (const char *)in->data;
    const char *eoh = in->len > 0 ? strstr(data, "\r\n\r\n") : NULL;
    size_t head_len;
    char cl[32];
    int status;

    if (eoh == NULL)
        return 0;
    head_len = (size_t)(eoh - data) + 4;
    if (sscanf(data, "HTTP/1.%*d %3d", &status) != 1)
        return 0;
    header(data, head_len, "Content-Length", cl, sizeof cl);
    rs->content_length = cl[0] != '\0' ? strtol(cl, NULL, 10) : -1;
    if (rs->content_length < 0 && !eof)
        return 0;
    if (rs->content_length >= 0 &&
        in->len < head_len + (size_t)rs->content_length)
        return 0;
    rs->status = status;
    header(data, head_len, "X-Served-By", rs->served_by, sizeof rs->served_by);
    header(data, head_len, "Content-Type", rs->content_type,
           sizeof rs->content_type);
    header(data, head_len, "Connection", rs->connection, sizeof rs->connection);
    rs->body = data + head_len;
    rs->body_len = rs->content_length >= 0 ? (size_t)rs->content_length
                                           : in->len - head_len;
    rs->extra = in->len - head_len - rs->body_len;
    return 1;
}

static int
http_parse(const struct harness_buf *in, void *arg)
{
    return http_parse_at(in, arg, 0);
}

int
harness_http_raw(int fd, const void *req, size_t n,
                 struct harness_http_response *rs)
{
    long start = harness_now_ms();

    memset(rs, 0, sizeof *rs);
    rs->content_length = -1;
    rs->end =
        pump(fd, req, n, 0, &rs->raw, start + HARNESS_XFER_MS, http_parse, rs);
    rs->elapsed_ms = harness_now_ms() - start;
    if (rs->end == HARNESS_DONE ||
        (rs->end == HARNESS_EOF && http_parse_at(&rs->raw, rs, 1)))
        return 0;
    rs->status = 0;
    return -1;
}

int
harness_http(int fd, const struct harness_http_request *rq,
             struct harness_http_response *rs)
{
    struct harness_buf req = {0};
    char head[1024];
    int n, r;

    n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                 rq->method, rq->path);
    if (rq->body != NULL)
        n += snprintf(head + n, sizeof head - (size_t)n,
                      "Content-Length: %zu\r\n", rq->body_len);
    if (rq->close)
        n += snprintf(head + n, sizeof head - (size_t)n,
                      "Connection: close\r\n");
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    buf_append(&req, head, (size_t)n);
    if (rq->body != NULL)
        buf_append(&req, rq->body, rq->body_len);
    r = harness_http_raw(fd, req.data, req.len, rs);
    harness_buf_free(&req);
    return r;
}

int
harness_http_get(unsigned port, const char *path,
                 struct harness_http_response *rs)
{
    struct harness_http_request rq = {"GET", path, NULL, 0, 1};
    int fd = harness_connect(port), r;

    if (fd < 0) {
        memset(rs, 0, sizeof *rs);
        rs->end = HARNESS_ERROR;
        return -1;
    }
    r = harness_http(fd, &rq, rs);
    close(fd);
    return r;
}

void
harness_http_response_free(struct harness_http_response *rs)
{
    harness_buf_free(&rs->raw);
    rs->body = NULL;
}

unsigned
harness_served_port(const struct harness_http_response *rs)
{
    return rs->served_by[0] == ':' ? harness_port_of(rs->served_by) : 0;
}

/* ---- odds and ends ---------------------------------------------------- */

void
harness_random(void *buf, size_t n, uint32_t seed)
{
    unsigned char *p = buf;
    uint32_t x = seed != 0 ? seed : 1;

    /* xorshift32: reproducible bytes, so a failure can be replayed. */
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)(x >> 24);
    }
}

int
harness_contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    for (; *hay != '\0'; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return n == 0;
}
