/*
 * log.h - leveled logging to stderr.
 *
 * One line per call, written with a single fprintf so that lines from
 * different threads never interleave.  The level is the one piece of
 * process-wide state in Harbor besides signal flags: every module logs, and
 * threading a logger through every call would hide the code it serves.
 */
#ifndef HARBOR_LOG_H
#define HARBOR_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Read LOG_LEVEL (debug|info|warn|error, default info); exit 2 if bad. */
void log_init(void);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
