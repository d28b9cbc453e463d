/*
 * scenarios.c - the integration suite's main: chapter NN's balancer
 * (HARBOR_BIN, HARBOR_CH=NN) against the scenarios of chapter NN and of
 * every chapter before it.  A chapter adds its scenario_NN.c and one line
 * to the table below.  Check's knobs work as usual: CK_RUN_SUITE=harbor-01,
 * CK_RUN_CASE=proxy, CK_INCLUDE_TAGS=ch01, CK_FORK=no (for gdb), and
 * CK_DEFAULT_TIMEOUT or CK_TIMEOUT_MULTIPLIER (for slow sanitizer builds).
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

void scenarios_00_echo(Suite *s);
void scenarios_01(Suite *s);
void scenarios_02(Suite *s);
void scenarios_03(Suite *s);
void scenarios_04(Suite *s);
void scenarios_05(Suite *s);
void scenarios_06(Suite *s);
void scenarios_07(Suite *s);
void scenarios_08(Suite *s);

/* Which chapter introduced each group of scenarios. */
static const struct {
    int chapter;
    void (*add)(Suite *s);
} groups[] = {
    {1, scenarios_00_echo}, /* the echo backend arrived with chapter 01 */
    {1, scenarios_01},      {2, scenarios_02}, {3, scenarios_03},
    {4, scenarios_04},      {5, scenarios_05}, {6, scenarios_06},
    {7, scenarios_07},      {8, scenarios_08},
};

int
main(void)
{
    static char name[32];
    int chapter, failed;
    Suite *s;
    SRunner *sr;

    if (harness_env_ok() < 0)
        return 2;
    chapter = harness_chapter();
    snprintf(name, sizeof name, "harbor-%02d", chapter);
    s = suite_create(name);
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (chapter >= groups[i].chapter)
            groups[i].add(s);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY, default normal */
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
