/*
 * config.c - parse the environment into addresses, lists and numbers.
 *
 * Every reason string is short and fixed, so an error line reads the same
 * whichever variable it is about.  Numbers are parsed by hand rather than
 * with strtoul, which accepts leading spaces, a sign, and wraps "-1" around
 * to ULONG_MAX: none of that is a number a user meant.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int
number_parse(const char *s, unsigned long max, unsigned long *out,
             const char **why)
{
    unsigned long v = 0;
    const char *p;

    if (*s == '\0') {
        *why = "empty";
        return -1;
    }
    if (*s == '-') {
        *why = "negative";
        return -1;
    }
    for (p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            *why = "not a number";
            return -1;
        }
    }
    for (p = s; *p != '\0'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (d > max || v > (max - d) / 10) {
            *why = "too large";
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int
choice_parse(const char *s, const char *const choices[], int *out,
             const char **why)
{
    int i;

    for (i = 0; choices[i] != NULL; i++) {
        if (strcmp(s, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    *why = "unknown value";
    return -1;
}

/*
 * Split "host:port", "[v6addr]:port" or ":port".  The port is the part after
 * the last colon; an IPv6 literal must be bracketed so that its own colons
 * are not mistaken for the separator.
 */
int
addr_parse(const char *s, struct addr *a, const char **why)
{
    const char *colon, *host = s;
    size_t hostlen;
    unsigned long port;

    memset(a, 0, sizeof(*a));
    if (*s == '\0') {
        *why = "empty";
        return -1;
    }
    if (strlen(s) >= sizeof(a->text)) {
        *why = "too long";
        return -1;
    }
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL) {
            *why = "missing ]";
            return -1;
        }
        if (close[1] != ':') {
            *why = "missing port";
            return -1;
        }
        host = s + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "missing port";
            return -1;
        }
        hostlen = (size_t)(colon - s);
        if (memchr(s, ':', hostlen) != NULL) {
            *why = "IPv6 address needs [brackets]";
            return -1;
        }
    }
    if (number_parse(colon + 1, 65535, &port, why) < 0) {
        if (strcmp(*why, "too large") == 0)
            *why = "port out of range";
        else
            *why = "bad port";
        return -1;
    }
    if (hostlen >= sizeof(a->host)) {
        *why = "host too long";
        return -1;
    }
    memcpy(a->host, host, hostlen);
    a->host[hostlen] = '\0';
    a->port = (unsigned)port;
    strcpy(a->text, s);
    return 0;
}

/* Resolve a->host (numeric or a name) to the first address it has. */
int
addr_resolve(struct addr *a, const char **why)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%u", a->port);
    rc = getaddrinfo(a->host[0] ? a->host : NULL, port, &hints, &res);
    if (rc != 0) {
        *why = "cannot resolve host";
        return -1;
    }
    memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
    a->salen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/*
 * A backend entry is an address with a host and a non-zero port: a backend
 * on "any address" or on port 0 cannot be dialled.
 */
int
backend_parse(const char *s, struct addr *a, const char **why)
{
    if (addr_parse(s, a, why) < 0)
        return -1;
    if (a->host[0] == '\0') {
        *why = "missing host";
        return -1;
    }
    if (a->port == 0) {
        *why = "port out of range";
        return -1;
    }
    return addr_resolve(a, why);
}

int
backends_parse(const char *list, struct addr **v, size_t *n, const char **why,
               size_t *bad)
{
    struct addr *out = NULL;
    size_t count = 1, i = 0, k;
    const char *p, *start = list;

    *bad = 0;
    if (*list == '\0') {
        *why = "empty";
        return -1;
    }
    for (p = list; *p != '\0'; p++)
        if (*p == ',')
            count++;
    if ((out = calloc(count, sizeof(*out))) == NULL) {
        *why = strerror(errno);
        return -1;
    }
    for (i = 0; i < count; i++) {
        char entry[ADDR_TEXT_MAX];
        size_t len = strcspn(start, ",");

        *bad = i + 1;
        if (len == 0) {
            *why = "empty entry";
            goto fail;
        }
        if (len >= sizeof(entry)) {
            *why = "too long";
            goto fail;
        }
        memcpy(entry, start, len);
        entry[len] = '\0';
        if (backend_parse(entry, &out[i], why) < 0)
            goto fail;
        for (k = 0; k < i; k++) {
            if (strcmp(out[k].text, out[i].text) == 0) {
                *why = "duplicate entry";
                goto fail;
            }
        }
        start += len + 1;
    }
    *bad = 0;
    *v = out;
    *n = count;
    return 0;
fail:
    free(out);
    return -1;
}

void
config_fail(const char *var, const char *why, const char *value)
{
    fprintf(stderr, "harbor: %s: %s: \"%s\"\n", var, why, value);
    exit(2);
}

static const char *
config_get(const char *var, const char *def)
{
    const char *v = getenv(var);

    return v != NULL ? v : def;
}

void
config_listen(const char *var, const char *def, struct addr *a)
{
    const char *v = config_get(var, def), *why;

    if (addr_parse(v, a, &why) < 0)
        config_fail(var, why, v);
}

void
config_backends(const char *var, const char *def, struct addr **out, size_t *n)
{
    const char *v = config_get(var, def), *why;
    char reason[64];
    size_t bad;

    if (backends_parse(v, out, n, &why, &bad) < 0) {
        if (bad > 0 && strchr(v, ',') != NULL) {
            snprintf(reason, sizeof(reason), "entry %zu: %s", bad, why);
            why = reason;
        }
        config_fail(var, why, v);
    }
}

unsigned long
config_number(const char *var, unsigned long def)
{
    const char *v = getenv(var), *why;
    unsigned long n;

    if (v == NULL)
        return def;
    if (number_parse(v, CONFIG_NUMBER_MAX, &n, &why) < 0)
        config_fail(var, why, v);
    return n;
}

unsigned long
config_range(const char *var, unsigned long def, unsigned long min,
             unsigned long max)
{
    unsigned long n = config_number(var, def);
    char reason[64];

    if (n < min || n > max) {
        snprintf(reason, sizeof(reason), "must be %s %lu",
                 n < min ? "at least" : "at most", n < min ? min : max);
        config_fail(var, reason, getenv(var));
    }
    return n;
}

int
config_choice(const char *var, const char *def, const char *const choices[])
{
    const char *v = config_get(var, def), *why;
    char reason[128];
    size_t len;
    int i, which;

    if (choice_parse(v, choices, &which, &why) < 0) {
        /* "unknown value (want debug|info|warn|error)" */
        len = (size_t)snprintf(reason, sizeof(reason), "%s (want", why);
        for (i = 0; choices[i] != NULL && len < sizeof(reason); i++)
            len += (size_t)snprintf(reason + len, sizeof(reason) - len, "%s%s",
                                    i ? "|" : " ", choices[i]);
        if (len < sizeof(reason))
            snprintf(reason + len, sizeof(reason) - len, ")");
        config_fail(var, reason, v);
    }
    return which;
}
