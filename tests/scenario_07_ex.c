/*
 * scenario_07_ex.c - the opt-in tests of chapter 07's Build-it exercises:
 * power of two choices (p2c.c, STRATEGY=p2c), which picks two different up
 * backends at random and takes the one with fewer live connections; and
 * weighted round-robin (wrr.c, STRATEGY=wrr with WEIGHTS).  They run only
 * with HARBOR_EXERCISES=1, and fail against the chapter as it is, which
 * refuses both names.  The answers are docs/answers/07-p2c.patch and
 * docs/answers/07-wrr.patch.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static const char *const p2c_env[] = {"STRATEGY=p2c", NULL};

/*
 * Nine keep-alive connections over A, B and C; the backend that holds the
 * most, H, keeps them, and the others are closed.  H now holds two or
 * more, the other two none, so every pair p2c can draw has a backend with
 * fewer connections than H: of 60 clients one after another, H must serve
 * none.  A strategy that draws one backend at random sends H a third of
 * them, and 3 or fewer about once in 10^7 runs.
 *
 * A closed connection counts until Harbor has torn it down, a moment after
 * the client saw its end; so do those of the clients counted here, one at
 * a time.  A few clients first, not counted, give the closed ones that
 * moment; after that only the last client's connection can still count,
 * and one connection is fewer than H's.
 */
#define HELD        9
#define WARM_UP     5
#define CLIENTS     60
#define MAX_TO_BUSY 3

START_TEST(p2c_sends_new_clients_away_from_a_busy_backend)
{
    struct harness_stage st;
    int fd[HELD], on[HELD], held[3] = {0, 0, 0}, count[3] = {0, 0, 0};
    int ignored[3] = {0, 0, 0}, busy = 0;

    harness_stage_up(&st, 3, "http", p2c_env);
    for (int i = 0; i < HELD; i++) {
        fd[i] = harness_stage_hold(&st, &on[i]);
        held[on[i]]++;
    }
    for (int b = 1; b < 3; b++)
        if (held[b] > held[busy])
            busy = b;
    ck_assert_msg(held[busy] >= 2, "%d connections split %d/%d/%d", HELD,
                  held[0], held[1], held[2]);
    for (int i = 0; i < HELD; i++)
        if (on[i] != busy)
            harness_finish(fd[i]);

    harness_tally(&st, WARM_UP, ignored);
    harness_tally(&st, CLIENTS, count);
    ck_assert_msg(count[busy] <= MAX_TO_BUSY,
                  "the backend holding %d connections served %d of %d new "
                  "clients (%d/%d/%d); want at most %d",
                  held[busy], count[busy], CLIENTS, count[0], count[1],
                  count[2], MAX_TO_BUSY);
    for (int i = 0; i < HELD; i++)
        if (on[i] == busy)
            close(fd[i]);
    harness_stage_down(&st);
}
END_TEST

/*
 * With nothing held, every pair is a tie, and the two drawn must change
 * from client to client: of 60 clients over A, B and C, each backend
 * serves some.  A p2c that always drew the same two would leave the third
 * idle.  (A fair draw leaves one idle about once in 10^10 runs.)
 */
START_TEST(p2c_spreads_idle_clients_over_every_backend)
{
    struct harness_stage st;
    int count[3] = {0, 0, 0};

    harness_stage_up(&st, 3, "http", p2c_env);
    harness_tally(&st, 60, count);
    ck_assert_msg(count[0] > 0 && count[1] > 0 && count[2] > 0,
                  "60 idle clients split %d/%d/%d: a backend never drawn",
                  count[0], count[1], count[2]);
    harness_stage_down(&st);
}
END_TEST

/*
 * Weighted round-robin, STRATEGY=wrr with WEIGHTS=3,2,1 over A, B and C:
 * of 60 clients one after another (ten rounds of the weights' sum), A
 * serves 30, B 20 and C 10, exactly; and spread out: one backend never
 * serves three clients in a row, as A would in rounds of A A A B B C.
 */
START_TEST(wrr_serves_backends_in_proportion_to_their_weights)
{
    static const char *const env[] = {"STRATEGY=wrr", "WEIGHTS=3,2,1", NULL};
    struct harness_stage st;
    int count[3] = {0, 0, 0}, run = 0, prev = -1;

    harness_stage_up(&st, 3, "http", env);
    for (int i = 0; i < 60; i++) {
        int b;

        b = harness_stage_get(&st, "/wrr");
        count[b]++;
        run = b == prev ? run + 1 : 1;
        prev = b;
        ck_assert_msg(run < 3, "clients %d to %d all went to backend %d", i - 2,
                      i, b);
    }
    ck_assert_msg(count[0] == 30 && count[1] == 20 && count[2] == 10,
                  "60 clients with WEIGHTS=3,2,1 split %d/%d/%d, want "
                  "30/20/10",
                  count[0], count[1], count[2]);
    harness_stage_down(&st);
}
END_TEST

/* Each a WEIGHTS for two backends that Harbor must refuse, with exit 2
 * and the one stderr line that names WEIGHTS. */
static const char *const bad_weights[] = {
    "3",     /* fewer weights than backends */
    "3,1,1", /* more */
    "3,0",   /* a weight is 1 to 100 */
    "3,101", /* too large */
    "3,x",   /* not a number */
    "3,,1",  /* an empty one */
    "",      /* set, but empty */
};

START_TEST(bad_weights_exit_2_with_one_stderr_line)
{
    static const char *const env[] = {"BACKENDS=127.0.0.1:9,127.0.0.1:10",
                                      "STRATEGY=wrr", NULL};

    harness_assert_config_error("WEIGHTS", bad_weights[_i], env, NULL);
}
END_TEST

void
exercises_07(Suite *s)
{
    TCase *tc = harness_tcase(s, "p2c", 7, "ch07-ex exercise");

    tcase_add_test(tc, p2c_sends_new_clients_away_from_a_busy_backend);
    tcase_add_test(tc, p2c_spreads_idle_clients_over_every_backend);

    tc = harness_tcase(s, "wrr", 7, "ch07-ex exercise");
    tcase_add_test(tc, wrr_serves_backends_in_proportion_to_their_weights);
    tcase_add_loop_test(tc, bad_weights_exit_2_with_one_stderr_line, 0,
                        (int)(sizeof bad_weights / sizeof bad_weights[0]));
}
