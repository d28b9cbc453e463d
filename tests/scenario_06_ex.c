/*
 * scenario_06_ex.c - the opt-in test of chapter 06's Build-it exercise:
 * spread the retries.  It runs only with HARBOR_EXERCISES=1, and fails
 * against the chapter as it is, whose retry takes the first up backend not
 * tried yet, so that every client of a dead backend lands on the backend
 * after it.  The answer is docs/answers/06-spread-retries.patch.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/*
 * BACKENDS=A,B,C with A refusing and no health checks, so A stays in the
 * turn and a third of the clients meet it first.  A failed connect is
 * logged with the backend's address, and nothing else names A after the
 * stage's mark, so the test knows which clients were retried.  Those
 * must be spread over B and C: each serves at least a quarter of them.
 * An answer that takes turns splits them exactly; the bound leaves room
 * for one that draws at random (with 50 retried clients, a fair coin
 * misses it about once in 3,000 runs).
 */
#define CLIENTS     150
#define MIN_RETRIED 40 /* round-robin sends 50 of 150 to A first */

START_TEST(retried_clients_are_spread_over_the_other_backends)
{
    static const char *const env[] = {"HEALTH_CHECK=off", NULL};
    struct harness_stage st;
    int dead = harness_stage_up_dead(&st, 3, env), retried[3] = {0, 0, 0};
    int met = 0;
    char needle[32];

    snprintf(needle, sizeof needle, "127.0.0.1:%u", st.port[0]);
    for (int i = 0; i < CLIENTS; i++) {
        int b;

        harness_log_mark(st.harbor);
        b = harness_stage_get(&st, "/spread");
        ck_assert_msg(b > 0, "client %d went to the dead backend", i);
        /* The failed connect was logged before the retry served it. */
        if (harness_wait_log(st.harbor, needle, 0) == 0) {
            met++;
            retried[b]++;
        }
    }
    ck_assert_msg(met >= MIN_RETRIED, "only %d of %d clients met A first", met,
                  CLIENTS);
    ck_assert_msg(retried[1] * 4 >= met && retried[2] * 4 >= met,
                  "of the %d clients retried after A, B served %d and C %d; "
                  "each should serve at least a quarter",
                  met, retried[1], retried[2]);
    harness_stage_down(&st);
    close(dead);
}
END_TEST

void
exercises_06(Suite *s)
{
    TCase *tc = harness_tcase(s, "spread", 6, "ch06-ex exercise");

    tcase_add_test(tc, retried_clients_are_spread_over_the_other_backends);
}
