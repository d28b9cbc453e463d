/*
 * health.h - the rise/fall state machine of a health check, HAProxy style.
 *
 * A backend goes down after `fall` failed checks in a row and comes back
 * after `rise` passed checks in a row.  A single result against the current
 * state only counts, so one lost packet does not flap a backend.  Pure: the
 * caller serializes (struct backend keeps one under its own lock).
 */
#ifndef HARBOR_HEALTH_H
#define HARBOR_HEALTH_H

struct health {
    int up;     /* the current state: 1 up, 0 down */
    int streak; /* results in a row that disagree with up */
};

/* A new backend starts up, with a clean streak. */
void health_init(struct health *hs);

/* Record one result (ok: 1 passed, 0 failed).  Returns 1 if up flipped. */
int health_record(struct health *hs, int ok, int rise, int fall);

#endif
