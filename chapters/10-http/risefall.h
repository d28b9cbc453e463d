/*
 * risefall.h - a health check's rise/fall state machine, HAProxy style:
 * down after `fall` failures in a row, up after `rise` passes in a row, so
 * one lost packet does not flap a backend.  Pure: the caller serializes.
 */
#ifndef HARBOR_RISEFALL_H
#define HARBOR_RISEFALL_H

struct risefall {
    int up;     /* the state: 1 up, 0 down; a new backend starts up */
    int streak; /* results in a row that disagree with up */
};

/* Record one result (ok: 1 passed, 0 failed).  Returns 1 if up flipped. */
int risefall_record(struct risefall *rf, int ok, int rise, int fall);

#endif
