/*
 * chapter_risefall.c - the rise/fall state machine of chapter 06
 * (risefall.c), run against that chapter's copy and every later one's.
 *
 * Each history is a string of check results ('+' passed, '-' failed) and
 * the state expected after each one ('U' up, 'D' down), so a reader sees
 * the whole life of a backend on one line.  Check's knobs: CK_RUN_CASE,
 * CK_INCLUDE_TAGS=ch06, CK_FORK=no (for gdb), CK_VERBOSITY=verbose.
 */
#include <stdlib.h>

#include <check.h>

#include "risefall.h"

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
    {"failures while down change nothing", 2, 3, "------++", "UUDDDDDU"},
    {"each flip needs a whole new streak", 2, 3, "---++---", "UUDDUUUD"},
    {"flapping input never flips", 2, 3, "-+-+-+-+-+", "UUUUUUUUUU"},
    {"rise 1 and fall 1 follow every result", 1, 1, "-+-+", "DUDU"},
    {"fall 1 goes down at once, rise 3 waits", 3, 1, "-++-+++", "DDDDDDU"},
    {"long outage then recovery", 3, 2, "--------+++", "UDDDDDDDDDU"},
};

/* A new backend, as the caller sets one up: up, with no streak. */
static struct risefall
fresh(void)
{
    struct risefall rf = {1, 0};

    return rf;
}

/* Every step: the state expected, and a flip reported exactly when the
 * state changed, and at no other step. */
START_TEST(risefall_follows_history)
{
    struct risefall rf = fresh();
    const char *r = histories[_i].results, *want = histories[_i].states;
    size_t k;
    int was, flipped, flips = 0, changes = 0;

    for (k = 0; r[k] != '\0'; k++) {
        was = rf.up;
        flipped = risefall_record(&rf, r[k] == '+', histories[_i].rise,
                                  histories[_i].fall);
        ck_assert_msg(rf.up == (want[k] == 'U'),
                      "%s: after result %zu (%c) state is %s, want %c",
                      histories[_i].name, k + 1, r[k], rf.up ? "up" : "down",
                      want[k]);
        ck_assert_msg(flipped == (was != rf.up),
                      "%s: result %zu (%c) returned %d, state %s -> %s",
                      histories[_i].name, k + 1, r[k], flipped,
                      was ? "up" : "down", rf.up ? "up" : "down");
        flips += flipped;
        changes += k > 0 && want[k] != want[k - 1];
    }
    changes += want[0] == 'D'; /* from the fresh state, up */
    ck_assert_int_eq(flips, changes);
}
END_TEST

/* streak counts the results in a row that disagree with the state, and is
 * back at 0 after a flip and after any result that agrees. */
START_TEST(risefall_streak_counts_disagreement)
{
    static const struct {
        int ok;
        int up, streak;
    } steps[] = {
        {1, 1, 0}, {0, 1, 1}, {0, 1, 2}, {1, 1, 0}, {0, 1, 1}, {0, 1, 2},
        {0, 0, 0}, {0, 0, 0}, {1, 0, 1}, {0, 0, 0}, {1, 0, 1}, {1, 1, 0},
    };
    struct risefall rf = fresh();
    size_t k;

    for (k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        risefall_record(&rf, steps[k].ok, 2, 3);
        ck_assert_msg(rf.up == steps[k].up && rf.streak == steps[k].streak,
                      "step %zu: up %d streak %d, want up %d streak %d", k + 1,
                      rf.up, rf.streak, steps[k].up, steps[k].streak);
    }
}
END_TEST

/* ok is a truth value: any non-zero result is a pass. */
START_TEST(risefall_any_nonzero_ok_is_a_pass)
{
    struct risefall rf = fresh();

    ck_assert_int_eq(risefall_record(&rf, 0, 2, 1), 1);
    ck_assert_int_eq(rf.up, 0);
    ck_assert_int_eq(risefall_record(&rf, 7, 2, 1), 0);
    ck_assert_int_eq(risefall_record(&rf, -1, 2, 1), 1);
    ck_assert_int_eq(rf.up, 1); /* 1, not -1 */
    ck_assert_int_eq(rf.streak, 0);
    ck_assert_int_eq(risefall_record(&rf, 200, 2, 1), 0);
    ck_assert_int_eq(rf.up, 1);
}
END_TEST

/* The machine keeps no state of its own: two backends never mix. */
START_TEST(risefall_backends_are_independent)
{
    struct risefall a = fresh(), b = fresh();

    risefall_record(&a, 0, 2, 2);
    risefall_record(&b, 1, 2, 2);
    ck_assert_int_eq(risefall_record(&a, 0, 2, 2), 1);
    ck_assert_int_eq(risefall_record(&b, 0, 2, 2), 0);
    ck_assert_int_eq(a.up, 0);
    ck_assert_int_eq(b.up, 1);
    ck_assert_int_eq(b.streak, 1);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("risefall");
    TCase *tc = tcase_create("risefall");
    SRunner *sr;
    int failed;

    tcase_set_tags(tc, "ch06");
    tcase_add_loop_test(tc, risefall_follows_history, 0,
                        (int)(sizeof(histories) / sizeof(histories[0])));
    tcase_add_test(tc, risefall_streak_counts_disagreement);
    tcase_add_test(tc, risefall_any_nonzero_ok_is_a_pass);
    tcase_add_test(tc, risefall_backends_are_independent);
    suite_add_tcase(s, tc);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY, default normal */
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
