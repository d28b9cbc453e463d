/*
 * unit_strategy.c - tests for common/strategy.c: round-robin behind the
 * strategy interface.  Its exact fairness and order, alone and from several
 * threads at once, NULL from an empty pool, a rebuild that restarts the
 * turn, and picks that stay valid while the pool changes.  Strategies of a
 * chapter's own are tested with that chapter (tests/chapter_least.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "pool.h"
#include "strategy.h"
#include "unit.h"

/* Add a backend 127.0.0.1:<port>, held by the pool alone afterwards. */
static void
add_port(struct pool *p, unsigned port)
{
    struct addr a;
    struct backend *b;

    unit_addr(&a, port);
    b = backend_new(&a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(pool_add(p, b), 0);
    backend_release(b);
}

/* A pool of n backends on ports 9001.., and round-robin over it. */
static void
setup(struct pool *p, struct strategy *s, size_t n)
{
    size_t i;

    ck_assert_int_eq(pool_init(p), 0);
    for (i = 0; i < n; i++)
        add_port(p, 9001 + (unsigned)i);
    rr_init(s);
    s->rebuild(s, p);
}

static void
teardown(struct pool *p, struct strategy *s)
{
    s->destroy(s);
    pool_destroy(p);
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
    ck_assert_int_ge(unit_refs(b), 2); /* pool + this pick */
    i = index_of(p, b);
    ck_assert_int_ge(i, 0); /* a backend of this pool */
    backend_release(b);
    return i;
}

START_TEST(rr_init_sets_name_and_functions)
{
    struct strategy s;

    memset(&s, 0xff, sizeof(s));
    rr_init(&s);
    ck_assert_str_eq(s.name, "rr");
    ck_assert_ptr_nonnull(s.pick);
    ck_assert_ptr_nonnull(s.start);
    ck_assert_ptr_nonnull(s.done);
    ck_assert_ptr_nonnull(s.rebuild);
    ck_assert_ptr_nonnull(s.destroy);
    ck_assert_uint_eq(atomic_load(&s.next), 0);
    ck_assert_ptr_null(s.state);
    s.destroy(&s);
}
END_TEST

START_TEST(rr_is_fair_and_in_order)
{
    struct pool p;
    struct strategy s;
    int count[3] = {0}, i, prev = -1, cur;

    setup(&p, &s, 3);
    for (i = 0; i < 300; i++) {
        cur = pick_index(&s, &p);
        if (prev >= 0)
            ck_assert_int_eq(cur, (prev + 1) % 3);
        else
            ck_assert_int_eq(cur, 0); /* the turn starts at the first */
        count[cur]++;
        prev = cur;
    }
    ck_assert_int_eq(count[0], 100);
    ck_assert_int_eq(count[1], 100);
    ck_assert_int_eq(count[2], 100);
    /* Every pick was released: only the pool holds them. */
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(unit_refs(unit_at(&p, (size_t)i)), 1);
    teardown(&p, &s);
}
END_TEST

START_TEST(rr_pick_on_empty_returns_null)
{
    struct pool p;
    struct strategy s;
    int i;

    setup(&p, &s, 0);
    for (i = 0; i < 3; i++)
        ck_assert_ptr_null(s.pick(&s, &p));

    /* One arrives: whatever the cursor, it is found. */
    add_port(&p, 9001);
    s.rebuild(&s, &p);
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(pick_index(&s, &p), 0);

    /* ... and leaves again. */
    ck_assert_int_eq(unit_remove(&p, 9001), 0);
    s.rebuild(&s, &p);
    ck_assert_ptr_null(s.pick(&s, &p));
    teardown(&p, &s);
}
END_TEST

/* Round-robin ignores load: busy or idle, the turn goes on. */
START_TEST(rr_ignores_start_and_done)
{
    struct pool p;
    struct strategy s;
    struct backend *b;
    int i;

    setup(&p, &s, 3);
    b = s.pick(&s, &p);
    ck_assert_ptr_nonnull(b);
    for (i = 0; i < 5; i++)
        s.start(&s, b);
    /* start/done count connections, not references. */
    ck_assert_int_eq(unit_refs(b), 2);
    for (i = 0; i < 30; i++)
        ck_assert_int_eq(pick_index(&s, &p), (i + 1) % 3);
    for (i = 0; i < 5; i++)
        s.done(&s, b);
    ck_assert_int_eq(unit_refs(b), 2);
    backend_release(b);
    teardown(&p, &s);
}
END_TEST

START_TEST(rr_rebuild_restarts_at_first)
{
    struct pool p;
    struct strategy s;
    int i;

    setup(&p, &s, 3);
    for (i = 0; i < 5; i++)
        pick_index(&s, &p);
    ck_assert_int_eq(pick_index(&s, &p), 2);
    s.rebuild(&s, &p);
    ck_assert_int_eq(pick_index(&s, &p), 0);
    ck_assert_int_eq(pick_index(&s, &p), 1);
    teardown(&p, &s);
}
END_TEST

/*
 * After a pool change and rebuild, picks never return the removed backend
 * (held here so its address cannot be reused by a new one) and do return
 * the added one.  The cursor is past the new size on purpose.
 */
START_TEST(rebuild_after_pool_change_keeps_picks_valid)
{
    struct pool p;
    struct strategy s;
    struct backend *gone;
    int i, seen[4] = {0};

    setup(&p, &s, 3);
    for (i = 0; i < 7; i++)
        pick_index(&s, &p);
    gone = unit_at(&p, 2);
    backend_hold(gone);
    ck_assert_int_eq(unit_remove(&p, 9003), 0);
    s.rebuild(&s, &p);
    for (i = 0; i < 30; i++)
        seen[pick_index(&s, &p)]++; /* asserts: in the pool, so not gone */
    ck_assert_int_eq(seen[0], 15);
    ck_assert_int_eq(seen[1], 15);

    add_port(&p, 9004);
    s.rebuild(&s, &p);
    memset(seen, 0, sizeof(seen));
    for (i = 0; i < 30; i++)
        seen[pick_index(&s, &p)]++;
    ck_assert_int_eq(seen[2], 10); /* 9004, now at position 2 */

    /* Shrink to one without a rebuild: the modulo keeps picks in range. */
    for (i = 0; i < 4; i++)
        pick_index(&s, &p);
    ck_assert_int_eq(unit_remove(&p, 9001), 0);
    ck_assert_int_eq(unit_remove(&p, 9004), 0);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &p), 0);
    ck_assert_int_eq(unit_refs(gone), 1);
    backend_release(gone);
    teardown(&p, &s);
}
END_TEST

/*
 * One strategy, two pools (from chapter 06 picks come from the up set,
 * not from every backend): a pick is always a backend of the pool given.
 */
START_TEST(rr_picks_from_the_pool_given)
{
    struct pool all, up;
    struct strategy s;
    struct backend *b;
    int i;

    setup(&all, &s, 3);
    ck_assert_int_eq(pool_init(&up), 0);
    ck_assert_int_eq(pool_add(&up, unit_at(&all, 1)), 0);
    for (i = 0; i < 10; i++) {
        b = s.pick(&s, i % 2 ? &all : &up);
        ck_assert_ptr_nonnull(b);
        if (i % 2 == 0)
            ck_assert_ptr_eq(b, unit_at(&all, 1));
        else
            ck_assert_int_ge(index_of(&all, b), 0);
        backend_release(b);
    }
    pool_destroy(&up);
    ck_assert_int_eq(unit_refs(unit_at(&all, 1)), 1);
    teardown(&all, &s);
}
END_TEST

/*
 * Concurrency, two ways.  Counting pickers share a fixed pool: one atomic
 * cursor makes the split exact however the threads interleave.  Busy
 * pickers run pick, start, (a nested second pick, so connections overlap),
 * done, release while one changer adds and removes a backend of its own
 * and calls rebuild; afterwards every reference is back.  Threads count
 * errors; the test thread asserts.
 */
enum { PICKERS = 3, OPS = 9999 };

struct picker {
    pthread_t tid;
    struct pool *p;
    struct strategy *s;
    struct backend *fixed[3]; /* the pool's, for the counting pickers */
    long count[3];
    long errors;
};

static void *
counting_run(void *arg)
{
    struct picker *w = arg;
    struct backend *b;
    int i, k;

    for (i = 0; i < OPS; i++) {
        if ((b = w->s->pick(w->s, w->p)) == NULL) {
            w->errors++;
            continue;
        }
        for (k = 0; k < 3 && b != w->fixed[k]; k++)
            ;
        if (k < 3)
            w->count[k]++;
        else
            w->errors++;
        backend_release(b);
    }
    return NULL;
}

static void *
busy_run(void *arg)
{
    struct picker *w = arg;
    struct backend *b, *c;
    int i;

    for (i = 0; i < OPS; i++) {
        if ((b = w->s->pick(w->s, w->p)) == NULL) {
            w->errors++;
            continue;
        }
        w->s->start(w->s, b);
        if ((c = w->s->pick(w->s, w->p)) == NULL) {
            w->errors++;
        } else {
            w->s->start(w->s, c);
            w->s->done(w->s, c);
            backend_release(c);
        }
        /* Held by us (the changer may have dropped the pool's reference),
         * and a backend of this test: ASan catches a freed one here. */
        if (unit_refs(b) < 1 || strncmp(b->addr.text, "127.0.0.1:", 10) != 0)
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
    struct backend *b;
    struct addr a;
    int i;

    unit_addr(&a, 9100);
    if ((b = backend_new(&a)) == NULL) {
        w->errors++;
        return NULL;
    }
    for (i = 0; i < OPS / 10; i++) {
        if (pool_add(w->p, b) < 0)
            w->errors++;
        w->s->rebuild(w->s, w->p);
        if (pool_remove(w->p, a.text) < 0)
            w->errors++;
        w->s->rebuild(w->s, w->p);
    }
    backend_release(b);
    return NULL;
}

/* Start n threads of w running fn, join them, assert none counted errors. */
static void
run_threads(struct picker *w, size_t n, void *(*fn)(void *),
            void *(*last)(void *))
{
    size_t i;

    for (i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&w[i].tid, NULL,
                                        i == n - 1 && last ? last : fn, &w[i]),
                         0);
    for (i = 0; i < n; i++)
        pthread_join(w[i].tid, NULL);
    for (i = 0; i < n; i++)
        ck_assert_msg(w[i].errors == 0, "thread %zu: %ld errors", i,
                      w[i].errors);
}

START_TEST(rr_concurrent_split_is_exact)
{
    struct picker w[PICKERS];
    struct pool p;
    struct strategy s;
    long total[3] = {0};
    size_t i, k;

    setup(&p, &s, 3);
    memset(w, 0, sizeof(w));
    for (i = 0; i < PICKERS; i++) {
        w[i].p = &p;
        w[i].s = &s;
        for (k = 0; k < 3; k++)
            w[i].fixed[k] = unit_at(&p, k);
    }
    run_threads(w, PICKERS, counting_run, NULL);
    for (i = 0; i < PICKERS; i++)
        for (k = 0; k < 3; k++)
            total[k] += w[i].count[k];
    for (k = 0; k < 3; k++) {
        ck_assert_int_eq(total[k], PICKERS * OPS / 3);
        ck_assert_int_eq(unit_refs(unit_at(&p, k)), 1);
    }
    teardown(&p, &s);
}
END_TEST

START_TEST(rr_concurrent_pick_start_done_with_changes)
{
    struct picker w[PICKERS + 1];
    struct pool p;
    struct strategy s;
    struct backend *b;
    size_t i;

    setup(&p, &s, 3);
    memset(w, 0, sizeof(w));
    for (i = 0; i < PICKERS + 1; i++) {
        w[i].p = &p;
        w[i].s = &s;
    }
    run_threads(w, PICKERS + 1, busy_run, changer_run);

    ck_assert_uint_eq(pool_size(&p), 3);
    for (i = 0; i < 3; i++) {
        b = unit_at(&p, i);
        ck_assert_uint_eq(b->addr.port, 9001 + i);
        ck_assert_int_eq(unit_refs(b), 1);
    }
    teardown(&p, &s);
}
END_TEST

Suite *
strategy_suite(void)
{
    Suite *s = suite_create("strategy");
    TCase *tc = tcase_create("rr");

    tcase_add_test(tc, rr_init_sets_name_and_functions);
    tcase_add_test(tc, rr_is_fair_and_in_order);
    tcase_add_test(tc, rr_pick_on_empty_returns_null);
    tcase_add_test(tc, rr_ignores_start_and_done);
    tcase_add_test(tc, rr_rebuild_restarts_at_first);
    tcase_add_test(tc, rebuild_after_pool_change_keeps_picks_valid);
    tcase_add_test(tc, rr_picks_from_the_pool_given);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrent");
    tcase_set_timeout(tc, 30); /* TSan is slow; a hang still fails */
    tcase_add_test(tc, rr_concurrent_split_is_exact);
    tcase_add_test(tc, rr_concurrent_pick_start_done_with_changes);
    suite_add_tcase(s, tc);
    return s;
}
