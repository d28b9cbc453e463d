/*
 * unit_main.c - one runner for the Check unit tests of common/, a suite per
 * module; exits non-zero if any test failed.  Check's knobs for learners:
 * CK_RUN_SUITE=pool or CK_RUN_CASE=rr runs one suite or case, CK_FORK=no
 * runs tests in this process (for gdb), CK_DEFAULT_TIMEOUT=30 gives a slow
 * machine more seconds, CK_VERBOSITY=verbose names every test.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

void
unit_addr(struct addr *a, unsigned port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;

    memset(a, 0, sizeof(*a));
    snprintf(a->text, sizeof(a->text), "127.0.0.1:%u", port);
    snprintf(a->host, sizeof(a->host), "127.0.0.1");
    a->port = port;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((unsigned short)port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->salen = sizeof(*sin);
}

int
unit_remove(struct pool *p, unsigned port)
{
    char text[ADDR_TEXT_MAX];

    snprintf(text, sizeof(text), "127.0.0.1:%u", port);
    return pool_remove(p, text);
}

struct backend *
unit_at(struct pool *p, size_t i)
{
    struct backend *b = NULL;

    pthread_rwlock_rdlock(&p->lock);
    if (i < p->n)
        b = p->v[i];
    pthread_rwlock_unlock(&p->lock);
    return b;
}

int
unit_refs(struct backend *b)
{
    return atomic_load(&b->refs);
}

int
main(void)
{
    SRunner *sr;
    int failed;

    sr = srunner_create(pool_suite());
    srunner_add_suite(sr, strategy_suite());
    srunner_add_suite(sr, config_suite());
    srunner_add_suite(sr, net_suite());
    srunner_add_suite(sr, http_suite());
    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY, default normal */
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
