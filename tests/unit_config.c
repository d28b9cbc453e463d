/*
 * unit_config.c - tests for common/config.c (and log_init, which reads
 * LOG_LEVEL through it): the pure parsers with every kind of bad value, and
 * the start-up readers, whose whole promise is "the default when unset, and
 * on a bad value exactly one stderr line and exit status 2".  The parsers
 * are tables: one row per input, so adding a case is adding a line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "unit.h"

/* A fixed set of values, as chapter 07 gives STRATEGY. */
static const char *const strategy_names[] = {"rr", "least", NULL};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Fail unless a parser said why it failed. */
static void
assert_why(const char *input, const char *why)
{
    ck_assert_msg(why != NULL && why[0] != '\0', "\"%s\": no reason given",
                  input);
}

/* addr_parse ------------------------------------------------------------ */

static const struct {
    const char *s, *host;
    unsigned port;
} good_addrs[] = {
    {":9090", "", 9090},
    {"127.0.0.1:80", "127.0.0.1", 80},
    {"localhost:8080", "localhost", 8080},
    {"[::1]:9000", "::1", 9000},
    {":0", "", 0}, /* port 0 is for the caller to refuse, if it must */
    {"example.com:65535", "example.com", 65535},
    {"10.0.0.1:007", "10.0.0.1", 7},
};

static const char *const bad_addrs[] = {
    "",         "9090",       "host:",     "host:abc",
    "host:-1",  "host:65536", "host:+80",  "host: 80",
    "host:80 ", "host:0x50",  "host:8o",   "host:99999999999999999999",
    "[::1",     "[::1]",      "[::1]9000", "[::1]:",
    "::1:80", /* an IPv6 literal needs brackets, or its port is ambiguous */
};

START_TEST(addr_parse_accepts_valid)
{
    struct addr a;
    const char *why = NULL;

    ck_assert_msg(addr_parse(good_addrs[_i].s, &a, &why) == 0, "\"%s\": %s",
                  good_addrs[_i].s, why);
    ck_assert_str_eq(a.text, good_addrs[_i].s);
    ck_assert_str_eq(a.host, good_addrs[_i].host);
    ck_assert_uint_eq(a.port, good_addrs[_i].port);
    ck_assert_uint_eq(a.salen, 0); /* parsed, not yet resolved */
}
END_TEST

START_TEST(addr_parse_rejects_bad)
{
    struct addr a;
    const char *why = NULL;

    ck_assert_msg(addr_parse(bad_addrs[_i], &a, &why) == -1, "\"%s\" accepted",
                  bad_addrs[_i]);
    assert_why(bad_addrs[_i], why);
}
END_TEST

/*
 * struct addr has room for a 255-byte host (the DNS limit is 253).  A longer
 * one, bracketed or not, must be refused: copying it would run past host[].
 */
START_TEST(addr_parse_host_length_limit)
{
    static const char *const fmt[] = {"%s:80", "[%s]:80"};
    char host[300], s[ADDR_TEXT_MAX];
    struct addr a;
    const char *why = NULL;
    size_t len, f;

    for (f = 0; f < NELEM(fmt); f++) {
        memset(host, 'h', 255);
        host[255] = '\0';
        snprintf(s, sizeof(s), fmt[f], host);
        ck_assert_int_eq(addr_parse(s, &a, &why), 0);
        ck_assert_uint_eq(strlen(a.host), 255);
        ck_assert_uint_eq(a.port, 80);

        for (len = 256; len <= 262; len += 3) {
            memset(host, 'h', len);
            host[len] = '\0';
            snprintf(s, sizeof(s), fmt[f], host);
            why = NULL;
            ck_assert_msg(addr_parse(s, &a, &why) == -1,
                          "%zu-byte host accepted (%s)", len,
                          f == 0 ? "host:80" : "[host]:80");
            assert_why(s, why);
        }
    }
    /* Longer than any address text: refused, not truncated. */
    memset(host, 'h', 290);
    host[290] = '\0';
    why = NULL;
    ck_assert_int_eq(addr_parse(host, &a, &why), -1);
    assert_why("(290 bytes)", why);
}
END_TEST

START_TEST(addr_resolve_fills_sockaddr)
{
    struct addr a;
    const char *why = NULL;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.sa;
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.sa;

    ck_assert_int_eq(addr_parse("127.0.0.1:8080", &a, &why), 0);
    ck_assert_int_eq(addr_resolve(&a, &why), 0);
    ck_assert_uint_eq(a.salen, sizeof(struct sockaddr_in));
    ck_assert_int_eq(sin->sin_family, AF_INET);
    ck_assert_uint_eq(ntohs(sin->sin_port), 8080);
    ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);

    ck_assert_int_eq(addr_parse("[::1]:9000", &a, &why), 0);
    ck_assert_int_eq(addr_resolve(&a, &why), 0);
    ck_assert_int_eq(sin6->sin6_family, AF_INET6);
    ck_assert_uint_eq(ntohs(sin6->sin6_port), 9000);

    ck_assert_int_eq(addr_parse("no.such.host.invalid:80", &a, &why), 0);
    why = NULL;
    ck_assert_int_eq(addr_resolve(&a, &why), -1);
    assert_why("no.such.host.invalid:80", why);
}
END_TEST

/* number_parse and choice_parse ---------------------------------------- */

static const struct {
    const char *s;
    unsigned long max, want;
} good_numbers[] = {
    {"0", CONFIG_NUMBER_MAX, 0},
    {"42", CONFIG_NUMBER_MAX, 42},
    {"010", CONFIG_NUMBER_MAX, 10}, /* decimal, not octal */
    {"2147483647", CONFIG_NUMBER_MAX, CONFIG_NUMBER_MAX},
    {"10", 10, 10},
    {"0", 0, 0},
    {"18446744073709551615", ULONG_MAX, ULONG_MAX},
};

static const struct {
    const char *s;
    unsigned long max;
} bad_numbers[] = {
    {"", CONFIG_NUMBER_MAX},
    {"abc", CONFIG_NUMBER_MAX},
    {"-1", CONFIG_NUMBER_MAX},
    {"-0", CONFIG_NUMBER_MAX},
    {"+1", CONFIG_NUMBER_MAX},
    {"12abc", CONFIG_NUMBER_MAX},
    {" 1", CONFIG_NUMBER_MAX},
    {"1 ", CONFIG_NUMBER_MAX},
    {"1.5", CONFIG_NUMBER_MAX},
    {"0x10", CONFIG_NUMBER_MAX},
    {"99999999999999999999999", CONFIG_NUMBER_MAX},
    {"2147483648", CONFIG_NUMBER_MAX},
    {"11", 10},
    {"1", 0},
    {"18446744073709551616", ULONG_MAX}, /* wraps to 0 if unchecked */
    {"99999999999999999999", ULONG_MAX},
};

START_TEST(number_parse_accepts_valid)
{
    unsigned long n = 12345;
    const char *why = NULL;

    ck_assert_msg(
        number_parse(good_numbers[_i].s, good_numbers[_i].max, &n, &why) == 0,
        "\"%s\": %s", good_numbers[_i].s, why);
    ck_assert_uint_eq(n, good_numbers[_i].want);
}
END_TEST

START_TEST(number_parse_rejects_bad)
{
    unsigned long n;
    const char *why = NULL;

    ck_assert_msg(
        number_parse(bad_numbers[_i].s, bad_numbers[_i].max, &n, &why) == -1,
        "\"%s\" (max %lu) accepted", bad_numbers[_i].s, bad_numbers[_i].max);
    assert_why(bad_numbers[_i].s, why);
}
END_TEST

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

START_TEST(choice_parse_finds_index_or_fails)
{
    static const char *const bad[] = {"",      "bogus", "inf",  "info ",
                                      " info", "INFO",  "infox"};
    const char *why;
    size_t i;
    int which;

    for (i = 0; levels[i] != NULL; i++) {
        which = -1;
        ck_assert_int_eq(choice_parse(levels[i], levels, &which, &why), 0);
        ck_assert_int_eq(which, (int)i);
    }
    for (i = 0; i < NELEM(bad); i++) {
        why = NULL;
        ck_assert_msg(choice_parse(bad[i], levels, &which, &why) == -1,
                      "\"%s\" accepted", bad[i]);
        assert_why(bad[i], why);
    }
}
END_TEST

/* backends_parse --------------------------------------------------------- */

START_TEST(backends_parse_resolves_each_entry)
{
    struct addr *v = NULL;
    size_t n = 0, bad = 99;
    const char *why = NULL;

    ck_assert_msg(backends_parse("127.0.0.1:9001,127.0.0.1:9002", &v, &n, &why,
                                 &bad) == 0,
                  "%s", why);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(v[0].text, "127.0.0.1:9001");
    ck_assert_str_eq(v[1].text, "127.0.0.1:9002");
    ck_assert_uint_eq(v[0].port, 9001);
    ck_assert_uint_eq(v[1].port, 9002);
    ck_assert_uint_gt(v[0].salen, 0);
    ck_assert_uint_gt(v[1].salen, 0);
    ck_assert_int_eq(v[0].sa.ss_family, AF_INET);
    free(v);

    v = NULL;
    ck_assert_int_eq(
        backends_parse("localhost:7000,[::1]:7001", &v, &n, &why, &bad), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(v[0].host, "localhost");
    ck_assert_uint_gt(v[0].salen, 0);
    ck_assert_int_eq(v[1].sa.ss_family, AF_INET6);
    free(v);
}
END_TEST

/* bad is the 1-based entry at fault; 0 means "don't care". */
static const struct {
    const char *list;
    size_t bad;
} bad_lists[] = {
    {"", 0},
    {"127.0.0.1:1,,127.0.0.1:2", 2},
    {",127.0.0.1:1", 1},
    {"127.0.0.1:1,", 2},
    {"127.0.0.1:0", 1},
    {"127.0.0.1:1,127.0.0.1:0", 2},
    {"127.0.0.1:1,127.0.0.1:65536", 2},
    {"127.0.0.1:1,127.0.0.1:2,127.0.0.1", 3},
    {"127.0.0.1:1,127.0.0.1:", 2},
    {":9001", 1}, /* a backend needs a host to dial */
    {"127.0.0.1:1,no.such.host.invalid:80", 2},
    {"127.0.0.1:1,127.0.0.1:1", 2}, /* the pool would refuse it anyway */
    {"127.0.0.1:1 ,127.0.0.1:2", 1},
};

START_TEST(backends_parse_rejects_bad)
{
    struct addr *v = NULL;
    size_t n = 0, bad = 0;
    const char *why = NULL;

    /* On failure nothing is returned to free; ASan reports any leak. */
    ck_assert_msg(backends_parse(bad_lists[_i].list, &v, &n, &why, &bad) == -1,
                  "\"%s\" accepted", bad_lists[_i].list);
    assert_why(bad_lists[_i].list, why);
    if (bad_lists[_i].bad != 0)
        ck_assert_msg(bad == bad_lists[_i].bad, "\"%s\": bad %zu, want %zu",
                      bad_lists[_i].list, bad, bad_lists[_i].bad);
}
END_TEST

/* The start-up readers: defaults and valid values ----------------------- */

START_TEST(config_listen_default_or_set)
{
    struct addr a;

    unsetenv("LISTEN");
    config_listen("LISTEN", ":9090", &a);
    ck_assert_str_eq(a.host, "");
    ck_assert_uint_eq(a.port, 9090);

    setenv("LISTEN", "127.0.0.1:0", 1);
    config_listen("LISTEN", ":9090", &a);
    ck_assert_str_eq(a.host, "127.0.0.1");
    ck_assert_uint_eq(a.port, 0);
    unsetenv("LISTEN");
}
END_TEST

START_TEST(config_backends_default_or_set)
{
    struct addr *v = NULL;
    size_t n = 0;

    unsetenv("BACKENDS");
    config_backends("BACKENDS", "127.0.0.1:9001,127.0.0.1:9002", &v, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(v[1].text, "127.0.0.1:9002");
    free(v);

    setenv("BACKENDS", "localhost:7000", 1);
    config_backends("BACKENDS", "127.0.0.1:9001,127.0.0.1:9002", &v, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(v[0].port, 7000);
    ck_assert_uint_gt(v[0].salen, 0);
    free(v);
    unsetenv("BACKENDS");
}
END_TEST

START_TEST(config_number_default_or_set)
{
    unsetenv("IDLE_TIMEOUT_MS");
    ck_assert_uint_eq(config_number("IDLE_TIMEOUT_MS", 60000), 60000);
    setenv("IDLE_TIMEOUT_MS", "250", 1);
    ck_assert_uint_eq(config_number("IDLE_TIMEOUT_MS", 60000), 250);
    setenv("IDLE_TIMEOUT_MS", "0", 1);
    ck_assert_uint_eq(config_number("IDLE_TIMEOUT_MS", 60000), 0);
    setenv("IDLE_TIMEOUT_MS", "2147483647", 1);
    ck_assert_uint_eq(config_number("IDLE_TIMEOUT_MS", 60000),
                      CONFIG_NUMBER_MAX);
    unsetenv("IDLE_TIMEOUT_MS");
}
END_TEST

START_TEST(config_choice_default_or_set)
{
    unsetenv("STRATEGY");
    ck_assert_int_eq(config_choice("STRATEGY", "rr", strategy_names), 0);
    ck_assert_int_eq(config_choice("STRATEGY", "least", strategy_names), 1);
    setenv("STRATEGY", "least", 1);
    ck_assert_int_eq(config_choice("STRATEGY", "rr", strategy_names), 1);
    setenv("STRATEGY", "rr", 1);
    ck_assert_int_eq(config_choice("STRATEGY", "least", strategy_names), 0);
    unsetenv("STRATEGY");
}
END_TEST

START_TEST(log_init_reads_log_level)
{
    unsetenv("LOG_LEVEL");
    log_set_level(LOG_ERROR);
    log_init();
    ck_assert(log_enabled(LOG_INFO));
    ck_assert(!log_enabled(LOG_DEBUG));

    setenv("LOG_LEVEL", "debug", 1);
    log_init();
    ck_assert(log_enabled(LOG_DEBUG));

    setenv("LOG_LEVEL", "error", 1);
    log_init();
    ck_assert(log_enabled(LOG_ERROR));
    ck_assert(!log_enabled(LOG_WARN));
    unsetenv("LOG_LEVEL");
    log_set_level(LOG_INFO);
}
END_TEST

/* The start-up readers: bad values ---------------------------------------- */

enum reader { LISTEN, BACKENDS, NUMBER, CHOICE, LOGLEVEL, FAIL };

/* One row per bad value: which reader, its variable, the value, and a word
 * the reason must contain. */
static const struct bad_env {
    enum reader reader;
    const char *var, *value, *reason;
} bad_env[] = {
    {LISTEN, "LISTEN", "", "empty"},
    {LISTEN, "LISTEN", "9090", "port"},
    {LISTEN, "LISTEN", "host:", "port"},
    {LISTEN, "LISTEN", "host:abc", "port"},
    {LISTEN, "LISTEN", "host:-1", "port"},
    {LISTEN, "LISTEN", "host:65536", "range"},
    {LISTEN, "LISTEN", "host:99999999999999999999", "range"},
    {LISTEN, "LISTEN", "[::1", "]"},
    {LISTEN, "LISTEN", "::1:80", "bracket"},
    {BACKENDS, "BACKENDS", "", "empty"},
    {BACKENDS, "BACKENDS", "127.0.0.1", "port"},
    {BACKENDS, "BACKENDS", "127.0.0.1:0", "range"},
    {BACKENDS, "BACKENDS", "127.0.0.1:1,127.0.0.1:65536", "entry 2"},
    {BACKENDS, "BACKENDS", "127.0.0.1:1,,127.0.0.1:2", "entry 2"},
    {BACKENDS, "BACKENDS", "no.such.host.invalid:80", "resolve"},
    {NUMBER, "IDLE_TIMEOUT_MS", "", "empty"},
    {NUMBER, "IDLE_TIMEOUT_MS", "abc", "number"},
    {NUMBER, "IDLE_TIMEOUT_MS", "12abc", "number"},
    {NUMBER, "IDLE_TIMEOUT_MS", " 1", "number"},
    {NUMBER, "IDLE_TIMEOUT_MS", "-1", "negative"},
    {NUMBER, "IDLE_TIMEOUT_MS", "99999999999999999999999", "large"},
    {NUMBER, "IDLE_TIMEOUT_MS", "2147483648", "large"},
    {CHOICE, "STRATEGY", "bogus", "unknown"},
    {CHOICE, "STRATEGY", "", "unknown"},
    {CHOICE, "STRATEGY", "RR", "unknown"},
    {LOGLEVEL, "LOG_LEVEL", "verbose", "unknown"},
    {LOGLEVEL, "LOG_LEVEL", "", "unknown"},
};

/* Set the variable and call its reader: it should not return. */
static void
read_bad(const struct bad_env *c)
{
    struct addr a, *v = NULL;
    size_t n;

    setenv(c->var, c->value, 1);
    switch (c->reader) {
    case LISTEN:
        config_listen(c->var, ":9090", &a);
        break;
    case BACKENDS:
        config_backends(c->var, "127.0.0.1:9001", &v, &n);
        free(v);
        break;
    case NUMBER:
        config_number(c->var, 1);
        break;
    case CHOICE:
        config_choice(c->var, "rr", strategy_names);
        break;
    case LOGLEVEL:
        log_init();
        break;
    case FAIL:
        config_fail(c->var, c->reason, c->value);
    }
}

/* Check runs this in a child and expects exit status 2. */
START_TEST(config_bad_value_exits_2)
{
    int fd = open("/dev/null", O_WRONLY);

    if (fd >= 0) {
        dup2(fd, STDERR_FILENO); /* the line itself is the next test's */
        close(fd);
    }
    read_bad(&bad_env[_i]);
}
END_TEST

/*
 * Run read_bad in a child with stderr on a pipe; return its wait status and
 * what it wrote (NUL-terminated).  Bounded: a child silent for 3s is
 * killed, and the test fails on its status.
 */
static int
capture_bad(const struct bad_env *c, char *out, size_t len)
{
    struct pollfd pfd;
    size_t got = 0;
    ssize_t r;
    int fds[2], status = 0;
    pid_t pid;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        read_bad(c);
        _exit(0); /* returned: the parent sees status 0, not 2 */
    }
    close(fds[1]);
    pfd.fd = fds[0];
    pfd.events = POLLIN;
    for (;;) {
        if (poll(&pfd, 1, 3000) <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        r = read(fds[0], out + got, len - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || (got += (size_t)r) == len - 1)
            break;
    }
    out[got] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

START_TEST(config_bad_value_prints_one_line)
{
    const struct bad_env *c = &bad_env[_i];
    char out[512], prefix[128], suffix[128];
    size_t olen, plen, slen;
    int status;

    status = capture_bad(c, out, sizeof(out));
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2,
                  "%s=\"%s\": status 0x%x, want exit 2", c->var, c->value,
                  (unsigned)status);

    /* harbor: <VAR>: <reason>: "<value>"\n, and nothing else */
    snprintf(prefix, sizeof(prefix), "harbor: %s: ", c->var);
    snprintf(suffix, sizeof(suffix), ": \"%s\"\n", c->value);
    olen = strlen(out);
    plen = strlen(prefix);
    slen = strlen(suffix);
    ck_assert_msg(olen > plen + slen && strncmp(out, prefix, plen) == 0 &&
                      strcmp(out + olen - slen, suffix) == 0 &&
                      strchr(out, '\n') == out + olen - 1,
                  "%s=\"%s\": got \"%s\"", c->var, c->value, out);
    out[olen - slen] = '\0'; /* leaves the reason at out + plen */
    ck_assert_msg(strstr(out + plen, c->reason) != NULL,
                  "%s=\"%s\": reason \"%s\" lacks \"%s\"", c->var, c->value,
                  out + plen, c->reason);
}
END_TEST

START_TEST(config_fail_prints_the_line)
{
    /* config_fail itself, with a value holding a space: printed as is. */
    static const struct bad_env c = {FAIL, "STRATEGY", "x y", "unknown value"};
    char out[256];
    int status;

    status = capture_bad(&c, out, sizeof(out));
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    ck_assert_str_eq(out, "harbor: STRATEGY: unknown value: \"x y\"\n");
}
END_TEST

Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("parse");
    const char *fork_mode = getenv("CK_FORK");

    tcase_add_loop_test(tc, addr_parse_accepts_valid, 0, NELEM(good_addrs));
    tcase_add_loop_test(tc, addr_parse_rejects_bad, 0, NELEM(bad_addrs));
    tcase_add_test(tc, addr_parse_host_length_limit);
    tcase_add_test(tc, addr_resolve_fills_sockaddr);
    tcase_add_loop_test(tc, number_parse_accepts_valid, 0, NELEM(good_numbers));
    tcase_add_loop_test(tc, number_parse_rejects_bad, 0, NELEM(bad_numbers));
    tcase_add_test(tc, choice_parse_finds_index_or_fails);
    tcase_add_test(tc, backends_parse_resolves_each_entry);
    tcase_add_loop_test(tc, backends_parse_rejects_bad, 0, NELEM(bad_lists));
    suite_add_tcase(s, tc);

    tc = tcase_create("startup");
    tcase_add_test(tc, config_listen_default_or_set);
    tcase_add_test(tc, config_backends_default_or_set);
    tcase_add_test(tc, config_number_default_or_set);
    tcase_add_test(tc, config_choice_default_or_set);
    tcase_add_test(tc, log_init_reads_log_level);
    tcase_add_loop_test(tc, config_bad_value_prints_one_line, 0,
                        NELEM(bad_env));
    tcase_add_test(tc, config_fail_prints_the_line);
    /* An exit test would end the whole run under CK_FORK=no (gdb). */
    if (fork_mode == NULL || strcmp(fork_mode, "no") != 0)
        tcase_add_loop_exit_test(tc, config_bad_value_exits_2, 2, 0,
                                 NELEM(bad_env));
    suite_add_tcase(s, tc);
    return s;
}
