/*
 * bridge.h - copy bytes both ways between a client and its backend
 * (bridge.c).
 */
#ifndef HARBOR_BRIDGE_H
#define HARBOR_BRIDGE_H

#include <stdatomic.h>

#define BRIDGE_PIPE_LEN (64 * 1024)

struct workers;

/* What a bridge did: bytes each way, and why it ended. */
struct bridge_stats {
    unsigned long long up;   /* client to backend */
    unsigned long long down; /* backend to client */
    int err; /* 0 for EOF both ways, ETIMEDOUT when idle, else the errno */
};

/*
 * Copy both ways between cfd and bfd until both directions end, or no byte
 * has moved either way for idle_ms (0: no limit).  Every byte written is
 * added to moved[0] (up) or moved[1] (down) as it goes.  0 or -1.
 */
int bridge_run(struct workers *w, int cfd, int bfd, int idle_ms,
               atomic_ullong moved[2], struct bridge_stats *st);
/* Close the calling thread's pipe, if it has one: it is idle for long. */
void bridge_forget(void);

#endif
