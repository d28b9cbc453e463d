/* risefall.c - the rise/fall state machine; see risefall.h. */
#include "risefall.h"

int
risefall_record(struct risefall *rf, int ok, int rise, int fall)
{
    ok = ok != 0;
    if (ok == rf->up) {
        rf->streak = 0; /* what makes "in a row" true */
        return 0;
    }
    if (++rf->streak < (rf->up ? fall : rise))
        return 0;
    rf->up = ok;
    rf->streak = 0;
    return 1;
}
