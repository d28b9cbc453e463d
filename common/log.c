/*
 * log.c - leveled logging to stderr.
 *
 * Each line is "<UTC time> <level> <message>", built in a local buffer and
 * written with one fprintf, so concurrent threads never interleave within a
 * line.  stderr is unbuffered: a line is out before the call returns.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "config.h"
#include "log.h"

static atomic_int log_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          NULL};

void
log_init(void)
{
    log_set_level(config_choice("LOG_LEVEL", "info", level_names));
}

void
log_set_level(enum log_level level)
{
    atomic_store(&log_level, level);
}

int
log_enabled(enum log_level level)
{
    return (int)level >= atomic_load(&log_level);
}

static void
log_line(enum log_level level, const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s ",
                  ts.tv_nsec / 1000000, level_names[level]);
    vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    fprintf(stderr, "%s\n", line);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    log_line(level, fmt, ap);
    va_end(ap);
}

void
fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_line(LOG_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}
