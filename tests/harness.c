/*
 * harness.c - processes and logs for the integration scenarios.
 *
 * Shaped by one rule: nothing a test starts may outlive it or hang it.
 * Children get PR_SET_PDEATHSIG and sit in a table that the teardown and an
 * atexit handler empty; every read has a poll() deadline; every wait for an
 * event is a bounded loop on that event, never a sleep standing in for it.
 */
#define _GNU_SOURCE /* pipe2, mkostemp */

#include "harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define STEP_MS  10 /* how often bounded loops look again */
#define MAX_LIVE 64

/*
 * The live children of this process.  Check runs each test in a forked
 * child, so each test starts with an empty table.  A failed assertion
 * _exit()s that child without running atexit handlers; then Check's
 * killpg() of the test's process group and PR_SET_PDEATHSIG kill the
 * children instead.  Only the test's main thread touches the table.
 */
static struct harness_proc *live[MAX_LIVE];

long
harness_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int
harness_chapter(void)
{
    const char *s = getenv("HARBOR_CH");

    return s == NULL ? 0 : (int)strtol(s, NULL, 10); /* "08" is 8 */
}

int
harness_env_ok(void)
{
    static const char *const vars[] = {"HARBOR_BIN", "ECHO_BIN", "HARBOR_CH"};
    int ok = 0;

    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);

        if (v == NULL || *v == '\0') {
            fprintf(stderr, "scenarios: %s is not set\n", vars[i]);
            ok = -1;
        } else if (i < 2 && access(v, X_OK) < 0) {
            fprintf(stderr, "scenarios: %s=%s: %s\n", vars[i], v,
                    strerror(errno));
            ok = -1;
        }
    }
    if (ok < 0)
        fprintf(stderr, "usage: HARBOR_BIN=build/harbor-01 HARBOR_CH=01 "
                        "ECHO_BIN=build/echo build/tests/scenarios\n");
    return ok;
}

static void
teardown(void)
{
    harness_cleanup();
}

TCase *
harness_tcase(Suite *s, const char *name, int chapter, const char *extra_tags)
{
    TCase *tc = tcase_create(name);
    char tags[64];

    snprintf(tags, sizeof tags, "ch%02d%s%s", chapter,
             extra_tags != NULL ? " " : "",
             extra_tags != NULL ? extra_tags : "");
    tcase_set_tags(tc, tags);
    /*
     * tcase_set_timeout() would override CK_DEFAULT_TIMEOUT, so call it
     * only when that is unset.  Both paths apply CK_TIMEOUT_MULTIPLIER.
     */
    if (getenv("CK_DEFAULT_TIMEOUT") == NULL)
        tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, NULL, teardown);
    suite_add_tcase(s, tc);
    return tc;
}

/* ---- processes -------------------------------------------------------- */

static void
track(struct harness_proc *p)
{
    static int registered;

    if (!registered) {
        atexit(harness_cleanup);
        registered = 1;
    }
    for (size_t i = 0; i < MAX_LIVE; i++) {
        if (live[i] == NULL) {
            live[i] = p;
            return;
        }
    }
    ck_abort_msg("harness: more than %d live children", MAX_LIVE);
}

static void
untrack(const struct harness_proc *p)
{
    for (size_t i = 0; i < MAX_LIVE; i++)
        if (live[i] == p)
            live[i] = NULL;
}

/*
 * environ with env's entries added, or replacing those with the same key;
 * within env, a later entry replaces an earlier one.
 */
static char **
build_env(const char *const env[])
{
    size_t n = 0, m = 0, k = 0;
    char **v;

    while (environ[n] != NULL)
        n++;
    while (env != NULL && env[m] != NULL)
        m++;
    v = calloc(n + m + 1, sizeof *v);
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < m; i++) {
        size_t keylen = strcspn(env[i], "=");
        int later = 0;

        /* getenv() finds the first match: keep only the last of a key. */
        for (size_t j = i + 1; j < m; j++)
            if (strncmp(env[j], env[i], keylen + 1) == 0)
                later = 1;
        if (!later)
            v[k++] = (char *)env[i];
    }
    for (size_t i = 0; i < n; i++) {
        size_t keylen = strcspn(environ[i], "=");
        int replaced = 0;

        for (size_t j = 0; j < m; j++)
            if (strncmp(env[j], environ[i], keylen + 1) == 0)
                replaced = 1;
        if (!replaced)
            v[k++] = environ[i];
    }
    return v;
}

/*
 * In the child, between fork and exec: only async-signal-safe calls.
 * Die with the parent, undo any signal state the test runner set up, and
 * point stdin at /dev/null, stdout at the pipe, stderr at the log file.
 */
static unsigned next_nofile; /* harness_next_nofile(); 0: unchanged */
static unsigned nofile;      /* the spawn in progress: what the child sets */

void
harness_next_nofile(unsigned n)
{
    next_nofile = n;
}

static void
exec_child(const char *const argv[], char **envp, pid_t parent, int out_fd,
           int err_fd)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGALRM};
    sigset_t none;
    int in_fd;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(127); /* the parent died before prctl took effect */
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    in_fd = open("/dev/null", O_RDONLY);
    if (in_fd < 0 || dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
        dup2(err_fd, 2) < 0)
        _exit(127);
    if (in_fd > 2)
        close(in_fd);
    if (nofile > 0) {
        struct rlimit rl = {nofile, nofile};

        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            _exit(127);
    }
    execve(argv[0], (char *const *)argv, envp);
    {
        static const char msg[] = "harness: exec failed\n";
        ssize_t w = write(2, msg, sizeof msg - 1);

        (void)w;
    }
    _exit(127);
}

struct harness_proc *
harness_spawn(const char *name, const char *bin, const char *const env[])
{
    const char *argv[] = {bin, NULL};

    return harness_spawn_argv(name, argv, env);
}

struct harness_proc *
harness_spawn_argv(const char *name, const char *const argv[],
                   const char *const env[])
{
    struct harness_proc *p = calloc(1, sizeof *p);
    char path[] = "/tmp/harness-stderr-XXXXXX";
    char **envp = build_env(env);
    int pipefd[2] = {-1, -1};
    pid_t parent = getpid();

    nofile = next_nofile; /* for this spawn only */
    next_nofile = 0;
    if (p == NULL || envp == NULL)
        goto fail;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->out_fd = p->err_fd = -1;
    /* Close-on-exec, so no other child inherits this child's pipe end and
     * keeps its EOF from arriving. */
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        goto fail;
    p->err_fd = mkostemp(path, O_CLOEXEC);
    if (p->err_fd < 0)
        goto fail;
    unlink(path);
    p->pid = fork();
    if (p->pid < 0)
        goto fail;
    if (p->pid == 0)
        exec_child(argv, envp, parent, pipefd[1], p->err_fd);
    close(pipefd[1]);
    p->out_fd = pipefd[0];
    free(envp);
    track(p);
    return p;

fail:
    if (pipefd[0] >= 0) {
        close(pipefd[0]);
        close(pipefd[1]);
    }
    if (p != NULL && p->err_fd >= 0)
        close(p->err_fd);
    free(envp);
    free(p);
    return NULL;
}

/* Read what stdout has now, waiting at most timeout_ms for something. */
static void
read_out(struct harness_proc *p, int timeout_ms)
{
    struct pollfd pfd = {p->out_fd, POLLIN, 0};
    char discard[4096];
    ssize_t n;

    if (p->out_eof) {
        sleep_ms(timeout_ms);
        return;
    }
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return;
    if (p->out_len < sizeof p->out)
        n = read(p->out_fd, p->out + p->out_len, sizeof p->out - p->out_len);
    else
        n = read(p->out_fd, discard, sizeof discard); /* keep it flowing */
    if (n > 0 && p->out_len < sizeof p->out)
        p->out_len += (size_t)n;
    else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
        p->out_eof = 1;
}

int
harness_read_line(struct harness_proc *p, char *line, size_t len,
                  int timeout_ms)
{
    long deadline = harness_now_ms() + timeout_ms;

    for (;;) {
        char *nl = memchr(p->out, '\n', p->out_len);
        long left = deadline - harness_now_ms();

        if (nl != NULL) {
            size_t n = (size_t)(nl - p->out);

            snprintf(line, len, "%.*s", (int)n, p->out);
            memmove(p->out, nl + 1, p->out_len - n - 1);
            p->out_len -= n + 1;
            return 0;
        }
        if (p->out_eof || p->out_len == sizeof p->out || left <= 0) {
            errno = p->out_eof ? EPIPE : ETIMEDOUT;
            return -1;
        }
        read_out(p, left < STEP_MS * 10 ? (int)left : STEP_MS * 10);
    }
}

static int
reap(struct harness_proc *p)
{
    if (!p->reaped && waitpid(p->pid, &p->status, WNOHANG) == p->pid)
        p->reaped = 1;
    return p->reaped;
}

int
harness_alive(struct harness_proc *p)
{
    return !reap(p);
}

int
harness_wait_exit(struct harness_proc *p, int timeout_ms, int *status)
{
    long deadline = harness_now_ms() + timeout_ms;

    /* Keep draining stdout, so a child blocked on a full pipe can exit. */
    while (!reap(p) && harness_now_ms() < deadline)
        read_out(p, STEP_MS);
    if (status != NULL)
        *status = p->status;
    return p->reaped ? 0 : -1;
}

void
harness_kill(struct harness_proc *p, int sig)
{
    if (!reap(p))
        kill(p->pid, sig);
}

void
harness_stop(struct harness_proc *p)
{
    if (p == NULL)
        return;
    harness_kill(p, SIGTERM);
    if (harness_wait_exit(p, HARNESS_STOP_MS, NULL) < 0) {
        harness_kill(p, SIGKILL);
        /* SIGKILL cannot be caught: this wait ends. */
        while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
            ;
        p->reaped = 1;
    }
    untrack(p);
    close(p->out_fd);
    close(p->err_fd);
    free(p);
}

void
harness_cleanup(void)
{
    for (size_t i = MAX_LIVE; i-- > 0;)
        if (live[i] != NULL)
            harness_stop(live[i]);
}

int
harness_run(const char *bin, const char *const env[], int timeout_ms,
            struct harness_run *r)
{
    const char *argv[] = {bin, NULL};

    return harness_run_argv(argv, env, timeout_ms, r);
}

int
harness_run_argv(const char *const argv[], const char *const env[],
                 int timeout_ms, struct harness_run *r)
{
    struct harness_proc *p = harness_spawn_argv("run", argv, env);
    long deadline;

    memset(r, 0, sizeof *r);
    if (p == NULL)
        return -1;
    if (harness_wait_exit(p, timeout_ms, NULL) < 0) {
        r->timed_out = 1;
        harness_kill(p, SIGKILL);
        harness_wait_exit(p, HARNESS_STOP_MS, NULL);
    }
    /* It has exited: its end of the pipe is closed, EOF comes at once. */
    deadline = harness_now_ms() + HARNESS_IO_MS;
    while (!p->out_eof && harness_now_ms() < deadline)
        read_out(p, STEP_MS);
    r->out_len = p->out_len < sizeof r->out ? p->out_len : sizeof r->out - 1;
    memcpy(r->out, p->out, r->out_len);
    r->err_len = harness_log(p, r->err, sizeof r->err);
    r->status = p->status;
    harness_stop(p);
    return r->timed_out ? -1 : 0;
}

void
harness_assert_exits_2(const char *bin, const char *const env[],
                       const char *var, const char *value, const char *reason)
{
    char bad[512], prefix[64], suffix[512];
    const char *all[16];
    struct harness_run r;
    size_t plen, slen, n = 0;

    /* Later entries win: var=value over env. */
    for (; env != NULL && *env != NULL && n < 14; env++)
        all[n++] = *env;
    snprintf(bad, sizeof bad, "%s=%s", var, value);
    all[n++] = bad;
    all[n] = NULL;
    plen =
        (size_t)snprintf(prefix, sizeof prefix, CONTRACT_BAD_SETTING_HEAD, var);
    slen = (size_t)snprintf(suffix, sizeof suffix,
                            CONTRACT_BAD_SETTING_TAIL "\n", value);
    ck_assert_msg(harness_run(bin, all, HARNESS_START_MS, &r) == 0,
                  "%s: %s did not exit; stderr: %s", bad, bin, r.err);
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2,
                  "%s: wait status %#x, want exit 2; stderr: %s", bad,
                  (unsigned)r.status, r.err);
    ck_assert_msg(r.out_len == 0, "%s: stdout: %s", bad, r.out);
    ck_assert_msg(r.err_len > plen + slen &&
                      strchr(r.err, '\n') == r.err + r.err_len - 1,
                  "%s: want one line, got: %s", bad, r.err);
    ck_assert_msg(strncmp(r.err, prefix, plen) == 0, "%s: want %s..., got: %s",
                  bad, prefix, r.err);
    ck_assert_msg(strcmp(r.err + r.err_len - slen, suffix) == 0,
                  "%s: want ...%s, got: %s", bad, suffix, r.err);
    ck_assert_msg(reason == NULL || strstr(r.err, reason) != NULL,
                  "%s: the reason does not say \"%s\": %s", bad, reason, r.err);
}

void
harness_assert_config_error(const char *var, const char *value,
                            const char *const env[], const char *reason)
{
    const char *all[15] = {"LISTEN=127.0.0.1:0", "BACKENDS=127.0.0.1:9",
                           "LOG_LEVEL=info", HARNESS_METRICS_ENV};
    size_t n = 4;

    /* Later entries win: env over the defaults. */
    for (; env != NULL && *env != NULL && n < 14; env++)
        all[n++] = *env;
    all[n] = NULL;
    harness_assert_exits_2(getenv("HARBOR_BIN"), all, var, value, reason);
}

unsigned
harness_port_of(const char *line)
{
    const char *colon = strrchr(line, ':');
    char *end;
    unsigned long port;

    if (colon == NULL || !isdigit((unsigned char)colon[1]))
        return 0;
    port = strtoul(colon + 1, &end, 10);
    return *end == '\0' && port > 0 && port <= 65535 ? (unsigned)port : 0;
}

/* Fail the test with what the child said on stderr. */
static void
abort_start(struct harness_proc *p, const char *what, const char *line)
{
    char log[2048];

    harness_log(p, log, sizeof log);
    ck_abort_msg("%s did not start: %s \"%s\"; stderr: %s", p->name, what, line,
                 log);
}

struct harness_proc *
harness_start_echo(const char *mode, unsigned port)
{
    char mode_env[32], port_env[32], line[256];
    const char *env[] = {mode_env, port_env, NULL};
    struct harness_proc *p;

    snprintf(mode_env, sizeof mode_env, "MODE=%s", mode);
    snprintf(port_env, sizeof port_env, "PORT=%u", port);
    p = harness_spawn("echo", getenv("ECHO_BIN"), env);
    ck_assert_msg(p != NULL, "spawn echo: %s", strerror(errno));
    line[0] = '\0';
    if (harness_read_line(p, line, sizeof line, HARNESS_START_MS) < 0 ||
        strncmp(line, "echo listening on :", 19) != 0 ||
        (p->port = harness_port_of(line)) == 0)
        abort_start(p, "want \"echo listening on :<port>\", got", line);
    return p;
}

struct harness_proc *
harness_start_harbor(const char *backends, const char *const env[])
{
    static const char listening[] = CONTRACT_LISTENING " ";
    char backends_env[4096], line[512];
    const char *v[32];
    size_t n = 0;
    struct harness_proc *p;

    /* Defaults first: build_env() lets the later, caller's, entries win. */
    snprintf(backends_env, sizeof backends_env, "BACKENDS=%s", backends);
    v[n++] = "LISTEN=127.0.0.1:0";
    v[n++] = HARNESS_METRICS_ENV;
    v[n++] = "LOG_LEVEL=info";
    v[n++] = backends_env;
    for (size_t i = 0; env != NULL && env[i] != NULL && n < 31; i++)
        v[n++] = env[i];
    v[n] = NULL;
    p = harness_spawn("harbor", getenv("HARBOR_BIN"), v);
    ck_assert_msg(p != NULL, "spawn harbor: %s", strerror(errno));
    line[0] = '\0';
    if (harness_read_line(p, line, sizeof line, HARNESS_START_MS) < 0 ||
        strcmp(line, CONTRACT_HARBOR_UP) != 0)
        abort_start(p, "want \"" CONTRACT_HARBOR_UP "\", got", line);
    line[0] = '\0';
    if (harness_read_line(p, line, sizeof line, HARNESS_START_MS) < 0 ||
        strncmp(line, listening, sizeof listening - 1) != 0 ||
        (p->port = harness_port_of(line)) == 0)
        abort_start(p, "want \"" CONTRACT_LISTENING " <host>:<port>\", got",
                    line);
    return p;
}

void
harness_backends(char *buf, size_t len, const unsigned ports[], size_t n)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s127.0.0.1:%u",
                                i > 0 ? "," : "", ports[i]);
}

/* ---- logs ------------------------------------------------------------- */

size_t
harness_log(struct harness_proc *p, char *buf, size_t len)
{
    ssize_t n = pread(p->err_fd, buf, len - 1, 0);

    n = n < 0 ? 0 : n;
    buf[n] = '\0';
    return (size_t)n;
}

const char *
harness_log_tail(struct harness_proc *p)
{
    /* 3 KiB: with the assertion's own words, within Check's 4 KiB limit
     * on a message, past which a failure is reported as an early exit. */
    static char tail[3072];
    struct stat st;
    off_t from = 0;
    ssize_t n;

    if (fstat(p->err_fd, &st) == 0 && st.st_size >= (off_t)sizeof tail)
        from = st.st_size - (off_t)sizeof tail + 1;
    n = pread(p->err_fd, tail, sizeof tail - 1, from);
    tail[n < 0 ? 0 : n] = '\0';
    return tail;
}

void
harness_log_mark(struct harness_proc *p)
{
    /* fstat, not lseek: the child shares this file's offset. */
    struct stat st;

    p->log_mark = fstat(p->err_fd, &st) < 0 ? 0 : (size_t)st.st_size;
}

int
harness_wait_log_line(struct harness_proc *p, const char *needle, char *line,
                      size_t len, int timeout_ms)
{
    static char log[1 << 20];
    long deadline = harness_now_ms() + timeout_ms;

    for (;;) {
        size_t n = harness_log(p, log, sizeof log);
        const char *hit =
            n > p->log_mark ? strstr(log + p->log_mark, needle) : NULL;

        if (hit != NULL) {
            const char *start = hit, *end = strchr(hit, '\n');

            while (start > log + p->log_mark && start[-1] != '\n')
                start--;
            if (end == NULL)
                end = log + n;
            if (line != NULL)
                snprintf(line, len, "%.*s", (int)(end - start), start);
            return 0;
        }
        if (harness_now_ms() >= deadline)
            return -1;
        sleep_ms(STEP_MS);
    }
}

int
harness_wait_log(struct harness_proc *p, const char *needle, int timeout_ms)
{
    return harness_wait_log_line(p, needle, NULL, 0, timeout_ms);
}

/* ---- files ------------------------------------------------------------ */

void
harness_file_init(struct harness_file *f, const char *tag)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/harbor-%s-XXXXXX", tag);
    ck_assert_msg(mkdtemp(f->dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(f->path, sizeof f->path, "%s/backends", f->dir);
    snprintf(f->tmp, sizeof f->tmp, "%s/backends.new", f->dir);
    snprintf(f->env, sizeof f->env, "BACKENDS_FILE=%s", f->path);
}

static void
write_file(const char *path, const char *text)
{
    size_t n = strlen(text);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_msg(write(fd, text, n) == (ssize_t)n, "write %s: %s", path,
                  strerror(errno));
    close(fd);
}

void
harness_file_replace(const struct harness_file *f, const char *text)
{
    write_file(f->tmp, text);
    ck_assert_msg(rename(f->tmp, f->path) == 0, "rename %s: %s", f->tmp,
                  strerror(errno));
}

void
harness_file_rewrite(const struct harness_file *f, const char *text)
{
    write_file(f->path, text);
}

void
harness_file_remove(const struct harness_file *f)
{
    unlink(f->path);
    unlink(f->tmp);
    rmdir(f->dir);
}
