/*
 * dial.h - connect to a backend (dial.c).
 */
#ifndef HARBOR_DIAL_H
#define HARBOR_DIAL_H

#include "config.h"

/*
 * Connect to a within timeout_ms (0: as long as the kernel tries).  Returns
 * a blocking fd, or -1 with errno set (ETIMEDOUT when the time ran out).
 */
int dial(const struct addr *a, int timeout_ms);

/* 1 when err, from dial(), is a shortage here rather than the backend's. */
int dial_local(int err);

#endif
