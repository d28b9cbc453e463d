/*
 * 01-own-scenario.c - a worked example of "a scenario of your own", for
 * the break-it patch docs/exercises/01-no-sigpipe.patch, which no
 * scenario of chapter 01 catches.  Copy it to tests/scenario_01_own.c
 * (any tests/scenario_NN*.c is built into build/tests/scenarios); it
 * defines scenarios_own(), which tests/scenarios.c calls when
 * HARBOR_EXERCISES is set.  Then:
 *
 *   make tests
 *   HARBOR_EXERCISES=1 CK_INCLUDE_TAGS=own HARBOR_BIN=build/harbor-01 \
 *       HARBOR_CH=01 ECHO_BIN=build/echo build/tests/scenarios
 *
 * passes, and fails against a Harbor built with the patch; or let
 * scripts/check-exercises do both:
 *
 *   OWN=tests/scenario_01_own.c scripts/check-exercises 01-no-sigpipe
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "harness.h"

/*
 * What no chapter 01 scenario does: make Harbor write to a client that
 * has reset its connection.  The client asks for a body far larger than
 * any buffer on the way, reads a little of it and resets, while Harbor is
 * still writing the rest.  With SIGPIPE ignored, a write that fails says
 * EPIPE or ECONNRESET and that one connection ends: at LOG_LEVEL=debug
 * Harbor logs one line for it, naming the client.  Without, a write that
 * says EPIPE raises SIGPIPE first, which ends the whole process.
 *
 * Which of the two a write says is a race: the first call to meet the
 * reset (the reply pump's write, or the other pump's read) takes the
 * ECONNRESET, and only a write after that gets EPIPE.  So the client does
 * it TRIES times; one try in two or so loses the race, and all of them
 * get through without a SIGPIPE about once in a million runs.
 */
#define TRIES 20

static void
reset_mid_body(struct harness_proc *harbor, int try)
{
    static const char req[] = "GET /bytes/67108864 HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n";
    static char buf[64 * 1024];
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    enum harness_end end;
    char client[32];
    int fd = harness_connect(harbor->port), status = 0;

    ck_assert_msg(fd >= 0, "try %d: connect harbor: %s", try, strerror(errno));
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&me, &len), 0);
    snprintf(client, sizeof client, "127.0.0.1:%u", ntohs(me.sin_port));
    ck_assert_int_eq(harness_send_all(fd, req, sizeof req - 1), 0);
    end = harness_read_n(fd, buf, sizeof buf, HARNESS_XFER_MS);
    ck_assert_msg(end == HARNESS_DONE, "try %d: the first 64 KiB: %s", try,
                  harness_end_name(end));
    harness_reset(fd);

    /* The connection's debug line, which names the client: Harbor is
     * done with it. */
    if (harness_wait_log(harbor, client, HARNESS_PROMPT_MS) < 0) {
        ck_assert_msg(harness_wait_exit(harbor, 0, &status) < 0,
                      "try %d: harbor ended with the reset client: %s %d", try,
                      WIFSIGNALED(status) ? "killed by signal" : "exit status",
                      WIFSIGNALED(status) ? WTERMSIG(status)
                                          : WEXITSTATUS(status));
        ck_abort_msg("try %d: no debug line names the client %s: %s", try,
                     client, harness_log_tail(harbor));
    }
}

START_TEST(writes_to_reset_clients_end_only_their_connections)
{
    static const char *const env[] = {"LOG_LEVEL=debug", NULL};
    struct harness_http_response rs;
    struct harness_stage st;

    harness_stage_up(&st, 1, "http", env);
    for (int i = 0; i < TRIES; i++)
        reset_mid_body(st.harbor, i);
    ck_assert(harness_alive(st.harbor));
    ck_assert_msg(harness_http_get(st.harbor->port, "/next", &rs) == 0,
                  "the next client: %s", harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 200);
    harness_http_response_free(&rs);
    harness_stage_down(&st);
}
END_TEST

void
scenarios_own(Suite *s)
{
    TCase *tc = harness_tcase(s, "own", 1, "own");

    tcase_add_test(tc, writes_to_reset_clients_end_only_their_connections);
}
