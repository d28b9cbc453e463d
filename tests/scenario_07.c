/*
 * scenario_07.c - chapter 07 (leastconn): STRATEGY=least sends a new
 * client to the up backend with the fewest live connections, ties taken in
 * round-robin order; STRATEGY=rr ignores the load.  Held keep-alive
 * connections make the load; the counts must come back to zero however a
 * connection ended, or an idle pool would stop sharing its clients evenly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/*
 * How long a check of where clients go keeps trying.  Right after a burst
 * of clients, or on a loaded machine, Harbor may still be tearing the last
 * few down, and a connection counts until it has; a leaked count, or a
 * strategy that ignores the counts, spoils every try.
 */
#define SETTLE_MS 3000

/*
 * Three keep-alive connections leave one backend, H, holding two and the
 * other, O, holding one, which is then closed.  Of ten sequential clients
 * least sends all to O: it holds no connection, or one while the previous
 * client's is being torn down.  rr alternates regardless.  On a loaded
 * machine Harbor may lag two clients behind, and a tie sends one to H, so
 * batches are tried until SETTLE_MS; a least that ignores the load never
 * gets one right.
 */
static const struct {
    const char *strategy;
    int to_busy; /* of the 10 clients, how many H must serve */
} busy_cases[] = {
    {"STRATEGY=least", 0},
    {"STRATEGY=rr", 5},
};

START_TEST(new_clients_go_to_the_less_busy_backend_only_with_least)
{
    const char *env[] = {busy_cases[_i].strategy, NULL};
    struct harness_stage st;
    int fd[3], on[3], held[2] = {0, 0}, count[2], busy, lone;
    long deadline;

    harness_stage_up(&st, 2, "http", env);
    for (int i = 0; i < 3; i++) {
        fd[i] = harness_stage_hold(&st, &on[i]);
        held[on[i]]++;
    }
    ck_assert_msg(held[0] + held[1] == 3 && (held[0] == 2 || held[1] == 2),
                  "%s: three connections split %d/%d, want 2/1",
                  busy_cases[_i].strategy, held[0], held[1]);
    busy = held[1] == 2;
    lone = on[0] != busy ? 0 : on[1] != busy ? 1 : 2;
    harness_finish(fd[lone]);

    deadline = harness_now_ms() + SETTLE_MS;
    do {
        count[0] = count[1] = 0;
        harness_tally(&st, 10, count);
    } while (count[busy] != busy_cases[_i].to_busy &&
             harness_now_ms() < deadline);
    ck_assert_msg(count[busy] == busy_cases[_i].to_busy,
                  "%s: the backend holding 2 connections served %d of 10, "
                  "want %d",
                  busy_cases[_i].strategy, count[busy], busy_cases[_i].to_busy);
    for (int i = 0; i < 3; i++)
        if (i != lone)
            close(fd[i]);
    harness_stage_down(&st);
}
END_TEST

/* What each of the resetting clients sends before its RST, in turn. */
static const char *const resetting_clients[] = {
    NULL, /* connect, reset */
    "GET /partial HTTP/1.1\r\nHost: x\r\n",
    "GET /whole HTTP/1.1\r\nHost: x\r\n\r\n",
};

/*
 * Sequential rounds of 6 clients over 3 idle backends: with every count
 * at zero, least's ties go round-robin, 2 each.  A count that leaked up
 * keeps its backend out of every round, one that leaked down keeps it in
 * every pick, so the split never evens out; a count still falling from a
 * connection being torn down evens out in a round or two.
 */
static void
assert_rounds_even_out(const struct harness_stage *st)
{
    long deadline = harness_now_ms() + SETTLE_MS;
    int count[3];

    do {
        memset(count, 0, sizeof count);
        harness_tally(st, 6, count);
        if (count[0] == 2 && count[1] == 2 && count[2] == 2)
            return;
    } while (harness_now_ms() < deadline);
    ck_abort_msg("rounds of 6 never split 2/2/2 in %d ms; the last: %d/%d/%d",
                 SETTLE_MS, count[0], count[1], count[2]);
}

/* BACKENDS=D,A,B, D refusing, under least with no health checks. */
static const char *const dead_first_env[] = {"STRATEGY=least",
                                             "HEALTH_CHECK=off", NULL};

/*
 * BACKENDS=D,A,B with D refusing and no health checks, so D keeps its
 * turn: clients are reset mid-way, and clients meet D first and fail or
 * are retried.  Whether such a client is served is the next scenario's
 * point, not this one's: here every start must have had its done.  Then D
 * is brought up on its port, and the three idle backends must share
 * clients evenly.
 */
START_TEST(least_counts_return_to_zero_after_resets_and_failed_connects)
{
    struct harness_stage st;
    char needle[32];
    int dead = harness_stage_up_dead(&st, 3, dead_first_env);

    for (int i = 0; i < 20; i++) {
        const char *say = resetting_clients[i % COUNT(resetting_clients)];
        int fd = harness_connect(st.harbor->port);

        ck_assert_msg(fd >= 0, "client %d: connect: %s", i, strerror(errno));
        if (say != NULL)
            (void)harness_send_all(fd, say, strlen(say));
        harness_reset(fd);
    }
    for (int i = 0; i < 10; i++) {
        struct harness_http_response rs;

        if (harness_http_get(st.harbor->port, "/either", &rs) == 0)
            ck_assert_msg(
                rs.status == 200 && harness_stage_backend(&st, &rs) > 0,
                "client %d: %d from \"%s\"", i, rs.status, rs.served_by);
        else
            ck_assert_msg(rs.end == HARNESS_EOF || rs.end == HARNESS_RESET,
                          "client %d: %s, want served or closed", i,
                          harness_end_name(rs.end));
        harness_http_response_free(&rs);
    }
    /* After the stage's mark, D's address is only named when a connect
     * failed. */
    snprintf(needle, sizeof needle, "127.0.0.1:%u", st.port[0]);
    ck_assert_msg(harness_wait_log(st.harbor, needle, HARNESS_PROMPT_MS) == 0,
                  "no client ever tried D: %s", harness_log_tail(st.harbor));

    /* D's port was bound but never listening: free it and serve on it. */
    close(dead);
    harness_stage_echo(&st, 0, "http", st.port[0]);
    assert_rounds_even_out(&st);
    harness_stage_down(&st);
}
END_TEST

/*
 * A failed connect under least: the client must still be served while
 * retries are left and another backend is up.  BACKENDS=D,A,B with D
 * refusing and no health checks; A and B hold a keep-alive connection
 * each, so D, which never keeps one, always has the fewest.  A retry that
 * only asks least again gets D again, and the client is closed.
 */
START_TEST(least_retries_a_failed_connect_on_a_busier_backend)
{
    struct harness_stage st;
    int fd[4], nfd = 0, held[3] = {0, 0, 0}, count[3] = {0, 0, 0};
    int dead = harness_stage_up_dead(&st, 3, dead_first_env);

    while ((held[1] == 0 || held[2] == 0) && nfd < COUNT(fd)) {
        int on;

        fd[nfd++] = harness_stage_hold(&st, &on);
        held[on]++;
    }
    ck_assert_msg(held[1] > 0 && held[2] > 0, "%d held connections, none on %s",
                  nfd, held[1] == 0 ? "A" : "B");
    harness_tally(&st, 6, count);
    ck_assert_int_eq(count[1] + count[2], 6);
    for (int i = 0; i < nfd; i++)
        close(fd[i]);
    harness_stage_down(&st);
    close(dead);
}
END_TEST

/* STRATEGY has a fixed set of values; anything else exits 2. */
static const char *const bad_strategies[] = {"lc", "", "LEAST", "least "};

START_TEST(bad_strategy_exits_2_with_one_stderr_line)
{
    harness_assert_config_error("STRATEGY", bad_strategies[_i], NULL, NULL);
}
END_TEST

void
scenarios_07(Suite *s)
{
    TCase *tc;

    tc = harness_tcase(s, "leastconn", 7, NULL);
    tcase_add_loop_test(tc,
                        new_clients_go_to_the_less_busy_backend_only_with_least,
                        0, COUNT(busy_cases));
    tcase_add_test(
        tc, least_counts_return_to_zero_after_resets_and_failed_connects);
    tcase_add_test(tc, least_retries_a_failed_connect_on_a_busier_backend);

    tc = harness_tcase(s, "leastconn-config", 7, NULL);
    tcase_add_loop_test(tc, bad_strategy_exits_2_with_one_stderr_line, 0,
                        COUNT(bad_strategies));
}
