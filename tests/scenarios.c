/*
 * scenarios.c - the integration suite's main: chapter NN's balancer
 * (HARBOR_BIN, HARBOR_CH=NN) against the scenarios of chapter NN and of
 * every chapter before it.  A chapter adds its scenario_NN.c and one line
 * to the table below.  Check's knobs work as usual: CK_RUN_SUITE=harbor-01,
 * CK_RUN_CASE=proxy, CK_INCLUDE_TAGS=ch01, CK_FORK=no (for gdb), and
 * CK_DEFAULT_TIMEOUT or CK_TIMEOUT_MULTIPLIER (for slow sanitizer builds).
 *
 * The exercises' opt-in tests (docs/exercises/README.md) join the suite
 * only when HARBOR_EXERCISES is set (and not "0"): they fail against the
 * chapters as they are, until the exercise is done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
void scenarios_09(Suite *s);
void scenarios_10(Suite *s);
void exercises_01(Suite *s);
void exercises_06(Suite *s);
void exercises_07(Suite *s);
void exercises_09(Suite *s);

/*
 * A learner's own scenarios: a file tests/scenario_NN_own.c of theirs may
 * define this function and add TCases tagged "own" in it.  Declared weak,
 * so that without such a file it is a null pointer instead of a link error.
 */
void scenarios_own(Suite *s) __attribute__((weak));

/* Which chapter introduced each group of scenarios. */
static const struct {
    int chapter;
    void (*add)(Suite *s);
} groups[] = {
    {1, scenarios_00_echo}, /* the echo backend arrived with chapter 01 */
    {1, scenarios_01},      {2, scenarios_02}, {3, scenarios_03},
    {4, scenarios_04},      {5, scenarios_05}, {6, scenarios_06},
    {7, scenarios_07},      {8, scenarios_08}, {9, scenarios_09},
    {10, scenarios_10},
};

/* The same for the exercises' opt-in tests, by the chapter they build on. */
static const struct {
    int chapter;
    void (*add)(Suite *s);
} exercises[] = {
    {1, exercises_01},
    {6, exercises_06},
    {7, exercises_07},
    {9, exercises_09},
};

int
main(void)
{
    static char name[32];
    int chapter, failed;
    const char *ex = getenv("HARBOR_EXERCISES");
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
    if (ex != NULL && ex[0] != '\0' && strcmp(ex, "0") != 0) {
        for (size_t i = 0; i < sizeof exercises / sizeof exercises[0]; i++)
            if (chapter >= exercises[i].chapter)
                exercises[i].add(s);
        if (scenarios_own != NULL)
            scenarios_own(s);
    }
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY, default normal */
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
