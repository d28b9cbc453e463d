/*
 * harness_stage.c - the stage most scenarios stand on: echo backends,
 * Harbor in front of them, and the questions every chapter asks of it
 * (which backend served this client, how were n clients shared, did
 * Harbor log this).  Backends are kept by port as well as by process, so
 * a scenario that kills one, or puts a refusing port in its place, still
 * knows which slot a client went to.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void
harness_stage_up(struct harness_stage *st, int n, const char *echo_mode,
                 const char *const env[])
{
    ck_assert_msg(n > 0 && n <= HARNESS_STAGE_MAX, "a stage of %d backends", n);
    memset(st, 0, sizeof *st);
    st->n = n;
    for (int i = 0; i < n; i++)
        harness_stage_echo(st, i, echo_mode, 0);
    harness_stage_harbor(st, env);
}

int
harness_stage_up_dead(struct harness_stage *st, int n, const char *const env[])
{
    int dead;

    ck_assert_msg(n > 0 && n <= HARNESS_STAGE_MAX, "a stage of %d backends", n);
    memset(st, 0, sizeof *st);
    st->n = n;
    dead = harness_refusing_port(&st->port[0]);
    ck_assert_msg(dead >= 0, "refusing port: %s", strerror(errno));
    for (int i = 1; i < n; i++)
        harness_stage_echo(st, i, "http", 0);
    harness_stage_harbor(st, env);
    return dead;
}

void
harness_stage_echo(struct harness_stage *st, int i, const char *mode,
                   unsigned port)
{
    st->echo[i] = harness_start_echo(mode, port);
    st->port[i] = st->echo[i]->port;
}

void
harness_stage_harbor(struct harness_stage *st, const char *const env[])
{
    char backends[HARNESS_STAGE_MAX * 24];

    harness_backends(backends, sizeof backends, st->port, (size_t)st->n);
    st->harbor = harness_start_harbor(backends, env);
    harness_log_mark(st->harbor);
}

void
harness_stage_down(struct harness_stage *st)
{
    harness_stop(st->harbor);
    st->harbor = NULL;
    for (int i = 0; i < st->n; i++) {
        harness_stop(st->echo[i]);
        st->echo[i] = NULL;
    }
}

int
harness_stage_backend(const struct harness_stage *st,
                      const struct harness_http_response *rs)
{
    unsigned port = harness_served_port(rs);

    for (int i = 0; i < st->n; i++)
        if (st->port[i] == port)
            return i;
    return -1;
}

int
harness_stage_get(const struct harness_stage *st, const char *path)
{
    struct harness_http_response rs;
    int b;

    ck_assert_msg(harness_http_get(st->harbor->port, path, &rs) == 0,
                  "GET %s: %s; harbor's stderr: %s", path,
                  harness_end_name(rs.end), harness_log_tail(st->harbor));
    ck_assert_int_eq(rs.status, 200);
    b = harness_stage_backend(st, &rs);
    ck_assert_msg(b >= 0, "GET %s: X-Served-By \"%s\"", path, rs.served_by);
    harness_http_response_free(&rs);
    return b;
}

void
harness_tally(const struct harness_stage *st, int n, int count[])
{
    for (int i = 0; i < n; i++)
        count[harness_stage_get(st, "/tally")]++;
}

int
harness_stage_hold(const struct harness_stage *st, int *backend)
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

void
harness_assert_log(struct harness_proc *p, const char *needle, char *line,
                   size_t len, int timeout_ms)
{
    ck_assert_msg(harness_wait_log_line(p, needle, line, len, timeout_ms) == 0,
                  "no \"%s\" on %s's stderr within %d ms; its tail: %s", needle,
                  p->name, timeout_ms, harness_log_tail(p));
}
