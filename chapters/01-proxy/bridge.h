/*
 * bridge.h - copy bytes both ways between a client and its backend
 * (bridge.c).
 */
#ifndef HARBOR_BRIDGE_H
#define HARBOR_BRIDGE_H

#define BRIDGE_BUF_SIZE (16 * 1024)

/* What a bridge did: bytes each way, and why it ended. */
struct bridge_stats {
    unsigned long long up;   /* client to backend */
    unsigned long long down; /* backend to client */
    int err;                 /* 0 for EOF both ways, else the first errno */
};

/* Copy both ways between cfd and bfd until both directions end.  0 or -1. */
int bridge_run(int cfd, int bfd, struct bridge_stats *st);

#endif
