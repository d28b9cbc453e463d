/*
 * least.h - least-connections, a strategy of this chapter's own (least.c).
 */
#ifndef HARBOR_LEAST_H
#define HARBOR_LEAST_H

#include "strategy.h"

/* Make s least-connections.  0, or -1 with errno (ENOMEM). */
int least_init(struct strategy *s);

#endif
