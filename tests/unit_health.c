/*
 * unit_health.c - the rise/fall state machine of common/health.c.
 *
 * Each case is a string of check results ('+' passed, '-' failed) and the
 * state expected after each one ('U' up, 'D' down), so a reader sees the
 * whole history of a backend on one line.
 */
#include <string.h>

#include "health.h"
#include "unit.h"

static const struct {
    const char *name;
    int rise, fall;
    const char *results; /* '+' or '-' */
    const char *states;  /* 'U' or 'D' after each result */
} histories[] = {
    {"starts up and stays up on passes", 2, 3, "+++", "UUU"},
    {"down after fall failures in a row", 2, 3, "---", "UUD"},
    {"a pass resets the fall streak", 2, 3, "--+--", "UUUUU"},
    {"up again after rise passes in a row", 2, 3, "---++", "UUDDU"},
    {"a failure resets the rise streak", 2, 3, "---+-+", "UUDDDD"},
    {"flapping input never flips", 2, 3, "-+-+-+-+-+", "UUUUUUUUUU"},
    {"rise 1 and fall 1 follow every result", 1, 1, "-+-+", "DUDU"},
    {"long outage then recovery", 3, 2, "--------+++", "UDDDDDDDDDU"},
};

START_TEST(health_follows_history)
{
    struct health hs;
    const char *r = histories[_i].results, *want = histories[_i].states;
    size_t k;
    int was, flipped;

    health_init(&hs);
    for (k = 0; r[k] != '\0'; k++) {
        was = hs.up;
        flipped = health_record(&hs, r[k] == '+', histories[_i].rise,
                                histories[_i].fall);
        ck_assert_msg(hs.up == (want[k] == 'U'),
                      "%s: after result %zu (%c) state is %s, want %c",
                      histories[_i].name, k + 1, r[k], hs.up ? "up" : "down",
                      want[k]);
        ck_assert_int_eq(flipped, was != hs.up);
    }
}
END_TEST

START_TEST(health_starts_up_with_clean_streak)
{
    struct health hs;

    memset(&hs, 0xff, sizeof(hs));
    health_init(&hs);
    ck_assert_int_eq(hs.up, 1);
    ck_assert_int_eq(hs.streak, 0);
}
END_TEST

Suite *
health_suite(void)
{
    Suite *s = suite_create("health");
    TCase *tc = tcase_create("rise_fall");

    tcase_add_test(tc, health_starts_up_with_clean_streak);
    tcase_add_loop_test(tc, health_follows_history, 0,
                        (int)(sizeof(histories) / sizeof(histories[0])));
    suite_add_tcase(s, tc);
    return s;
}
