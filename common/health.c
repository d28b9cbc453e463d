/*
 * health.c - the rise/fall state machine (see health.h).
 *
 * Two numbers are enough: the state, and how many results in a row have
 * disagreed with it.  An agreeing result resets the streak, which is what
 * makes "in a row" true.
 */
#include "health.h"

void
health_init(struct health *hs)
{
    hs->up = 1;
    hs->streak = 0;
}

int
health_record(struct health *hs, int ok, int rise, int fall)
{
    ok = ok != 0;
    if (ok == hs->up) {
        hs->streak = 0;
        return 0;
    }
    if (++hs->streak < (hs->up ? fall : rise))
        return 0;
    hs->up = ok;
    hs->streak = 0;
    return 1;
}
