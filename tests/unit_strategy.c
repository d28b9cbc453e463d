/*
 * unit_strategy.c - tests for common/strategy.c: the names STRATEGY
 * accepts, round-robin's exact fairness and order, least-connections'
 * choice and its round-robin tie-break, skipping down backends, and that
 * picks stay valid while the pool changes.  Most tests run once per
 * strategy (a loop test over strategy_names) since both keep the contract.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "pool.h"
#include "strategy.h"
#include "unit.h"

enum { RR, LEAST, NSTRATEGIES };

/* A pool of n up backends on ports 9001.., and strategy which over it. */
static void
setup(struct pool *p, struct strategy *s, int which, size_t n)
{
    struct addr a;
    size_t i;

    ck_assert_int_eq(pool_init(p), 0);
    for (i = 0; i < n; i++) {
        unit_addr(&a, 9001 + (unsigned)i);
        ck_assert_int_eq(pool_add(p, &a), 0);
    }
    ck_assert_int_eq(strategy_init(s, which), 0);
    s->rebuild(s, p);
}

/* Position of b in the pool, or -1. */
static int
index_of(struct pool *p, const struct backend *b)
{
    int i, found = -1;

    pthread_rwlock_rdlock(&p->lock);
    for (i = 0; i < (int)p->n; i++)
        if (p->v[i] == b)
            found = i;
    pthread_rwlock_unlock(&p->lock);
    return found;
}

/* Pick, check the result is held, release it, return its position. */
static int
pick_index(struct strategy *s, struct pool *p)
{
    struct backend *b;
    int i;

    b = s->pick(s, p);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(unit_up(b), 1);
    ck_assert_int_ge(unit_refs(b), 2); /* pool + this pick */
    i = index_of(p, b);
    ck_assert_int_ge(i, 0); /* a backend of this pool */
    backend_release(b);
    return i;
}

START_TEST(strategy_names_are_rr_and_least)
{
    ck_assert_str_eq(strategy_names[RR], "rr");
    ck_assert_str_eq(strategy_names[LEAST], "least");
    ck_assert_ptr_null(strategy_names[NSTRATEGIES]);
}
END_TEST

START_TEST(strategy_init_sets_name_and_functions)
{
    struct strategy s;

    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(strategy_init(&s, _i), 0);
    ck_assert_str_eq(s.name, strategy_names[_i]);
    ck_assert_ptr_nonnull(s.pick);
    ck_assert_ptr_nonnull(s.start);
    ck_assert_ptr_nonnull(s.done);
    ck_assert_ptr_nonnull(s.rebuild);
}
END_TEST

START_TEST(strategy_init_rejects_out_of_range)
{
    static const int bad[] = {-1, NSTRATEGIES, NSTRATEGIES + 1, 1000};
    struct strategy s;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        ck_assert_int_eq(strategy_init(&s, bad[i]), -1);
        ck_assert_int_eq(errno, EINVAL);
    }
}
END_TEST

START_TEST(rr_is_fair_and_in_order)
{
    struct pool p;
    struct strategy s;
    int count[3] = {0}, i, prev = -1, cur;

    setup(&p, &s, RR, 3);
    for (i = 0; i < 300; i++) {
        cur = pick_index(&s, &p);
        ck_assert_int_ge(cur, 0);
        if (prev >= 0)
            ck_assert_int_eq(cur, (prev + 1) % 3);
        count[cur]++;
        prev = cur;
    }
    ck_assert_int_eq(count[0], 100);
    ck_assert_int_eq(count[1], 100);
    ck_assert_int_eq(count[2], 100);
    pool_destroy(&p);
}
END_TEST

/*
 * With a backend down, the cursor's slot for it goes to the next up one, so
 * the split need not be even; the test asks only what the contract says.
 */
START_TEST(pick_skips_down_backends)
{
    struct pool p;
    struct strategy s;
    int count[3] = {0}, i;

    setup(&p, &s, _i, 3);
    atomic_store(&unit_at(&p, 1)->up, 0);
    for (i = 0; i < 300; i++)
        count[pick_index(&s, &p)]++;
    ck_assert_int_eq(count[1], 0);
    ck_assert_int_gt(count[0], 0);
    ck_assert_int_gt(count[2], 0);
    ck_assert_int_eq(count[0] + count[2], 300);

    /* Only one up: every pick is that one. */
    atomic_store(&unit_at(&p, 0)->up, 0);
    for (i = 0; i < 10; i++)
        ck_assert_int_eq(pick_index(&s, &p), 2);
    pool_destroy(&p);
}
END_TEST

START_TEST(pick_on_empty_or_all_down_returns_null)
{
    struct pool p;
    struct strategy s;
    int i;

    setup(&p, &s, _i, 0);
    for (i = 0; i < 3; i++)
        ck_assert_ptr_null(s.pick(&s, &p));
    pool_destroy(&p);

    setup(&p, &s, _i, 3);
    for (i = 0; i < 3; i++)
        atomic_store(&unit_at(&p, (size_t)i)->up, 0);
    for (i = 0; i < 5; i++)
        ck_assert_ptr_null(s.pick(&s, &p));
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(unit_refs(unit_at(&p, (size_t)i)), 1);

    /* One comes back up: it is found again. */
    atomic_store(&unit_at(&p, 1)->up, 1);
    ck_assert_int_eq(pick_index(&s, &p), 1);
    pool_destroy(&p);
}
END_TEST

START_TEST(start_and_done_track_inflight)
{
    struct pool p;
    struct strategy s;
    struct backend *b;

    setup(&p, &s, _i, 2);
    b = s.pick(&s, &p);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(unit_inflight(b), 0);
    s.start(&s, b);
    ck_assert_int_eq(unit_inflight(b), 1);
    s.start(&s, b);
    ck_assert_int_eq(unit_inflight(b), 2);
    s.done(&s, b);
    ck_assert_int_eq(unit_inflight(b), 1);
    s.done(&s, b);
    ck_assert_int_eq(unit_inflight(b), 0);
    /* start/done count connections, not references. */
    ck_assert_int_eq(unit_refs(b), 2);
    backend_release(b);
    pool_destroy(&p);
}
END_TEST

/* Start n connections on backend i of the pool, as if picked earlier. */
static void
load(struct strategy *s, struct pool *p, size_t i, int n)
{
    while (n-- > 0)
        s->start(s, unit_at(p, i));
}

START_TEST(least_picks_fewest_inflight)
{
    struct pool p;
    struct strategy s;
    int i;

    setup(&p, &s, LEAST, 3);
    load(&s, &p, 0, 2);
    load(&s, &p, 1, 1);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &p), 2);

    load(&s, &p, 2, 3); /* 2, 1, 3 */
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &p), 1);

    /* Pick and start, as a balancer does: the load evens out. */
    for (i = 0; i < 3; i++) {
        struct backend *b = s.pick(&s, &p);

        ck_assert_ptr_nonnull(b);
        s.start(&s, b);
        backend_release(b);
    }
    ck_assert_int_eq(unit_inflight(unit_at(&p, 0)), 3);
    ck_assert_int_eq(unit_inflight(unit_at(&p, 1)), 3);
    ck_assert_int_eq(unit_inflight(unit_at(&p, 2)), 3);
    pool_destroy(&p);
}
END_TEST

START_TEST(least_ties_rotate_in_round_robin_order)
{
    struct pool p;
    struct strategy s;
    int count[3] = {0}, seen[3] = {0}, i, prev = -1, cur;

    /* All idle: consecutive picks walk the pool like round-robin. */
    setup(&p, &s, LEAST, 3);
    for (i = 0; i < 300; i++) {
        cur = pick_index(&s, &p);
        if (prev >= 0)
            ck_assert_int_eq(cur, (prev + 1) % 3);
        count[cur]++;
        prev = cur;
    }
    ck_assert_int_eq(count[0], 100);
    ck_assert_int_eq(count[1], 100);
    ck_assert_int_eq(count[2], 100);

    /* A tie between two of three: both get picks, the busy one none. */
    load(&s, &p, 0, 1);
    for (i = 0; i < 3; i++)
        seen[pick_index(&s, &p)]++;
    ck_assert_int_eq(seen[0], 0);
    ck_assert_int_gt(seen[1], 0);
    ck_assert_int_gt(seen[2], 0);
    pool_destroy(&p);
}
END_TEST

START_TEST(least_skips_down_backends)
{
    struct pool p;
    struct strategy s;
    int i;

    setup(&p, &s, LEAST, 3);
    load(&s, &p, 1, 2);
    load(&s, &p, 2, 1);
    atomic_store(&unit_at(&p, 0)->up, 0); /* idle, but down */
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &p), 2);
    atomic_store(&unit_at(&p, 2)->up, 0);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &p), 1); /* the busiest, but up */
    pool_destroy(&p);
}
END_TEST

/*
 * After a pool change and rebuild, picks never return the removed backend
 * (held here so its address cannot be reused by a new one) and do return
 * the added one.  The cursor is far past the new size on purpose.
 */
START_TEST(rebuild_after_pool_change_keeps_picks_valid)
{
    struct pool p;
    struct strategy s;
    struct backend *gone;
    struct addr a;
    int i, seen[4] = {0};

    setup(&p, &s, _i, 3);
    for (i = 0; i < 7; i++)
        pick_index(&s, &p);
    gone = unit_at(&p, 2);
    backend_hold(gone);
    ck_assert_int_eq(unit_remove(&p, 9003), 0);
    s.rebuild(&s, &p);
    for (i = 0; i < 30; i++)
        seen[pick_index(&s, &p)]++; /* asserts: in the pool, so not gone */
    ck_assert_int_gt(seen[0], 0);
    ck_assert_int_gt(seen[1], 0);

    unit_addr(&a, 9004);
    ck_assert_int_eq(pool_add(&p, &a), 0);
    s.rebuild(&s, &p);
    memset(seen, 0, sizeof(seen));
    for (i = 0; i < 30; i++)
        seen[pick_index(&s, &p)]++;
    ck_assert_int_gt(seen[2], 0); /* 9004, now at position 2 */

    /* Shrink to one: the cursor is beyond the end, picks stay in range. */
    ck_assert_int_eq(unit_remove(&p, 9001), 0);
    ck_assert_int_eq(unit_remove(&p, 9004), 0);
    s.rebuild(&s, &p);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &p), 0);
    ck_assert_int_eq(unit_refs(gone), 1);
    backend_release(gone);
    pool_destroy(&p);
}
END_TEST

/*
 * Concurrency: pickers run pick, start, (a nested second pick, so
 * connections overlap), done, release; one changer adds and removes a
 * backend of its own and calls rebuild.  Afterwards every count is back:
 * inflight 0, refs 1.  Threads count errors; the test thread asserts.
 */
enum { PICKERS = 3, OPS = 10000 };

struct picker {
    pthread_t tid;
    struct pool *p;
    struct strategy *s;
    int changer;
    long errors;
};

static void *
picker_run(void *arg)
{
    struct picker *w = arg;
    struct backend *b, *c;
    int i;

    for (i = 0; i < OPS; i++) {
        b = w->s->pick(w->s, w->p);
        if (b == NULL) {
            w->errors++;
            continue;
        }
        w->s->start(w->s, b);
        c = w->s->pick(w->s, w->p);
        if (c == NULL) {
            w->errors++;
        } else {
            w->s->start(w->s, c);
            if (unit_inflight(c) < 1)
                w->errors++;
            w->s->done(w->s, c);
            backend_release(c);
        }
        /* Held by us (the changer may have dropped the pool's reference),
         * and a backend of this test: ASan catches a freed one here. */
        if (unit_inflight(b) < 1 || unit_refs(b) < 1 ||
            strncmp(b->addr.text, "127.0.0.1:", 10) != 0)
            w->errors++;
        w->s->done(w->s, b);
        backend_release(b);
    }
    return NULL;
}

static void *
changer_run(void *arg)
{
    struct picker *w = arg;
    struct addr a;
    int i;

    unit_addr(&a, 9100);
    for (i = 0; i < OPS / 10; i++) {
        if (pool_add(w->p, &a) < 0)
            w->errors++;
        w->s->rebuild(w->s, w->p);
        if (pool_remove(w->p, a.text) < 0)
            w->errors++;
        w->s->rebuild(w->s, w->p);
    }
    return NULL;
}

START_TEST(concurrent_pick_start_done_returns_to_zero)
{
    struct picker w[PICKERS + 1];
    struct pool p;
    struct strategy s;
    struct backend *b;
    size_t i;

    setup(&p, &s, _i, 3);
    for (i = 0; i < PICKERS + 1; i++) {
        w[i].p = &p;
        w[i].s = &s;
        w[i].changer = i == PICKERS;
        w[i].errors = 0;
        ck_assert_int_eq(pthread_create(&w[i].tid, NULL,
                                        w[i].changer ? changer_run : picker_run,
                                        &w[i]),
                         0);
    }
    for (i = 0; i < PICKERS + 1; i++)
        pthread_join(w[i].tid, NULL);
    for (i = 0; i < PICKERS + 1; i++)
        ck_assert_msg(w[i].errors == 0, "thread %zu: %ld errors", i,
                      w[i].errors);

    ck_assert_uint_eq(pool_size(&p), 3);
    for (i = 0; i < 3; i++) {
        b = unit_at(&p, i);
        ck_assert_int_eq(unit_inflight(b), 0);
        ck_assert_int_eq(unit_refs(b), 1);
    }
    pool_destroy(&p);
}
END_TEST

Suite *
strategy_suite(void)
{
    Suite *s = suite_create("strategy");
    TCase *tc = tcase_create("init");

    tcase_add_test(tc, strategy_names_are_rr_and_least);
    tcase_add_loop_test(tc, strategy_init_sets_name_and_functions, 0,
                        NSTRATEGIES);
    tcase_add_test(tc, strategy_init_rejects_out_of_range);
    suite_add_tcase(s, tc);

    /* The loop tests run once per strategy: _i is RR, then LEAST. */
    tc = tcase_create("both");
    tcase_add_loop_test(tc, pick_skips_down_backends, 0, NSTRATEGIES);
    tcase_add_loop_test(tc, pick_on_empty_or_all_down_returns_null, 0,
                        NSTRATEGIES);
    tcase_add_loop_test(tc, start_and_done_track_inflight, 0, NSTRATEGIES);
    tcase_add_loop_test(tc, rebuild_after_pool_change_keeps_picks_valid, 0,
                        NSTRATEGIES);
    suite_add_tcase(s, tc);

    tc = tcase_create("rr");
    tcase_add_test(tc, rr_is_fair_and_in_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("least");
    tcase_add_test(tc, least_picks_fewest_inflight);
    tcase_add_test(tc, least_ties_rotate_in_round_robin_order);
    tcase_add_test(tc, least_skips_down_backends);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrent");
    tcase_set_timeout(tc, 30); /* TSan is slow; a hang still fails */
    tcase_add_loop_test(tc, concurrent_pick_start_done_returns_to_zero, 0,
                        NSTRATEGIES);
    suite_add_tcase(s, tc);
    return s;
}
