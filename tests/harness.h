/*
 * harness.h - the integration test harness: start echo and harbor as child
 * processes, wait for what they print, and talk to them over loopback.
 * Every wait is bounded and every child is reaped by pid, so a broken
 * balancer fails a scenario instead of hanging the suite.  Scenario files
 * (scenario_NN*.c) use only this header, and through it contract.h, the
 * table of every text they look for; scenarios.c builds the suite.
 */
#ifndef HARBOR_HARNESS_H
#define HARBOR_HARNESS_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "contract.h"

/*
 * Time limits in milliseconds.  They bound waits that normally end in
 * microseconds; they only matter when the code under test is broken.
 */
#define HARNESS_IO_MS     5000  /* SO_RCVTIMEO/SO_SNDTIMEO, connect */
#define HARNESS_XFER_MS   15000 /* one whole request/response or echo */
#define HARNESS_START_MS  10000 /* a child's "listening on" line */
#define HARNESS_STOP_MS   5000  /* SIGTERM, then SIGKILL */
#define HARNESS_PROMPT_MS 3000  /* "closes the client promptly" */

/*
 * Every Harbor the harness starts gets this, so that from chapter 09 on
 * its metrics listener takes a free port, not the default 9190; earlier
 * chapters ignore it.
 */
#define HARNESS_METRICS_ENV "METRICS_LISTEN=127.0.0.1:0"

/* A child process: its stdout is a pipe, its stderr an unlinked file. */
struct harness_proc {
    char name[16]; /* "echo", "harbor": for failure messages */
    pid_t pid;
    int reaped; /* 1 once waitpid() returned it; status is valid */
    int status; /* wait status */
    int out_fd; /* read end of the stdout pipe */
    int out_eof;
    char out[4096]; /* stdout read but not yet returned as lines */
    size_t out_len;
    int err_fd;      /* the stderr file, read with pread() */
    size_t log_mark; /* harness_wait_log() looks at stderr after this */
    unsigned port;   /* the port from the listening line, 0 if none */
};

/* The result of harness_run(): a child run to completion. */
struct harness_run {
    int status;    /* wait status */
    int timed_out; /* 1 if it had to be killed */
    char out[4096];
    size_t out_len;
    char err[4096];
    size_t err_len;
};

/* The chapter under test (HARBOR_CH), and the binaries (HARBOR_BIN,
 * ECHO_BIN).  harness_env_ok() prints what is missing and returns -1. */
int harness_chapter(void);
int harness_env_ok(void);

/*
 * A TCase named name, tagged "chNN" (and extra_tags, if not NULL), with
 * the harness's timeout and teardown, added to s.  The timeout is 30 s
 * unless CK_DEFAULT_TIMEOUT is set; CK_TIMEOUT_MULTIPLIER scales both.
 */
TCase *harness_tcase(Suite *s, const char *name, int chapter,
                     const char *extra_tags);

/*
 * Processes.  Call these from the test's main thread only: a child's
 * PR_SET_PDEATHSIG fires when the *thread* that forked it ends.
 * env is a NULL-terminated array of "K=V" added to (or replacing entries
 * of) the inherited environment; NULL means none.
 */
struct harness_proc *harness_spawn(const char *name, const char *bin,
                                   const char *const env[]);
/* The same with arguments: argv[0] is the program's path, argv ends with
 * NULL. */
struct harness_proc *harness_spawn_argv(const char *name,
                                        const char *const argv[],
                                        const char *const env[]);
int harness_read_line(struct harness_proc *p, char *line, size_t len,
                      int timeout_ms);
int harness_alive(struct harness_proc *p);
int harness_wait_exit(struct harness_proc *p, int timeout_ms, int *status);
void harness_kill(struct harness_proc *p, int sig);
void harness_stop(struct harness_proc *p);
void harness_cleanup(void);
int harness_run(const char *bin, const char *const env[], int timeout_ms,
                struct harness_run *r);
int harness_run_argv(const char *const argv[], const char *const env[],
                     int timeout_ms, struct harness_run *r);
/*
 * The next process spawned gets n as both its soft and hard limit on open
 * files (RLIMIT_NOFILE), so that it cannot raise it; 0, the default, leaves
 * the limit as the test runner's.  One spawn only: it resets to 0.
 */
void harness_next_nofile(unsigned n);

/*
 * The contract for bad configuration: bin with var=value (on top of the
 * "K=V" entries of env, which may be NULL) exits 2 before it binds, prints
 * nothing on stdout and one stderr line, harbor: <var>: <reason>:
 * "<value>" (echo says it the same way), whose reason contains reason when that
 * is not NULL.  Fails the test otherwise.
 */
void harness_assert_exits_2(const char *bin, const char *const env[],
                            const char *var, const char *value,
                            const char *reason);
/* harness_assert_exits_2() for HARBOR_BIN, with valid LISTEN, BACKENDS and
 * LOG_LEVEL under env. */
void harness_assert_config_error(const char *var, const char *value,
                                 const char *const env[], const char *reason);

/*
 * echo and harbor, started and listening, or the test fails.  mode is
 * "http" or "tcp"; port 0 picks a free one.  start_harbor sets
 * LISTEN=127.0.0.1:0 and LOG_LEVEL=info unless env gives them.
 */
struct harness_proc *harness_start_echo(const char *mode, unsigned port);
struct harness_proc *harness_start_harbor(const char *backends,
                                          const char *const env[]);
/* "127.0.0.1:p1,127.0.0.1:p2,..." into buf. */
void harness_backends(char *buf, size_t len, const unsigned ports[], size_t n);

/* stderr: all of it so far (NUL-terminated; returns the length), or wait
 * for a line containing needle that was written after the last mark. */
size_t harness_log(struct harness_proc *p, char *buf, size_t len);
/* The last 3 KiB of stderr, for failure messages (a static buffer). */
const char *harness_log_tail(struct harness_proc *p);
void harness_log_mark(struct harness_proc *p);
int harness_wait_log(struct harness_proc *p, const char *needle,
                     int timeout_ms);
int harness_wait_log_line(struct harness_proc *p, const char *needle,
                          char *line, size_t len, int timeout_ms);

/*
 * A file of the test's own (a BACKENDS_FILE) in a fresh directory under
 * /tmp.  replace writes a new file and renames it over the old one, as a
 * deploy tool does; rewrite truncates and writes the same inode, as
 * `cat > file` does.  Remove it, and its directory, at the end of the test.
 */
struct harness_file {
    char dir[64];
    char path[96];
    char tmp[96];
    char env[128]; /* BACKENDS_FILE=<path> */
};
void harness_file_init(struct harness_file *f, const char *tag);
void harness_file_replace(const struct harness_file *f, const char *text);
void harness_file_rewrite(const struct harness_file *f, const char *text);
void harness_file_remove(const struct harness_file *f);

/* A growable byte buffer, always NUL-terminated for convenience. */
struct harness_buf {
    unsigned char *data;
    size_t len, cap;
};
void harness_buf_free(struct harness_buf *b);

/* How reading a connection ended. */
enum harness_end {
    HARNESS_DONE,    /* got what was asked for; the connection is open */
    HARNESS_EOF,     /* the peer closed its side (FIN) */
    HARNESS_RESET,   /* ECONNRESET */
    HARNESS_TIMEOUT, /* nothing ended it before the deadline */
    HARNESS_ERROR    /* any other error; errno says which */
};
const char *harness_end_name(enum harness_end e);

/*
 * Sockets.  Every socket the harness makes is close-on-exec and has
 * SO_RCVTIMEO/SO_SNDTIMEO of HARNESS_IO_MS.  harness_connect returns an fd
 * connected to 127.0.0.1:port, or -1 with errno set.
 */
int harness_connect(unsigned port);
int harness_send_all(int fd, const void *buf, size_t n);
void harness_reset(int fd);
/* End a held connection as a polite client does: shutdown(SHUT_WR), read
 * to EOF within HARNESS_PROMPT_MS (or fail the test), close. */
void harness_finish(int fd);
/* Read until EOF, reset, error or timeout_ms, appending to in. */
enum harness_end harness_read_to_end(int fd, struct harness_buf *in,
                                     int timeout_ms);
/* Send n bytes while reading what comes back (so neither side can stall
 * the other), shutdown(SHUT_WR) after the last one if shut_wr, then read
 * until the peer closes. */
enum harness_end harness_exchange(int fd, const void *out, size_t n,
                                  int shut_wr, struct harness_buf *in,
                                  int timeout_ms);
/* The same loop with the end of the reply left to the caller: it stops
 * as soon as done(in, arg) returns nonzero (HARNESS_DONE), for a test
 * that parses replies of its own, say several pipelined ones. */
enum harness_end harness_exchange_until(
    int fd, const void *out, size_t n, struct harness_buf *in, int timeout_ms,
    int (*done)(const struct harness_buf *, void *), void *arg);
/* Accept on the test's own listener lfd within timeout_ms: the new fd
 * (with the harness's timeouts), or -1. */
int harness_accept(int lfd, int timeout_ms);
/* Read exactly n bytes into buf within timeout_ms: HARNESS_DONE, or how
 * the reading ended (EOF, reset, timeout). */
enum harness_end harness_read_n(int fd, void *buf, size_t n, int timeout_ms);
/* A port nobody listens on: the returned fd is bound to 127.0.0.1:*port
 * but not listening, so connects are refused until it is closed. */
int harness_refusing_port(unsigned *port);
/* A port already in use: the returned fd listens on 127.0.0.1:*port. */
int harness_busy_port(unsigned *port);

/* A minimal HTTP/1.1 client: one request, one Content-Length response. */
struct harness_http_request {
    const char *method;
    const char *path;
    const void *body; /* NULL: no body, no Content-Length */
    size_t body_len;
    int close; /* send Connection: close */
};

struct harness_http_response {
    int status; /* 0 when no complete response arrived */
    char served_by[32];
    char content_type[64];
    char connection[32];
    long content_length; /* -1 when absent */
    const char *body;    /* points into raw, NUL-terminated */
    size_t body_len;
    size_t extra;    /* bytes after the body: a framing bug */
    long elapsed_ms; /* from the first byte sent to the last read */
    enum harness_end end;
    struct harness_buf raw;
};

int harness_http(int fd, const struct harness_http_request *rq,
                 struct harness_http_response *rs);
int harness_http_raw(int fd, const void *req, size_t n,
                     struct harness_http_response *rs);
/* Connect to port, send method path with Connection: close, read. */
int harness_http_get(unsigned port, const char *path,
                     struct harness_http_response *rs);
void harness_http_response_free(struct harness_http_response *rs);
/* The port in an X-Served-By value ":9001", or 0. */
unsigned harness_served_port(const struct harness_http_response *rs);

/*
 * The stage most scenarios stand on: n echo backends (A, B, ...) and
 * Harbor with BACKENDS naming them in that order.  port[i] outlives
 * echo[i], so a scenario can kill a backend (echo[i] = NULL) and start a
 * new one on its port; a slot may also hold a port of the test's own (a
 * refusing one) with echo[i] NULL.  harness_stage_up() is
 * harness_stage_echo() for each slot, then harness_stage_harbor(); a scenario
 * that needs something else in between calls the two itself.
 */
#define HARNESS_STAGE_MAX 4

struct harness_stage {
    struct harness_proc *echo[HARNESS_STAGE_MAX]; /* NULL: not running */
    unsigned port[HARNESS_STAGE_MAX];
    int n;
    struct harness_proc *harbor;
};

/* n echoes of echo_mode ("http" or "tcp") and Harbor with env. */
void harness_stage_up(struct harness_stage *st, int n, const char *echo_mode,
                      const char *const env[]);
/* The same, but slot 0 is D, a port that refuses connects (D for dead):
 * returns the fd that holds it, which the test closes to free the port. */
int harness_stage_up_dead(struct harness_stage *st, int n,
                          const char *const env[]);
/* Start echo i on port (0: any free one) and keep its port in port[i]. */
void harness_stage_echo(struct harness_stage *st, int i, const char *mode,
                        unsigned port);
/* Harbor in front of port[0..n), with env; its log is marked after
 * start-up, so log waits see only what the scenario caused. */
void harness_stage_harbor(struct harness_stage *st, const char *const env[]);
/* Stop Harbor and every echo still running. */
void harness_stage_down(struct harness_stage *st);
/* Which backend served rs: an index into port[], or -1 for none. */
int harness_stage_backend(const struct harness_stage *st,
                          const struct harness_http_response *rs);
/* One GET of path through Harbor, which one of the stage's backends must
 * serve with a 200: which one, as an index into port[]. */
int harness_stage_get(const struct harness_stage *st, const char *path);
/* n sequential GETs through Harbor; count[i] += how many backend i served. */
void harness_tally(const struct harness_stage *st, int n, int count[]);
/* A keep-alive connection through Harbor, left open after one GET: the fd,
 * and in *backend the index of the backend that holds it. */
int harness_stage_hold(const struct harness_stage *st, int *backend);
/* Wait for a line containing needle on p's stderr (after the mark) and
 * copy it to line (if not NULL), or fail showing the tail of stderr. */
void harness_assert_log(struct harness_proc *p, const char *needle, char *line,
                        size_t len, int timeout_ms);

/*
 * /metrics, from chapter 09 on.  harness_metrics_port reads the third
 * stdout line, "metrics on <host>:<port>", and returns the port.  A scrape
 * must be a 200 in the text format: its body (free it).  A sample is read
 * by its whole name with labels, as harness_metric(port,
 * "harbor_bytes_total{direction=\"up\"}"): its value, or -1 when absent.
 * harness_wait_metric scrapes until the value is want (-1: until the
 * sample is gone), for up to HARNESS_METRIC_MS, or fails the test.
 */
#define HARNESS_METRIC_MS 5000
unsigned harness_metrics_port(struct harness_proc *harbor);
char *harness_metrics_scrape(unsigned port);
double harness_metrics_value(const char *body, const char *series);
double harness_metric(unsigned port, const char *series);
void harness_wait_metric(unsigned port, const char *series, double want);

/* Odds and ends.  harness_port_of: the port ending "...:<port>", or 0. */
unsigned harness_port_of(const char *s);
long harness_now_ms(void);
void harness_random(void *buf, size_t n, uint32_t seed);
int harness_contains_ci(const char *hay, const char *needle);

#endif
