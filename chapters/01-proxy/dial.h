/*
 * dial.h - connect to a backend (dial.c).
 */
#ifndef HARBOR_DIAL_H
#define HARBOR_DIAL_H

#include "config.h"

/* Connect to a.  Returns the fd, or -1 with errno set. */
int dial(const struct addr *a);

/* 1 when err, from dial(), is a shortage here rather than the backend's. */
int dial_local(int err);

#endif
