/*
 * dial.c - connect to a backend.
 *
 * The plainest connect there is: a blocking socket() and connect(), which
 * return when the backend accepted or refused.  How long a backend that
 * never answers can make us wait is chapter 02's lesson.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dial.h"

int
dial(const struct addr *a)
{
    int fd, saved;

    if ((fd = socket(a->sa.ss_family, SOCK_STREAM, 0)) < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&a->sa, a->salen) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
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
