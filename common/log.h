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

/* One line at level, printf-style; nothing below the current level. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/*
 * Start-up failed, or an invariant broke: log the line at error level,
 * whatever LOG_LEVEL says, and exit 1.  (Bad settings exit 2 through
 * config_fail(); a misbehaving peer never gets here.)
 */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));

#endif
