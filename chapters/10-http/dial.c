/*
 * dial.c - connect to a backend, within a deadline.
 *
 * A blocking connect() returns when the backend accepts or refuses; one
 * that never answers holds the caller for minutes.  Here the wait has a
 * limit of our choosing, CONNECT_TIMEOUT_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dial.h"

/*
 * Connect to the backend within timeout_ms.  A blocking connect() to a host
 * that never answers waits out the kernel's SYN retries: over two minutes
 * on Linux.  So: make the socket non-blocking, start the connect (it says
 * EINPROGRESS), poll() for writable until the deadline, read the outcome
 * with SO_ERROR, and make the socket blocking again for the bridge.
 * Returns the fd, or -1 with errno (ETIMEDOUT when the deadline passed).
 */
int
dial(const struct addr *a, int timeout_ms)
{
    struct pollfd pfd;
    socklen_t len = sizeof(int);
    int fd, flags, err = 0, rc, saved;

    if ((fd = socket(a->sa.ss_family, SOCK_STREAM, 0)) < 0)
        return -1;
    flags = fcntl(fd, F_GETFL);
    if (timeout_ms > 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        goto fail;
    if (connect(fd, (const struct sockaddr *)&a->sa, a->salen) == 0)
        goto done; /* loopback can connect at once */
    if (errno != EINPROGRESS)
        goto fail;
    pfd.fd = fd;
    pfd.events = POLLOUT;
    do
        rc = poll(&pfd, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        goto fail;
    if (rc == 0) {
        errno = ETIMEDOUT;
        goto fail;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        goto fail;
    if (err != 0) {
        errno = err;
        goto fail;
    }
done:
    if (fcntl(fd, F_SETFL, flags) < 0)
        goto fail;
    return fd;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/*
 * Failures that are this machine's own, not the backend's: out of
 * descriptors, kernel buffers, memory or ephemeral ports.  A backend is
 * not to blame for them, and a caller that keeps score must not count
 * them against it.
 */
int
dial_local(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
           err == EADDRNOTAVAIL;
}
