/*
 * harness_metrics.c - reading a balancer's /metrics (chapter 09 on): the
 * port from its third stdout line, a scrape, one sample's value, and a
 * bounded wait for a value.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define STEP_MS 5 /* between two scrapes of a wait */

unsigned
harness_metrics_port(struct harness_proc *harbor)
{
    static const char on[] = CONTRACT_METRICS_ON " ";
    char line[256] = "";
    unsigned port = 0;

    ck_assert_msg(
        harness_read_line(harbor, line, sizeof line, HARNESS_START_MS) == 0 &&
            strncmp(line, on, sizeof on - 1) == 0 &&
            (port = harness_port_of(line)) != 0,
        "want \"" CONTRACT_METRICS_ON " <host>:<port>\", got \"%s\"", line);
    return port;
}

char *
harness_metrics_scrape(unsigned port)
{
    static const char type[] = "text/plain; version=0.0.4";
    struct harness_http_response rs;
    char *body;

    ck_assert_msg(harness_http_get(port, "/metrics", &rs) == 0,
                  "GET /metrics: %s", harness_end_name(rs.end));
    ck_assert_int_eq(rs.status, 200);
    ck_assert_msg(strncmp(rs.content_type, type, sizeof type - 1) == 0,
                  "Content-Type: %s", rs.content_type);
    body = strndup(rs.body, rs.body_len);
    harness_http_response_free(&rs);
    ck_assert(body != NULL);
    return body;
}

double
harness_metrics_value(const char *body, const char *series)
{
    size_t n = strlen(series);
    const char *line;

    for (line = body; line != NULL && *line != '\0';) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    return -1;
}

double
harness_metric(unsigned port, const char *series)
{
    char *body = harness_metrics_scrape(port);
    double v = harness_metrics_value(body, series);

    free(body);
    return v;
}

void
harness_wait_metric(unsigned port, const char *series, double want)
{
    struct timespec step = {0, STEP_MS * 1000 * 1000};
    long deadline = harness_now_ms() + HARNESS_METRIC_MS;
    double v;

    while ((v = harness_metric(port, series)) != want) {
        ck_assert_msg(harness_now_ms() < deadline,
                      "%s is %.0f after %d ms, want %.0f", series, v,
                      HARNESS_METRIC_MS, want);
        nanosleep(&step, NULL);
    }
}
