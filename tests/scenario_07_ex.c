/*
 * scenario_07_ex.c - the opt-in tests of chapter 07's Build-it exercise,
 * power of two choices (p2c.c, STRATEGY=p2c): pick two different up
 * backends at random and take the one with fewer live connections.  They
 * run only with HARBOR_EXERCISES=1, and fail against the chapter as it is,
 * which refuses STRATEGY=p2c.  The answer is docs/answers/07-p2c.patch.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static const char *const p2c_env[] = {"STRATEGY=p2c", NULL};

/* A keep-alive connection through Harbor, and the backend it went to. */
static int
held_connection(const struct harness_stage *st, int *backend)
{
    struct harness_http_request rq = {"GET", "/hold", NULL, 0, 0};
    struct harness_http_response rs;
    int fd = harness_connect(st->harbor->port);

    ck_assert_msg(fd >= 0, "connect harbor: %s", strerror(errno));
    ck_assert_msg(harness_http(fd, &rq, &rs) == 0, "held connection: %s",
                  harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 200);
    *backend = harness_stage_backend(st, &rs);
    ck_assert_msg(*backend >= 0, "X-Served-By \"%s\"", rs.served_by);
    harness_http_response_free(&rs);
    return fd;
}

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
        fd[i] = held_connection(&st, &on[i]);
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

void
exercises_07(Suite *s)
{
    TCase *tc = harness_tcase(s, "p2c", 7, "ch07-ex exercise");

    tcase_add_test(tc, p2c_sends_new_clients_away_from_a_busy_backend);
    tcase_add_test(tc, p2c_spreads_idle_clients_over_every_backend);
}
