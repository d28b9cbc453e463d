/*
 * scenario_01_ex.c - the opt-in test of chapter 01's Build-it exercise, a
 * random strategy (random.c).  It runs only with HARBOR_EXERCISES=1, and
 * fails against the chapter as it is: round-robin takes strict turns.
 * The answer is docs/answers/01-random.patch.
 *
 * Chapter 01 has no STRATEGY variable, so the exercise puts random_init()
 * in place of rr_init(); from chapter 07 on, where STRATEGY chooses, the
 * same test asks for STRATEGY=random, and chapter 01 ignores it.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"

/*
 * 200 clients over two backends, one after another.  A fair random pick
 * serves each backend Binomial(200, 1/2) times: 100 on average, with a
 * standard deviation of about 7, so the bounds of a quarter either side
 * (50 to 150) are seven deviations out: a correct strategy fails them
 * about once in 10^12 runs.  Of the 199 pairs of clients in a row, about
 * half go to the same backend twice; round-robin never does that, and a
 * fair coin does it fewer than 20 times less than once in 10^30 runs.
 */
#define CLIENTS     200
#define MIN_SERVED  (CLIENTS / 4)
#define MIN_REPEATS 20

START_TEST(random_spreads_clients_without_taking_turns)
{
    static const char *const env[] = {"STRATEGY=random", NULL};
    struct harness_stage st;
    int count[2] = {0, 0}, prev = -1, repeats = 0;

    harness_stage_up(&st, 2, "http", env);
    for (int i = 0; i < CLIENTS; i++) {
        int b;

        b = harness_stage_get(&st, "/random");
        count[b]++;
        repeats += b == prev;
        prev = b;
    }
    ck_assert_msg(count[0] >= MIN_SERVED && count[1] >= MIN_SERVED,
                  "%d clients split %d/%d; each backend should serve at "
                  "least %d",
                  CLIENTS, count[0], count[1], MIN_SERVED);
    ck_assert_msg(repeats >= MIN_REPEATS,
                  "%d of %d clients in a row went to the same backend as "
                  "the one before; a random pick does that about half the "
                  "time, turns never",
                  repeats, CLIENTS - 1);
    harness_stage_down(&st);
}
END_TEST

void
exercises_01(Suite *s)
{
    TCase *tc = harness_tcase(s, "random", 1, "ch01-ex exercise");

    tcase_add_test(tc, random_spreads_clients_without_taking_turns);
}
