/*
 * scenario_03.c - chapter 03 (inflight): at most MAX_INFLIGHT clients are
 * proxied at once.  The next one waits untouched - no backend connection
 * is made for it - until a slot frees, or is closed after QUEUE_TIMEOUT_MS.
 * Where it matters, the backend is a listening socket of the test's own,
 * so the test can count exactly how many connections Harbor made to it.
 */
#define _GNU_SOURCE /* accept4 */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/*
 * How long a test watches for a backend connection that must not come.
 * A dial over loopback takes microseconds, so this is generous; it cannot
 * be an event, since the event is that nothing happens.
 */
#define QUIET_MS 300

/*
 * The queue timeout the timing scenario sets, and the bounds it checks:
 * not before the deadline (less clock slack), and long before a client
 * that is never closed would give up.
 */
#define QUEUE_TIMEOUT "300" /* ms */
#define WINDOW_MIN_MS 250
#define WINDOW_MAX_MS 2500

/*
 * Accept one connection on lfd within timeout_ms: the fd, with the same
 * I/O timeouts as every harness socket, or -1.
 */
/* 1 if a connection is waiting to be accepted on lfd within timeout_ms. */
static int
pending_within(int lfd, int timeout_ms)
{
    struct pollfd pfd = {lfd, POLLIN, 0};

    return poll(&pfd, 1, timeout_ms) > 0;
}

/* Check that msg arrives whole on fd. */
static void
assert_receives(int fd, const char *msg, const char *what)
{
    char buf[64];
    size_t n = strlen(msg);
    enum harness_end end;

    ck_assert_msg(n <= sizeof buf, "%s: message too long for the test", what);
    end = harness_read_n(fd, buf, n, HARNESS_PROMPT_MS);

    ck_assert_msg(end == HARNESS_DONE, "%s: %s, want \"%s\"", what,
                  harness_end_name(end), msg);
    ck_assert_msg(memcmp(buf, msg, n) == 0, "%s: bytes differ", what);
}

/* Send msg on from and check it arrives whole on to. */
static void
assert_flows(int from, int to, const char *msg, const char *what)
{
    ck_assert_msg(harness_send_all(from, msg, strlen(msg)) == 0, "%s: send: %s",
                  what, strerror(errno));
    assert_receives(to, msg, what);
}

static struct harness_proc *
start_harbor(unsigned backend, const char *max_inflight,
             const char *queue_timeout)
{
    char backends[32], max[48], queue[48];
    /* From chapter 06 on, health checks would be more connections to the
     * test's backend than it counts on; earlier chapters ignore this. */
    const char *env[] = {max, queue, "HEALTH_CHECK=off", NULL};

    snprintf(backends, sizeof backends, "127.0.0.1:%u", backend);
    snprintf(max, sizeof max, "MAX_INFLIGHT=%s", max_inflight);
    snprintf(queue, sizeof queue, "QUEUE_TIMEOUT_MS=%s", queue_timeout);
    return harness_start_harbor(backends, env);
}

START_TEST(client_over_the_cap_waits_until_a_slot_frees)
{
    unsigned port;
    int lfd = harness_busy_port(&port), c[3], b[3];
    struct harness_proc *harbor;

    ck_assert_msg(lfd >= 0, "backend listener: %s", strerror(errno));
    /* A queue timeout far beyond the wait below: the third client must be
     * woken by the freed slot, not by its own deadline. */
    harbor = start_harbor(port, "2", "20000");
    for (int i = 0; i < 2; i++) {
        c[i] = harness_connect(harbor->port);
        ck_assert_msg(c[i] >= 0, "client %d: connect: %s", i, strerror(errno));
        b[i] = harness_accept(lfd, HARNESS_PROMPT_MS);
        ck_assert_msg(b[i] >= 0, "client %d: no backend connection", i);
        assert_flows(c[i], b[i], "up", "held client");
    }

    /* The third is accepted by Harbor but must get no backend yet. */
    c[2] = harness_connect(harbor->port);
    ck_assert_msg(c[2] >= 0, "client 2: connect: %s", strerror(errno));
    ck_assert_int_eq(harness_send_all(c[2], "third", 5), 0);
    ck_assert_msg(!pending_within(lfd, QUIET_MS),
                  "a third backend connection with MAX_INFLIGHT=2");

    /* Client 0 and its backend hang up: its slot goes to the third. */
    close(c[0]);
    close(b[0]);
    b[2] = harness_accept(lfd, HARNESS_PROMPT_MS);
    ck_assert_msg(b[2] >= 0, "the waiting client got no backend after a "
                             "slot freed");
    assert_receives(b[2], "third", "bytes sent while waiting");
    assert_flows(b[2], c[2], "served", "waiting client, reply");
    assert_flows(c[1], b[1], "still", "other held client");
    ck_assert_msg(!pending_within(lfd, 0), "a fourth backend connection");
    for (int i = 1; i < 3; i++) {
        close(c[i]);
        close(b[i]);
    }
    harness_stop(harbor);
    close(lfd);
}
END_TEST

START_TEST(client_that_waits_too_long_is_closed_without_a_dial)
{
    unsigned port;
    int lfd = harness_busy_port(&port), c0, b0, c1;
    struct harness_proc *harbor;
    struct harness_buf in = {0};
    enum harness_end end;
    long start, ms;

    ck_assert_msg(lfd >= 0, "backend listener: %s", strerror(errno));
    harbor = start_harbor(port, "1", QUEUE_TIMEOUT);
    c0 = harness_connect(harbor->port);
    ck_assert_msg(c0 >= 0, "client 0: connect: %s", strerror(errno));
    b0 = harness_accept(lfd, HARNESS_PROMPT_MS);
    ck_assert_msg(b0 >= 0, "client 0: no backend connection");
    assert_flows(c0, b0, "up", "held client");

    c1 = harness_connect(harbor->port);
    start = harness_now_ms();
    ck_assert_msg(c1 >= 0, "client 1: connect: %s", strerror(errno));
    end = harness_read_to_end(c1, &in, WINDOW_MAX_MS);
    ms = harness_now_ms() - start;
    ck_assert_msg(end == HARNESS_EOF || end == HARNESS_RESET,
                  "queued client: %s after %ld ms, want closed within %d ms",
                  harness_end_name(end), ms, WINDOW_MAX_MS);
    ck_assert_msg(ms >= WINDOW_MIN_MS,
                  "queued client closed after %ld ms, before the " QUEUE_TIMEOUT
                  " ms queue timeout",
                  ms);
    ck_assert_uint_eq(in.len, 0);
    harness_buf_free(&in);
    ck_assert_msg(!pending_within(lfd, 0),
                  "Harbor dialled the backend for the queued client");
    assert_flows(b0, c0, "still here", "held client after the timeout");
    close(c1);
    close(c0);
    close(b0);
    harness_stop(harbor);
    close(lfd);
}
END_TEST

/*
 * One client of the pool behind Harbor: it sends "ping" and waits for the
 * echo, or for the close Harbor gives a client of the dead backend.  A
 * client that gets neither within CLIENT_MS is waiting for a slot: the
 * scenario's queue timeout is longer, so such a client cannot be closed
 * early and pass for one of the dead backend's.
 */
#define CLIENT_MS     4000
#define LEAK_QUEUE_MS "10000"

static enum harness_end
ping(int fd)
{
    char buf[4];
    enum harness_end end;

    if (harness_send_all(fd, "ping", 4) < 0)
        return HARNESS_RESET; /* already closed: the dead backend */
    end = harness_read_n(fd, buf, 4, CLIENT_MS);
    if (end == HARNESS_DONE && memcmp(buf, "ping", 4) != 0)
        return HARNESS_ERROR; /* bytes that are not the echo */
    return end;
}

/*
 * BACKENDS=dead,live with MAX_INFLIGHT=2.  Round-robin sends half the
 * clients to each: those of the dead one fail to dial, those of the live
 * one reset mid-connection.  Each path must give its slot back; if even
 * one leaked, two clients could no longer be served at once, and the
 * second would wait out the queue timeout instead.  (A later chapter may
 * retry a failed dial on the next backend: then more clients are served,
 * which the test allows.)
 */
START_TEST(failed_and_reset_connections_leak_no_slot)
{
    enum { CLIENTS = 40 };
    unsigned ports[2];
    int dead_fd = harness_refusing_port(&ports[0]), held[2], nheld = 0;
    int served = 0, closed = 0;
    struct harness_proc *live, *harbor;
    const char *env[] = {"MAX_INFLIGHT=2", "QUEUE_TIMEOUT_MS=" LEAK_QUEUE_MS,
                         NULL};
    char backends[64];

    ck_assert_msg(dead_fd >= 0, "refusing port: %s", strerror(errno));
    live = harness_start_echo("tcp", 0);
    ports[1] = live->port;
    harness_backends(backends, sizeof backends, ports, 2);
    harbor = harness_start_harbor(backends, env);

    for (int i = 0; i < CLIENTS; i++) {
        int fd = harness_connect(harbor->port);
        enum harness_end end;

        ck_assert_msg(fd >= 0, "client %d: connect: %s", i, strerror(errno));
        end = ping(fd);
        ck_assert_msg(end != HARNESS_TIMEOUT && end != HARNESS_ERROR,
                      "client %d: %s within %d ms: waiting for a slot "
                      "after %d served, %d closed?",
                      i, harness_end_name(end), CLIENT_MS, served, closed);
        if (end == HARNESS_DONE) {
            served++;
            harness_reset(fd); /* mid-connection: the echo is still open */
        } else {
            closed++;
            close(fd);
        }
    }
    ck_assert_msg(served >= CLIENTS / 2, "only %d of %d clients served", served,
                  CLIENTS);

    /* Two at once on the live backend; dead-backend clients are skipped. */
    for (int i = 0; nheld < 2 && i < 6; i++) {
        int fd = harness_connect(harbor->port);
        enum harness_end end;

        ck_assert_msg(fd >= 0, "holder %d: connect: %s", i, strerror(errno));
        end = ping(fd);
        ck_assert_msg(end != HARNESS_TIMEOUT && end != HARNESS_ERROR,
                      "holder %d (%d held): %s within %d ms: a slot leaked", i,
                      nheld, harness_end_name(end), CLIENT_MS);
        if (end == HARNESS_DONE)
            held[nheld++] = fd;
        else
            close(fd);
    }
    ck_assert_int_eq(nheld, 2);
    ck_assert_int_eq(ping(held[0]), HARNESS_DONE);
    close(held[0]);
    close(held[1]);
    ck_assert(harness_alive(harbor));
    harness_stop(harbor);
    harness_stop(live);
    close(dead_fd);
}
END_TEST

/*
 * The open files limit the next scenario gives Harbor, soft and hard, so
 * that it cannot raise it: far below what MAX_INFLIGHT=1024 needs.
 */
#define LOW_NOFILE 64
#define CROWD      100 /* clients over the cap: more than 64 descriptors */

/*
 * A cap the fd limit cannot carry is lowered, with one line naming both
 * numbers, and the lowered cap is the one in force: that many clients are
 * proxied, and a crowd over it waits untouched - no backend connection,
 * and no descriptor shortage inside Harbor, which lets in only as many
 * clients as its descriptors can carry.  A freed slot goes to the crowd.
 */
START_TEST(cap_the_open_files_limit_cannot_carry_is_lowered_and_kept)
{
    unsigned port;
    int lfd = harness_busy_port(&port), c[LOW_NOFILE], b[LOW_NOFILE], cap;
    int crowd[CROWD];
    struct harness_proc *harbor;
    char needle[64], line[512];
    const char *at;

    ck_assert_msg(lfd >= 0, "backend listener: %s", strerror(errno));
    harness_next_nofile(LOW_NOFILE);
    harbor = start_harbor(port, "1024", "20000");
    snprintf(needle, sizeof needle, CONTRACT_CAP_NEEDS, 1024);
    harness_assert_log(harbor, needle, line, sizeof line, HARNESS_PROMPT_MS);
    snprintf(needle, sizeof needle, CONTRACT_CAP_LOWERED, LOW_NOFILE);
    at = strstr(line, needle);
    ck_assert_msg(at != NULL, "no \"%s\" in: %s", needle, line);
    cap = atoi(at + strlen(needle));
    ck_assert_msg(cap >= 1 && cap <= LOW_NOFILE / 2,
                  "a cap of %d cannot fit %d descriptors: %s", cap, LOW_NOFILE,
                  line);

    for (int i = 0; i < cap; i++) {
        c[i] = harness_connect(harbor->port);
        ck_assert_msg(c[i] >= 0, "client %d: connect: %s", i, strerror(errno));
        b[i] = harness_accept(lfd, HARNESS_PROMPT_MS);
        ck_assert_msg(b[i] >= 0, "client %d of a cap of %d: no backend", i,
                      cap);
        assert_flows(c[i], b[i], "up", "held client");
    }
    for (int i = 0; i < CROWD; i++) {
        crowd[i] = harness_connect(harbor->port);
        ck_assert_msg(crowd[i] >= 0, "crowd %d: connect: %s", i,
                      strerror(errno));
        ck_assert_int_eq(harness_send_all(crowd[i], "waiting", 7), 0);
    }
    ck_assert_msg(!pending_within(lfd, QUIET_MS),
                  "a backend connection over the lowered cap of %d", cap);
    ck_assert_msg(harness_wait_log(harbor, strerror(EMFILE), 0) < 0,
                  "Harbor ran out of descriptors: %s",
                  harness_log_tail(harbor));

    close(c[0]);
    close(b[0]);
    b[0] = harness_accept(lfd, HARNESS_PROMPT_MS);
    ck_assert_msg(b[0] >= 0, "no client of the crowd got the freed slot");
    assert_receives(b[0], "waiting", "bytes sent while waiting");
    ck_assert_msg(!pending_within(lfd, QUIET_MS),
                  "a second backend connection for one freed slot");
    ck_assert(harness_alive(harbor));
    for (int i = 0; i < CROWD; i++)
        close(crowd[i]);
    for (int i = 1; i < cap; i++)
        close(c[i]);
    for (int i = 0; i < cap; i++)
        close(b[i]);
    harness_stop(harbor);
    close(lfd);
}
END_TEST

/*
 * Each row: one in-flight variable set to a value Harbor must refuse.  A
 * cap of 0 would let no client through: MAX_INFLIGHT must be at least 1.
 */
static const struct {
    const char *var, *value;
} bad_inflight[] = {
    {"MAX_INFLIGHT", "0"},      /* a cap no client gets through */
    {"MAX_INFLIGHT", "abc"},    /* not a number */
    {"MAX_INFLIGHT", "-5"},     /* negative */
    {"QUEUE_TIMEOUT_MS", "x"},  /* not a number */
    {"QUEUE_TIMEOUT_MS", "-1"}, /* negative */
};

START_TEST(bad_inflight_setting_exits_2_with_one_stderr_line)
{
    harness_assert_config_error(bad_inflight[_i].var, bad_inflight[_i].value,
                                NULL, NULL);
}
END_TEST

void
scenarios_03(Suite *s)
{
    TCase *tc;

    tc = harness_tcase(s, "inflight", 3, NULL);
    tcase_add_test(tc, client_over_the_cap_waits_until_a_slot_frees);
    tcase_add_test(tc, client_that_waits_too_long_is_closed_without_a_dial);
    tcase_add_test(tc, failed_and_reset_connections_leak_no_slot);
    tcase_add_test(tc,
                   cap_the_open_files_limit_cannot_carry_is_lowered_and_kept);

    tc = harness_tcase(s, "inflight-config", 3, NULL);
    tcase_add_loop_test(tc, bad_inflight_setting_exits_2_with_one_stderr_line,
                        0, COUNT(bad_inflight));
}
