/*
 * scenario_09_ex.c - the opt-in test of chapter 09's Build-it exercise: a
 * gauge of the clients that wait for an in-flight slot,
 * harbor_connections_queued.  It runs only with HARBOR_EXERCISES=1, and
 * fails against the chapter as it is, which has no such gauge.  The
 * answer is docs/answers/09-queued.patch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define QUEUED "harbor_connections_queued"

/*
 * MAX_INFLIGHT=1 and no queue timeout: one client holds the slot, two
 * more wait for it.  The gauge says 2, a gauge with its HELP and TYPE;
 * when the holder leaves one waiter takes the slot (1), and when that one
 * leaves, the last (0).
 */
START_TEST(queued_counts_the_clients_waiting_for_a_slot)
{
    const char *env[] = {"HEALTH_CHECK=off", "MAX_INFLIGHT=1",
                         "QUEUE_TIMEOUT_MS=0", NULL};
    struct harness_stage st;
    unsigned port;
    int held, b, waiting[2];
    char *body, type[64], help[64];

    harness_stage_up(&st, 1, "http", env);
    port = harness_metrics_port(st.harbor);
    body = harness_metrics_scrape(port);
    snprintf(type, sizeof type, "# TYPE %s gauge\n", QUEUED);
    snprintf(help, sizeof help, "# HELP %s ", QUEUED);
    ck_assert_msg(strstr(body, type) != NULL && strstr(body, help) != NULL,
                  "no HELP and TYPE gauge for %s", QUEUED);
    free(body);
    harness_wait_metric(port, QUEUED, 0);
    held = harness_stage_hold(&st, &b);
    for (int i = 0; i < 2; i++) {
        waiting[i] = harness_connect(st.harbor->port);
        ck_assert_msg(waiting[i] >= 0, "connect: %s", strerror(errno));
    }
    harness_wait_metric(port, QUEUED, 2);
    harness_wait_metric(port, "harbor_connections_inflight", 1);
    harness_finish(held);
    harness_wait_metric(port, QUEUED, 1);
    harness_wait_metric(port, "harbor_connections_inflight", 1);
    /* Which waiter has the slot is the kernel's choice: end both. */
    shutdown(waiting[0], SHUT_WR);
    shutdown(waiting[1], SHUT_WR);
    harness_wait_metric(port, QUEUED, 0);
    harness_wait_metric(port, "harbor_connections_inflight", 0);
    close(waiting[0]);
    close(waiting[1]);
    harness_stage_down(&st);
}
END_TEST

void
exercises_09(Suite *s)
{
    TCase *tc = harness_tcase(s, "queued", 9, "ch09-ex exercise");

    tcase_add_test(tc, queued_counts_the_clients_waiting_for_a_slot);
}
