/*
 * scenario_09.c - chapter 09 (metrics): GET /metrics on METRICS_LISTEN,
 * in the Prometheus text format.  The counters are exact: each scenario
 * makes known traffic and reads back exactly what it made, waiting (with
 * a bound) for Harbor to finish its bookkeeping, since a client sees its
 * connection end a moment before Harbor has counted the end.  The real
 * tools have the last word: promtool checks a scrape, and a Prometheus
 * server started here scrapes the chapter every second and is asked for
 * what it saw.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* For a count to reach its value, as in harness_wait_metric(). */
#define SETTLE_MS HARNESS_METRIC_MS

/* chapters/09-metrics/metrics.h: a scrape's time to say what it wants. */
#define METRICS_TIMEOUT_MS 1000

/* For Prometheus to start, scrape and answer: seconds, not milliseconds. */
#define PROMETHEUS_MS 20000

/*
 * Prometheus's words, not Harbor's: the log line with the address its web
 * listener took (2.x, logfmt), and an answer of the query API holding the
 * value 5 for the job harbor.
 */
static const char prom_listening[] = "msg=\"Listening on\"";
static const char prom_five[] = ",\"5\"]";
static const char prom_job[] = "\"job\":\"harbor\"";

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};

    nanosleep(&ts, NULL);
}

/* A stage of n backends with env, and its metrics port. */
static unsigned
stage_up(struct harness_stage *st, int n, const char *mode,
         const char *const env[])
{
    harness_stage_up(st, n, mode, env);
    return harness_metrics_port(st->harbor);
}

/* series{backend="127.0.0.1:<port>"} into buf. */
static const char *
of_backend(char *buf, size_t len, const char *series, unsigned port)
{
    snprintf(buf, len, "%s{backend=\"127.0.0.1:%u\"}", series, port);
    return buf;
}

static const char *const no_checks[] = {"HEALTH_CHECK=off", NULL};

/* ---- the listener ------------------------------------------------------ */

START_TEST(metrics_has_every_family_and_nothing_else_is_served)
{
    static const char *const families[][2] = {
        {"harbor_connections_accepted_total", "counter"},
        {"harbor_connections_inflight", "gauge"},
        {"harbor_connection_errors_total", "counter"},
        {"harbor_bytes_total", "counter"},
        {"harbor_connection_duration_seconds", "histogram"},
        {"harbor_backend_up", "gauge"},
        {"harbor_backend_inflight", "gauge"},
        {"harbor_backend_connections_total", "counter"},
        {"harbor_backend_failures_total", "counter"},
        {"harbor_build_info", "gauge"},
        {"process_open_fds", "gauge"},
        {"process_max_fds", "gauge"},
        {"process_resident_memory_bytes", "gauge"},
        {"process_cpu_seconds_total", "counter"},
        {"process_start_time_seconds", "gauge"},
    };
    struct harness_http_request post = {"POST", "/metrics", "x", 1, 1};
    struct harness_http_response rs;
    struct harness_stage st;
    unsigned port = stage_up(&st, 1, "http", no_checks);
    char *body = harness_metrics_scrape(port), want[160];
    double start = harness_metrics_value(body, "process_start_time_seconds");
    int fd;

    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        snprintf(want, sizeof want, "\n# HELP %s ", families[i][0]);
        ck_assert_msg(strstr(body, want) != NULL || i == 0, "no %s", want + 1);
        snprintf(want, sizeof want, "# TYPE %s %s\n", families[i][0],
                 families[i][1]);
        ck_assert_msg(strstr(body, want) != NULL, "no %s", want);
    }
    ck_assert_msg(strncmp(body, "# HELP ", 7) == 0, "starts: %.40s", body);
    /* The chapter under test says its own number: 09, or a later one. */
    snprintf(want, sizeof want, "harbor_build_info{chapter=\"%02d\"}",
             harness_chapter());
    ck_assert_msg(harness_metrics_value(body, want) == 1, "no %s 1", want);
    ck_assert(harness_metrics_value(body, "process_open_fds") > 3);
    ck_assert(harness_metrics_value(body, "process_max_fds") >=
              harness_metrics_value(body, "process_open_fds"));
    ck_assert(harness_metrics_value(body, "process_resident_memory_bytes") >
              4096);
    ck_assert_msg(
        start > (double)time(NULL) - 600 && start <= (double)time(NULL) + 1,
        "process_start_time_seconds %.0f, now %ld", start, (long)time(NULL));
    free(body);

    ck_assert(harness_http_get(port, "/", &rs) == 0);
    ck_assert_int_eq(rs.status, 404);
    harness_http_response_free(&rs);
    ck_assert(harness_http_get(port, "/metrics/x", &rs) == 0);
    ck_assert_int_eq(rs.status, 404);
    harness_http_response_free(&rs);
    ck_assert((fd = harness_connect(port)) >= 0);
    ck_assert(harness_http(fd, &post, &rs) == 0);
    ck_assert_int_eq(rs.status, 405);
    harness_http_response_free(&rs);
    close(fd);
    ck_assert(harness_alive(st.harbor));
    harness_stage_down(&st);
}
END_TEST

START_TEST(off_means_no_listener_and_no_line)
{
    const char *env[] = {"HEALTH_CHECK=off", "METRICS_LISTEN=off", NULL};
    struct harness_stage st;
    char line[256];
    int status;

    harness_stage_up(&st, 1, "http", env);
    ck_assert_int_eq(harness_stage_get(&st, "/"), 0);
    harness_kill(st.harbor, SIGTERM);
    ck_assert(harness_wait_exit(st.harbor, HARNESS_STOP_MS, &status) == 0);
    ck_assert_msg(
        harness_read_line(st.harbor, line, sizeof line, HARNESS_IO_MS) < 0,
        "stdout after the listening line: \"%s\"", line);
    harness_stage_down(&st);
}
END_TEST

static const char *const bad_listens[] = {"nope", "127.0.0.1:99999",
                                          "127.0.0.1:", "", "OFF "};

START_TEST(a_bad_metrics_listen_exits_2)
{
    harness_assert_config_error("METRICS_LISTEN", bad_listens[_i], NULL, NULL);
}
END_TEST

START_TEST(a_metrics_address_in_use_exits_1)
{
    unsigned port;
    int busy = harness_busy_port(&port);
    char env_metrics[64];
    const char *env[] = {"LISTEN=127.0.0.1:0", "BACKENDS=127.0.0.1:9",
                         env_metrics, NULL};
    struct harness_run r;

    ck_assert_msg(busy >= 0, "busy port: %s", strerror(errno));
    snprintf(env_metrics, sizeof env_metrics, "METRICS_LISTEN=127.0.0.1:%u",
             port);
    ck_assert(harness_run(getenv("HARBOR_BIN"), env, HARNESS_START_MS, &r) ==
              0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1,
                  "wait status %#x, want exit 1; stderr: %s",
                  (unsigned)r.status, r.err);
    ck_assert_msg(harness_contains_ci(r.err, CONTRACT_IN_USE) &&
                      strstr(r.err, CONTRACT_METRICS_VAR) != NULL,
                  "stderr does not name METRICS_LISTEN in use: %s", r.err);
    ck_assert_msg(strstr(r.out, CONTRACT_LISTENING) == NULL, "stdout: %s",
                  r.out);
    close(busy);
}
END_TEST

/*
 * The metrics listener is not behind MAX_INFLIGHT: with the one slot held
 * and a second client waiting for it, a scrape is answered at once and
 * says so.  A scraper that connects and says nothing is closed after
 * METRICS_TIMEOUT_MS, and neither the proxy nor the next scrape waits for
 * it longer.
 */
START_TEST(metrics_is_not_behind_the_cap_nor_a_silent_scraper)
{
    const char *env[] = {"HEALTH_CHECK=off", "MAX_INFLIGHT=1",
                         "QUEUE_TIMEOUT_MS=0", NULL};
    struct harness_stage st;
    struct harness_buf in = {0};
    unsigned port = stage_up(&st, 1, "http", env);
    int held, backend, waiting, silent;
    long t0;

    held = harness_stage_hold(&st, &backend);
    ck_assert((waiting = harness_connect(st.harbor->port)) >= 0);
    harness_wait_metric(port, "harbor_connections_inflight", 1);
    harness_wait_metric(port, "harbor_connections_accepted_total", 2);

    ck_assert((silent = harness_connect(port)) >= 0);
    t0 = harness_now_ms();
    harness_wait_metric(port, "harbor_connections_inflight", 1);
    ck_assert_msg(harness_now_ms() - t0 < 3 * METRICS_TIMEOUT_MS,
                  "a scrape waited %ld ms behind a silent one",
                  harness_now_ms() - t0);
    ck_assert_msg(harness_read_to_end(silent, &in, 3 * METRICS_TIMEOUT_MS) ==
                      HARNESS_EOF,
                  "a silent scraper was not closed");
    close(silent);
    harness_buf_free(&in);
    harness_finish(held);
    harness_finish(waiting);
    harness_wait_metric(port, "harbor_connections_inflight", 0);
    ck_assert(harness_alive(st.harbor));
    harness_stage_down(&st);
}
END_TEST

/* ---- the numbers ------------------------------------------------------- */

/*
 * Ten clients, each a request with a body and Connection: close: accepted
 * grows by exactly ten, the byte counters by exactly what the clients sent
 * and got, each backend's connections by the clients it served; then
 * every gauge is back at 0 and every connection is in the histogram.
 */
START_TEST(counters_are_exact)
{
    static const char body[] = "twelve bytes";
    struct harness_http_request rq = {"POST", "/count", body, sizeof body - 1,
                                      1};
    struct harness_stage st;
    struct harness_http_response rs;
    unsigned port = stage_up(&st, 2, "http", no_checks);
    unsigned long long up = 0, down = 0;
    int served[2] = {0, 0}, fd, b;
    char series[96], request[512];

    for (int i = 0; i < 10; i++) {
        int n = snprintf(request, sizeof request,
                         "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: "
                         "%zu\r\nConnection: close\r\n\r\n%s",
                         rq.body_len, body);

        ck_assert((fd = harness_connect(st.harbor->port)) >= 0);
        ck_assert(harness_http_raw(fd, request, (size_t)n, &rs) == 0);
        ck_assert_int_eq(rs.status, 200);
        ck_assert((b = harness_stage_backend(&st, &rs)) >= 0);
        served[b]++;
        up += (unsigned long long)n;
        down += rs.raw.len;
        harness_http_response_free(&rs);
        close(fd);
    }
    harness_wait_metric(port, "harbor_connections_accepted_total", 10);
    harness_wait_metric(port, "harbor_connection_duration_seconds_count", 10);
    harness_wait_metric(
        port, "harbor_connection_duration_seconds_bucket{le=\"+Inf\"}", 10);
    harness_wait_metric(port, "harbor_connections_inflight", 0);
    ck_assert_msg(
        harness_metric(port, "harbor_bytes_total{direction=\"up\"}") ==
            (double)up,
        "up: %.0f, sent %llu",
        harness_metric(port, "harbor_bytes_total{direction=\"up\"}"), up);
    ck_assert_msg(
        harness_metric(port, "harbor_bytes_total{direction=\"down\"}") ==
            (double)down,
        "down: %.0f, received %llu",
        harness_metric(port, "harbor_bytes_total{direction=\"down\"}"), down);
    for (int i = 0; i < 2; i++) {
        harness_wait_metric(port,
                            of_backend(series, sizeof series,
                                       "harbor_backend_connections_total",
                                       st.port[i]),
                            served[i]);
        harness_wait_metric(port,
                            of_backend(series, sizeof series,
                                       "harbor_backend_inflight", st.port[i]),
                            0);
        harness_wait_metric(port,
                            of_backend(series, sizeof series,
                                       "harbor_backend_failures_total",
                                       st.port[i]),
                            0);
    }
    harness_stage_down(&st);
}
END_TEST

/*
 * A held connection counts in both in-flight gauges until it ends, and
 * its bytes count as they move, not when it ends: after the first GET on
 * it, both byte counters are above 0.
 */
START_TEST(gauges_follow_live_connections)
{
    struct harness_stage st;
    unsigned port = stage_up(&st, 1, "http", no_checks);
    char series[96];
    int fd[3], b;

    of_backend(series, sizeof series, "harbor_backend_inflight", st.port[0]);
    for (int i = 0; i < 3; i++) {
        fd[i] = harness_stage_hold(&st, &b);
        harness_wait_metric(port, "harbor_connections_inflight", i + 1);
        harness_wait_metric(port, series, i + 1);
    }
    ck_assert_msg(
        harness_metric(port, "harbor_bytes_total{direction=\"up\"}") > 0 &&
            harness_metric(port, "harbor_bytes_total{direction=\"down\"}") > 0,
        "three live connections have moved no byte, says /metrics");
    for (int i = 0; i < 3; i++) {
        harness_finish(fd[i]);
        harness_wait_metric(port, "harbor_connections_inflight", 2 - i);
        harness_wait_metric(port, series, 2 - i);
    }
    harness_stage_down(&st);
}
END_TEST

/*
 * Each error reason is a code path: a client made to take it is counted
 * under its reason, and under no other.
 */
enum { NO_BACKEND, CONNECT, QUEUE_TIMEOUT, IDLE_TIMEOUT, RESET, REASONS };

static const char *const reason_names[REASONS] = {
    "no_backend", "connect", "queue_timeout", "idle_timeout", "reset"};

static void
assert_errors(unsigned port, int reason, int n)
{
    char series[96];

    for (int i = 0; i < REASONS; i++) {
        snprintf(series, sizeof series,
                 "harbor_connection_errors_total{reason=\"%s\"}",
                 reason_names[i]);
        harness_wait_metric(port, series, i == reason ? n : 0);
    }
}

/* A client that Harbor closes without a byte. */
static void
closed_at_once(unsigned harbor_port)
{
    struct harness_buf in = {0};
    int fd = harness_connect(harbor_port);

    ck_assert(fd >= 0);
    ck_assert_msg(harness_read_to_end(fd, &in, HARNESS_XFER_MS) == HARNESS_EOF,
                  "the client was not closed");
    ck_assert_int_eq(in.len, 0);
    harness_buf_free(&in);
    close(fd);
}

START_TEST(no_backend_up_is_counted)
{
    const char *env[] = {"HEALTH_CHECK=tcp", "HEALTH_INTERVAL_MS=50",
                         "HEALTH_FALL=1", NULL};
    struct harness_stage st;
    char series[96];
    int dead = harness_stage_up_dead(&st, 1, env);
    unsigned port = harness_metrics_port(st.harbor);

    harness_wait_metric(
        port,
        of_backend(series, sizeof series, "harbor_backend_up", st.port[0]),
        0); /* D's first check failed */
    closed_at_once(st.harbor->port);
    closed_at_once(st.harbor->port);
    assert_errors(port, NO_BACKEND, 2);
    close(dead);
    harness_stage_down(&st);
}
END_TEST

START_TEST(a_failed_connect_is_counted_for_the_client_and_the_backend)
{
    const char *env[] = {"HEALTH_CHECK=off", "RETRIES=0", NULL};
    struct harness_stage st;
    char series[96];
    int dead = harness_stage_up_dead(&st, 1, env);
    unsigned port = harness_metrics_port(st.harbor);

    closed_at_once(st.harbor->port);
    assert_errors(port, CONNECT, 1);
    harness_wait_metric(port,
                        of_backend(series, sizeof series,
                                   "harbor_backend_failures_total", st.port[0]),
                        1);
    harness_wait_metric(port,
                        of_backend(series, sizeof series,
                                   "harbor_backend_connections_total",
                                   st.port[0]),
                        0);
    close(dead);
    harness_stage_down(&st);
}
END_TEST

START_TEST(a_queue_timeout_is_counted)
{
    const char *env[] = {"HEALTH_CHECK=off", "MAX_INFLIGHT=1",
                         "QUEUE_TIMEOUT_MS=100", NULL};
    struct harness_stage st;
    unsigned port = stage_up(&st, 1, "http", env);
    int held, b;

    held = harness_stage_hold(&st, &b);
    closed_at_once(st.harbor->port);
    assert_errors(port, QUEUE_TIMEOUT, 1);
    harness_finish(held);
    harness_stage_down(&st);
}
END_TEST

START_TEST(an_idle_timeout_is_counted)
{
    const char *env[] = {"HEALTH_CHECK=off", "IDLE_TIMEOUT_MS=100", NULL};
    struct harness_stage st;
    unsigned port = stage_up(&st, 1, "http", env);

    closed_at_once(st.harbor->port); /* it says nothing, and is cut */
    assert_errors(port, IDLE_TIMEOUT, 1);
    harness_stage_down(&st);
}
END_TEST

START_TEST(a_reset_is_counted)
{
    struct harness_stage st;
    unsigned port = stage_up(&st, 1, "tcp", no_checks);
    char buf[5];
    int fd;

    ck_assert((fd = harness_connect(st.harbor->port)) >= 0);
    ck_assert(harness_send_all(fd, "hello", 5) == 0);
    ck_assert(harness_read_n(fd, buf, 5, HARNESS_XFER_MS) == HARNESS_DONE);
    harness_reset(fd);
    assert_errors(port, RESET, 1);
    harness_wait_metric(port, "harbor_connections_inflight", 0);
    harness_stage_down(&st);
}
END_TEST

/* harbor_backend_up follows the health checks, down and up again. */
START_TEST(backend_up_follows_the_health_checks)
{
    const char *env[] = {"HEALTH_CHECK=http", "HEALTH_INTERVAL_MS=50",
                         "HEALTH_RISE=1", "HEALTH_FALL=1", NULL};
    struct harness_http_response rs;
    struct harness_stage st;
    unsigned port = stage_up(&st, 2, "http", env);
    char a[96], b[96];

    of_backend(a, sizeof a, "harbor_backend_up", st.port[0]);
    of_backend(b, sizeof b, "harbor_backend_up", st.port[1]);
    harness_wait_metric(port, a, 1);
    harness_wait_metric(port, b, 1);
    ck_assert(harness_http_get(st.port[0], "/admin/down", &rs) == 0);
    harness_http_response_free(&rs);
    harness_wait_metric(port, a, 0);
    ck_assert(harness_metric(port, b) == 1);
    ck_assert(harness_http_get(st.port[0], "/admin/up", &rs) == 0);
    harness_http_response_free(&rs);
    harness_wait_metric(port, a, 1);
    harness_stage_down(&st);
}
END_TEST

/*
 * A reload that adds B shows B's series; one that removes A keeps A's
 * while a connection to A lives, and drops them once it has ended.
 */
START_TEST(a_reload_adds_and_removes_series)
{
    struct harness_stage st;
    struct harness_file file;
    char text[128], a[96], b[96], needle[64];
    const char *env[] = {"HEALTH_CHECK=off", "RELOAD_INTERVAL_MS=50", NULL,
                         NULL};
    unsigned port;
    int fd, on;

    harness_file_init(&file, "metrics");
    memset(&st, 0, sizeof st);
    st.n = 1;
    harness_stage_echo(&st, 0, "http", 0);
    harness_stage_echo(&st, 1, "http", 0);
    snprintf(text, sizeof text, "127.0.0.1:%u\n", st.port[0]);
    harness_file_replace(&file, text);
    env[2] = file.env;
    harness_stage_harbor(&st, env);
    port = harness_metrics_port(st.harbor);
    of_backend(a, sizeof a, "harbor_backend_connections_total", st.port[0]);
    of_backend(b, sizeof b, "harbor_backend_connections_total", st.port[1]);
    ck_assert(harness_metric(port, a) == 0);
    ck_assert(harness_metric(port, b) == -1);
    fd = harness_stage_hold(&st, &on);
    ck_assert_int_eq(on, 0);

    snprintf(text, sizeof text, "127.0.0.1:%u\n", st.port[1]);
    harness_file_replace(&file, text);
    snprintf(needle, sizeof needle, CONTRACT_RELOAD, 1, 1, 1);
    harness_assert_log(st.harbor, needle, NULL, 0, SETTLE_MS);
    harness_wait_metric(port, b, 0);
    ck_assert(harness_metric(port, a) == 1);
    of_backend(a, sizeof a, "harbor_backend_up", st.port[0]);
    ck_assert(harness_metric(port, a) == 0); /* not in the pool: not up */
    harness_finish(fd);
    harness_wait_metric(port, a, -1);
    of_backend(a, sizeof a, "harbor_backend_connections_total", st.port[0]);
    harness_wait_metric(port, a, -1);
    harness_file_remove(&file);
    st.n = 2; /* so that stage_down stops both echoes */
    harness_stage_down(&st);
}
END_TEST

/* ---- the real tools ---------------------------------------------------- */

/* What promtool check metrics makes of body: it must say nothing. */
START_TEST(promtool_finds_nothing_to_say)
{
    const char *env[] = {"HEALTH_CHECK=tcp", "HEALTH_INTERVAL_MS=50",
                         "HEALTH_FALL=1", NULL};
    char path[] = "/tmp/harbor-scrape-XXXXXX", series[96];
    const char *argv[] = {"/bin/sh", "-c",
                          "command -v promtool >/dev/null || { echo 'promtool "
                          "is not installed: apt-get install prometheus'; "
                          "exit 127; }; exec promtool check metrics < \"$0\"",
                          path, NULL};
    struct harness_stage st;
    struct harness_run r;
    int dead = harness_stage_up_dead(&st, 2, env), fd;
    unsigned port = harness_metrics_port(st.harbor);
    char *body;

    harness_wait_metric(
        port,
        of_backend(series, sizeof series, "harbor_backend_up", st.port[0]),
        0); /* D's first check failed */
    for (int i = 0; i < 4; i++)
        harness_stage_get(&st, "/busy");
    harness_wait_metric(port, "harbor_connections_accepted_total", 4);
    body = harness_metrics_scrape(port);
    ck_assert((fd = mkstemp(path)) >= 0);
    ck_assert(write(fd, body, strlen(body)) == (ssize_t)strlen(body));
    close(fd);
    ck_assert(harness_run_argv(argv, NULL, HARNESS_XFER_MS, &r) == 0);
    unlink(path);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
                      r.out_len == 0 && r.err_len == 0,
                  "promtool check metrics: status %#x: %s%s\nscrape:\n%.2000s",
                  (unsigned)r.status, r.out, r.err, body);
    free(body);
    close(dead);
    harness_stage_down(&st);
}
END_TEST

/*
 * A Prometheus server, on a port of its own choosing, scrapes the chapter
 * every second; after five clients, its HTTP API must answer 5 for
 * harbor_connections_accepted_total.
 */
START_TEST(prometheus_scrapes_what_happened)
{
    char dir[] = "/tmp/harbor-prometheus-XXXXXX", config[128], cmd[512];
    char line[512], query[128];
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    struct harness_http_response rs;
    struct harness_stage st;
    struct harness_proc *prom;
    unsigned port = stage_up(&st, 1, "http", no_checks), api;
    long deadline;
    FILE *f;
    int got = 0;

    ck_assert(mkdtemp(dir) != NULL);
    snprintf(config, sizeof config, "%s/prometheus.yml", dir);
    ck_assert((f = fopen(config, "w")) != NULL);
    fprintf(f,
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: harbor\n    static_configs:\n"
            "      - targets: [\"127.0.0.1:%u\"]\n",
            port);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "command -v prometheus >/dev/null || { echo 'prometheus is not "
             "installed: apt-get install prometheus' >&2; exit 127; }; "
             "exec prometheus --config.file=%s --storage.tsdb.path=%s/data "
             "--web.listen-address=127.0.0.1:0",
             config, dir);
    prom = harness_spawn_argv("prometheus", argv, NULL);
    ck_assert(prom != NULL);
    /* Its log gives the port it took: msg="Listening on" address=... */
    harness_assert_log(prom, prom_listening, line, sizeof line, PROMETHEUS_MS);
    ck_assert_msg((api = harness_port_of(line)) != 0, "no port in: %s", line);

    for (int i = 0; i < 5; i++)
        harness_stage_get(&st, "/prometheus");
    harness_wait_metric(port, "harbor_connections_accepted_total", 5);
    snprintf(query, sizeof query,
             "/api/v1/query?query=harbor_connections_accepted_total");
    deadline = harness_now_ms() + PROMETHEUS_MS;
    while (!got) {
        ck_assert(harness_http_get(api, query, &rs) == 0);
        got = rs.status == 200 && strstr(rs.body, prom_five) != NULL &&
              strstr(rs.body, prom_job) != NULL;
        ck_assert_msg(got || harness_now_ms() < deadline,
                      "Prometheus did not see 5 accepted within %d ms: %d %s",
                      PROMETHEUS_MS, rs.status, rs.body);
        harness_http_response_free(&rs);
        if (!got)
            sleep_ms(100);
    }
    harness_stop(prom);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert(system(cmd) == 0);
    harness_stage_down(&st);
}
END_TEST

/*
 * scripts/top --once: one frame, after two scrapes a second apart, with a
 * row for each backend that says whether it is up.
 */
START_TEST(top_shows_a_dead_backend_down)
{
    const char *env[] = {"HEALTH_CHECK=tcp", "HEALTH_INTERVAL_MS=50",
                         "HEALTH_FALL=1", NULL};
    char target[32], up[64], down[64], series[96];
    const char *argv[] = {"scripts/top", "--once", target, NULL};
    struct harness_stage st;
    struct harness_run r;
    int dead = harness_stage_up_dead(&st, 2, env);
    unsigned port = harness_metrics_port(st.harbor);

    harness_wait_metric(
        port,
        of_backend(series, sizeof series, "harbor_backend_up", st.port[0]),
        0); /* D's first check failed */
    snprintf(target, sizeof target, "127.0.0.1:%u", port);
    ck_assert(harness_run_argv(argv, NULL, HARNESS_XFER_MS, &r) == 0);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
                  "scripts/top --once: status %#x: %s", (unsigned)r.status,
                  r.err);
    snprintf(down, sizeof down, "\n127.0.0.1:%u ", st.port[0]);
    snprintf(up, sizeof up, "\n127.0.0.1:%u ", st.port[1]);
    ck_assert_msg(strstr(r.out, down) != NULL && strstr(r.out, up) != NULL,
                  "no row for each backend:\n%s", r.out);
    ck_assert_msg(strncmp(strstr(r.out, down) + strlen(down) +
                              strspn(strstr(r.out, down) + strlen(down), " "),
                          "DOWN", 4) == 0,
                  "the dead backend is not DOWN:\n%s", r.out);
    ck_assert_msg(strncmp(strstr(r.out, up) + strlen(up) +
                              strspn(strstr(r.out, up) + strlen(up), " "),
                          "UP", 2) == 0,
                  "the live backend is not UP:\n%s", r.out);
    close(dead);
    harness_stage_down(&st);
}
END_TEST

void
scenarios_09(Suite *s)
{
    TCase *tc = harness_tcase(s, "metrics", 9, NULL);

    tcase_add_test(tc, metrics_has_every_family_and_nothing_else_is_served);
    tcase_add_test(tc, off_means_no_listener_and_no_line);
    tcase_add_loop_test(tc, a_bad_metrics_listen_exits_2, 0,
                        (int)(sizeof bad_listens / sizeof bad_listens[0]));
    tcase_add_test(tc, a_metrics_address_in_use_exits_1);
    tcase_add_test(tc, metrics_is_not_behind_the_cap_nor_a_silent_scraper);
    tcase_add_test(tc, counters_are_exact);
    tcase_add_test(tc, gauges_follow_live_connections);
    tcase_add_test(tc, no_backend_up_is_counted);
    tcase_add_test(tc,
                   a_failed_connect_is_counted_for_the_client_and_the_backend);
    tcase_add_test(tc, a_queue_timeout_is_counted);
    tcase_add_test(tc, an_idle_timeout_is_counted);
    tcase_add_test(tc, a_reset_is_counted);
    tcase_add_test(tc, backend_up_follows_the_health_checks);
    tcase_add_test(tc, a_reload_adds_and_removes_series);
    tc = harness_tcase(s, "tools", 9, NULL);
    tcase_add_test(tc, promtool_finds_nothing_to_say);
    tcase_add_test(tc, prometheus_scrapes_what_happened);
    tcase_add_test(tc, top_shows_a_dead_backend_down);
}
