/*
 * chapter_least.c - least-connections, the strategy of chapter 07
 * (least.c), run against that chapter's copy and every later one's.
 *
 * The counts are least.c's own, so these tests see them only as a
 * balancer does, through picks: the backend with fewest live connections
 * wins, and idle backends (counts back at zero) take turns exactly.
 * References (b->refs) show what the strategy's table holds.  Run under
 * ASan and TSan (make sanitize): a row left dangling or a race on the
 * table is what they catch.  Check's knobs: CK_RUN_CASE=concurrent,
 * CK_INCLUDE_TAGS=ch07, CK_FORK=no (for gdb), CK_VERBOSITY=verbose.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "least.h"
#include "pool.h"
#include "strategy.h"

enum { NB = 3 }; /* backends in most tests: ports 9001..9003 */

/* A backend 127.0.0.1:<port>, held once by the caller.  The pool and the
 * strategy only ever compare the text, so nothing is resolved. */
static struct backend *
new_port(unsigned port)
{
    struct addr a;
    struct backend *b;

    memset(&a, 0, sizeof(a));
    snprintf(a.text, sizeof(a.text), "127.0.0.1:%u", port);
    snprintf(a.host, sizeof(a.host), "127.0.0.1");
    a.port = port;
    b = backend_new(&a);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* Add 127.0.0.1:<port> to p, which alone holds it; return it. */
static struct backend *
add_port(struct pool *p, unsigned port)
{
    struct backend *b = new_port(port);

    ck_assert_int_eq(pool_add(p, b), 0);
    backend_release(b);
    return b;
}

static int
refs(struct backend *b)
{
    return atomic_load(&b->refs);
}

/*
 * A pool of n backends (kept in v, which the pool holds), and
 * least-connections rebuilt over it, as a balancer starts.
 */
static void
setup(struct pool *p, struct strategy *s, struct backend **v, size_t n)
{
    size_t i;

    ck_assert_int_eq(pool_init(p), 0);
    for (i = 0; i < n; i++)
        v[i] = add_port(p, 9001 + (unsigned)i);
    ck_assert_int_eq(least_init(s), 0);
    s->rebuild(s, p);
}

/* Position of b in v[0..n-1], or -1. */
static int
index_in(struct backend *const *v, size_t n, const struct backend *b)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (v[i] == b)
            return (int)i;
    return -1;
}

/* Pick from p, check the result is held and one of v, release it, return
 * its position in v. */
static int
pick_index(struct strategy *s, struct pool *p, struct backend *const *v,
           size_t n)
{
    struct backend *b;
    int before, i;

    b = s->pick(s, p);
    ck_assert_ptr_nonnull(b);
    i = index_in(v, n, b);
    ck_assert_int_ge(i, 0);
    before = refs(b);
    backend_release(b);
    ck_assert_int_eq(refs(b), before - 1); /* the pick held one */
    return i;
}

/* Start k connections on b, as if picked earlier; done undoes it. */
static void
start_n(struct strategy *s, struct backend *b, int k)
{
    while (k-- > 0)
        s->start(s, b);
}

static void
done_n(struct strategy *s, struct backend *b, int k)
{
    while (k-- > 0)
        s->done(s, b);
}

/*
 * The check of "every count is zero": with all counts equal, picks walk
 * the pool in order from wherever the cursor is, and rounds picks split
 * evenly.  One count above or below the rest breaks the walk.
 */
static void
assert_rotation(struct strategy *s, struct pool *p, struct backend *const *v,
                size_t n, int rounds)
{
    int count[8] = {0}, i, cur, prev = -1;
    size_t k;

    ck_assert_uint_le(n, 8);
    for (i = 0; i < rounds * (int)n; i++) {
        cur = pick_index(s, p, v, n);
        if (prev >= 0)
            ck_assert_int_eq(cur, (prev + 1) % (int)n);
        count[cur]++;
        prev = cur;
    }
    for (k = 0; k < n; k++)
        ck_assert_int_eq(count[k], rounds);
}

START_TEST(least_init_sets_name_and_functions)
{
    struct strategy s;

    memset(&s, 0xff, sizeof(s));
    ck_assert_int_eq(least_init(&s), 0);
    ck_assert_str_eq(s.name, "least");
    ck_assert_ptr_nonnull(s.pick);
    ck_assert_ptr_nonnull(s.start);
    ck_assert_ptr_nonnull(s.done);
    ck_assert_ptr_nonnull(s.rebuild);
    ck_assert_ptr_nonnull(s.destroy);
    ck_assert_ptr_nonnull(s.state);
    ck_assert_uint_eq(atomic_load(&s.next), 0);
    s.destroy(&s); /* LSan: the table goes with it */
}
END_TEST

START_TEST(least_picks_fewest_live)
{
    struct pool p;
    struct strategy s;
    struct backend *v[NB], *b;
    int i;

    setup(&p, &s, v, NB);
    start_n(&s, v[0], 2);
    start_n(&s, v[1], 1);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &p, v, NB), 2);

    start_n(&s, v[2], 3); /* 2, 1, 3 */
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &p, v, NB), 1);

    /* Pick and start, as a balancer does: the load evens out at 3 each,
     * so the next picks take turns again. */
    for (i = 0; i < 3; i++) {
        b = s.pick(&s, &p);
        ck_assert_ptr_nonnull(b);
        s.start(&s, b);
        backend_release(b);
    }
    assert_rotation(&s, &p, v, NB, 10);

    /* One finishes: it is the only one below 3. */
    s.done(&s, v[2]);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &p, v, NB), 2);
    s.start(&s, v[2]);
    done_n(&s, v[0], 3);
    done_n(&s, v[1], 3);
    done_n(&s, v[2], 3);
    assert_rotation(&s, &p, v, NB, 10);
    s.destroy(&s);
    pool_destroy(&p);
}
END_TEST

START_TEST(least_ties_rotate_in_round_robin_order)
{
    struct pool p;
    struct strategy s;
    struct backend *v[NB];
    int seen[NB] = {0}, i;

    /* All idle: consecutive picks walk the pool like round-robin, from
     * the first backend, 100 each in 300 picks. */
    setup(&p, &s, v, NB);
    ck_assert_int_eq(pick_index(&s, &p, v, NB), 0);
    ck_assert_int_eq(pick_index(&s, &p, v, NB), 1);
    ck_assert_int_eq(pick_index(&s, &p, v, NB), 2);
    assert_rotation(&s, &p, v, NB, 100);

    /* A tie between two of three: they take exact turns, the busy one
     * gets none. */
    s.start(&s, v[0]);
    for (i = 0; i < 30; i++)
        seen[pick_index(&s, &p, v, NB)]++;
    ck_assert_int_eq(seen[0], 0);
    ck_assert_int_eq(seen[1], 15);
    ck_assert_int_eq(seen[2], 15);
    s.done(&s, v[0]);
    s.destroy(&s);
    pool_destroy(&p);
}
END_TEST

START_TEST(least_counts_return_to_zero)
{
    static const int load[NB] = {5, 1, 3};
    struct pool p;
    struct strategy s;
    struct backend *v[NB];
    size_t k;
    int round;

    setup(&p, &s, v, NB);
    for (round = 0; round < 3; round++) {
        for (k = 0; k < NB; k++)
            start_n(&s, v[k], load[k]);
        ck_assert_int_eq(pick_index(&s, &p, v, NB), 1);
        for (k = 0; k < NB; k++)
            done_n(&s, v[k], load[k]);
        assert_rotation(&s, &p, v, NB, 10);
    }
    s.destroy(&s);
    pool_destroy(&p);
}
END_TEST

/* done() on a backend with no live connection is ignored: a count never
 * goes below zero (a negative one would win every pick). */
START_TEST(least_done_without_start_is_ignored)
{
    struct pool p;
    struct strategy s;
    struct backend *v[NB], *other;

    setup(&p, &s, v, NB);
    done_n(&s, v[1], 3);
    assert_rotation(&s, &p, v, NB, 10);

    /* Nor for a backend the table has never seen. */
    other = new_port(9999);
    s.done(&s, other);
    ck_assert_int_eq(refs(other), 1);
    backend_release(other);
    assert_rotation(&s, &p, v, NB, 10);
    s.destroy(&s);
    pool_destroy(&p);
}
END_TEST

START_TEST(least_pick_on_empty_returns_null)
{
    struct pool p;
    struct strategy s;
    struct backend *v[1];
    int i;

    setup(&p, &s, v, 0);
    for (i = 0; i < 3; i++)
        ck_assert_ptr_null(s.pick(&s, &p));

    /* One arrives: whatever the cursor, it is found. */
    v[0] = add_port(&p, 9001);
    s.rebuild(&s, &p);
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(pick_index(&s, &p, v, 1), 0);

    /* ... and leaves. */
    ck_assert_int_eq(pool_remove(&p, "127.0.0.1:9001"), 0);
    s.rebuild(&s, &p);
    ck_assert_ptr_null(s.pick(&s, &p));
    s.destroy(&s);
    pool_destroy(&p);
}
END_TEST

/* A pick is held for its caller, whatever else holds the backend. */
START_TEST(least_pick_returns_held_backend)
{
    struct pool p;
    struct strategy s;
    struct backend *v[NB], *b, *c;
    int rest;

    setup(&p, &s, v, NB);
    rest = refs(v[0]); /* the pool's and the table row's */
    ck_assert_int_eq(rest, 2);
    b = s.pick(&s, &p);
    ck_assert_ptr_eq(b, v[0]);
    ck_assert_int_eq(refs(b), rest + 1);

    /* The pool lets go; the pick still holds it (ASan). */
    ck_assert_int_eq(pool_remove(&p, "127.0.0.1:9001"), 0);
    ck_assert_int_eq(refs(b), rest);
    ck_assert_str_eq(b->addr.text, "127.0.0.1:9001");
    c = s.pick(&s, &p);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_ne(c, b);
    backend_release(c);
    backend_release(b);
    ck_assert_int_eq(refs(b), 1); /* its row alone, until a rebuild */
    s.rebuild(&s, &p);            /* ... which frees it (LSan) */
    s.destroy(&s);
    pool_destroy(&p);
}
END_TEST

/*
 * A reload drops a backend with live connections: after the rebuild its
 * row stays (the row still holds it) so that their done() finds it, and
 * it goes at the first rebuild after the last one is done.
 */
START_TEST(least_removed_backend_keeps_row_while_live)
{
    struct pool p;
    struct strategy s;
    struct backend *v[NB], *back[NB], *gone;
    int i;

    setup(&p, &s, v, NB);
    gone = s.pick(&s, &p); /* a connection's hold */
    ck_assert_ptr_eq(gone, v[0]);
    s.start(&s, gone);
    s.start(&s, gone);
    ck_assert_int_eq(refs(gone), 3); /* pool, row, ours */

    ck_assert_int_eq(pool_remove(&p, "127.0.0.1:9001"), 0);
    s.rebuild(&s, &p);
    ck_assert_int_eq(refs(gone), 2); /* row, ours */
    for (i = 0; i < 10; i++)
        ck_assert_int_ge(pick_index(&s, &p, v + 1, NB - 1), 0);

    /* The connections end; an extra done() changes nothing. */
    s.done(&s, gone);
    s.done(&s, gone);
    s.done(&s, gone);
    ck_assert_int_eq(refs(gone), 2);

    /* Back in the pool before any rebuild: its count is 0, not -1, so it
     * takes turns with the others instead of winning every pick. */
    ck_assert_int_eq(pool_add(&p, gone), 0);
    back[0] = v[1];
    back[1] = v[2];
    back[2] = gone; /* added last */
    assert_rotation(&s, &p, back, NB, 10);
    ck_assert_int_eq(pool_remove(&p, "127.0.0.1:9001"), 0);

    /* Idle and out of the pool: the next rebuild drops its row. */
    s.rebuild(&s, &p);
    ck_assert_int_eq(refs(gone), 1); /* ours alone */
    backend_release(gone);           /* freed; ASan: no row points at it */
    assert_rotation(&s, &p, v + 1, NB - 1, 10);
    s.rebuild(&s, &p);
    s.destroy(&s);
    pool_destroy(&p);
}
END_TEST

/* A connection that started on a backend after its removal and rebuild
 * (it picked before either) gets a row of its own, dropped as usual. */
START_TEST(least_start_after_removal_is_counted)
{
    struct pool p;
    struct strategy s;
    struct backend *v[NB], *late;

    setup(&p, &s, v, NB);
    late = s.pick(&s, &p);
    ck_assert_int_eq(pool_remove(&p, "127.0.0.1:9001"), 0);
    s.rebuild(&s, &p);
    ck_assert_int_eq(refs(late), 1); /* idle: its row went */
    s.start(&s, late);
    ck_assert_int_eq(refs(late), 2); /* a row again */
    s.rebuild(&s, &p);
    ck_assert_int_eq(refs(late), 2); /* kept while live */
    s.done(&s, late);
    s.rebuild(&s, &p);
    ck_assert_int_eq(refs(late), 1);
    backend_release(late);
    s.destroy(&s);
    pool_destroy(&p);
}
END_TEST

/*
 * From chapter 06 picks come from the up set, a pool of its own: counts
 * belong to the backend, not to the pool it was picked from, and a pick
 * is always a backend of the pool given.
 */
START_TEST(least_counts_follow_backend_across_pools)
{
    struct pool all, up;
    struct strategy s;
    struct backend *v[NB], *w[2];
    int i;

    setup(&all, &s, v, NB);
    ck_assert_int_eq(pool_init(&up), 0);
    ck_assert_int_eq(pool_add(&up, v[0]), 0);
    ck_assert_int_eq(pool_add(&up, v[2]), 0);
    s.rebuild(&s, &up); /* v[1] is down, idle: its row goes */
    ck_assert_int_eq(refs(v[1]), 1);
    ck_assert_int_eq(refs(v[0]), 3); /* all, up, row */

    w[0] = v[0];
    w[1] = v[2];
    start_n(&s, v[2], 2);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &up, w, 2), 0);
    /* From the pool of all, the down one wins: it is the idle one, and
     * the others count their connections there too. */
    start_n(&s, v[0], 2);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &all, v, NB), 1);
    done_n(&s, v[0], 2);
    done_n(&s, v[2], 2);
    assert_rotation(&s, &up, w, 2, 10);
    s.destroy(&s);
    pool_destroy(&up);
    pool_destroy(&all);
}
END_TEST

/*
 * After a pool change and rebuild, picks never return the removed backend
 * (held here so its address cannot be reused by a new one) and do return
 * the added one.  The cursor is past the new size on purpose.
 */
START_TEST(least_rebuild_after_pool_change_keeps_picks_valid)
{
    struct pool p;
    struct strategy s;
    struct backend *v[NB + 1], *gone;
    int i;

    setup(&p, &s, v, NB);
    for (i = 0; i < 7; i++)
        pick_index(&s, &p, v, NB);
    gone = v[2];
    backend_hold(gone);
    ck_assert_int_eq(pool_remove(&p, "127.0.0.1:9003"), 0);
    s.rebuild(&s, &p);
    assert_rotation(&s, &p, v, 2, 15); /* never v[2], which is gone */

    v[2] = add_port(&p, 9004);
    s.rebuild(&s, &p);
    assert_rotation(&s, &p, v, NB, 10);

    /* Shrink to one without a rebuild: picks stay in range. */
    ck_assert_int_eq(pool_remove(&p, "127.0.0.1:9001"), 0);
    ck_assert_int_eq(pool_remove(&p, "127.0.0.1:9004"), 0);
    for (i = 0; i < 5; i++)
        ck_assert_int_eq(pick_index(&s, &p, v + 1, 1), 0);
    s.rebuild(&s, &p);
    ck_assert_int_eq(refs(gone), 1);
    backend_release(gone);
    s.destroy(&s);
    pool_destroy(&p);
}
END_TEST

/* destroy() lets go of every row, live ones and removed ones included. */
START_TEST(least_destroy_releases_every_backend)
{
    struct pool p;
    struct strategy s;
    struct backend *v[NB], *gone, *stray;
    size_t k;

    setup(&p, &s, v, NB);
    start_n(&s, v[1], 4);
    gone = s.pick(&s, &p);
    s.start(&s, gone);
    ck_assert_int_eq(pool_remove(&p, gone->addr.text), 0);
    s.rebuild(&s, &p); /* gone keeps its row: it is live */
    stray = new_port(9100);
    s.start(&s, stray); /* never in the pool: a row all the same */
    ck_assert_int_eq(refs(stray), 2);

    s.destroy(&s);
    ck_assert_ptr_null(s.state);
    for (k = 0; k < NB; k++)
        if (v[k] != gone)
            ck_assert_int_eq(refs(v[k]), 1); /* the pool's alone */
    ck_assert_int_eq(refs(gone), 1);         /* ours alone */
    ck_assert_int_eq(refs(stray), 1);
    backend_release(gone);
    backend_release(stray);
    pool_destroy(&p);
}
END_TEST

/*
 * Concurrency: pickers run pick, start, (a nested second pick, so
 * connections overlap), done, release; one changer adds and removes a
 * backend of its own and calls rebuild, as a reload does.  Afterwards
 * every count is back at zero (picks rotate evenly) and every reference
 * is back.  Threads count errors; the test thread asserts.
 */
enum { PICKERS = 3, OPS = 10000 };

struct picker {
    pthread_t tid;
    struct pool *p;
    struct strategy *s;
    long errors;
};

static void *
picker_run(void *arg)
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
        if (refs(b) < 1 || strncmp(b->addr.text, "127.0.0.1:", 10) != 0)
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
    struct backend *b = new_port(9100);
    int i;

    for (i = 0; i < OPS / 10; i++) {
        if (pool_add(w->p, b) < 0)
            w->errors++;
        w->s->rebuild(w->s, w->p);
        if (pool_remove(w->p, b->addr.text) < 0)
            w->errors++;
        w->s->rebuild(w->s, w->p);
    }
    backend_release(b);
    return NULL;
}

START_TEST(least_concurrent_pick_start_done_returns_to_zero)
{
    struct picker w[PICKERS + 1];
    struct pool p;
    struct strategy s;
    struct backend *v[NB];
    size_t i;

    setup(&p, &s, v, NB);
    for (i = 0; i < PICKERS + 1; i++) {
        w[i].p = &p;
        w[i].s = &s;
        w[i].errors = 0;
        ck_assert_int_eq(pthread_create(&w[i].tid, NULL,
                                        i == PICKERS ? changer_run : picker_run,
                                        &w[i]),
                         0);
    }
    for (i = 0; i < PICKERS + 1; i++)
        pthread_join(w[i].tid, NULL);
    for (i = 0; i < PICKERS + 1; i++)
        ck_assert_msg(w[i].errors == 0, "thread %zu: %ld errors", i,
                      w[i].errors);

    /* A last rebuild drops 9100's row if a connection kept it. */
    s.rebuild(&s, &p);
    ck_assert_uint_eq(pool_size(&p), NB);
    for (i = 0; i < NB; i++)
        ck_assert_int_eq(refs(v[i]), 2); /* pool, row */
    assert_rotation(&s, &p, v, NB, 100);
    s.destroy(&s);
    for (i = 0; i < NB; i++)
        ck_assert_int_eq(refs(v[i]), 1);
    pool_destroy(&p);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("least");
    TCase *tc = tcase_create("least");
    SRunner *sr;
    int failed;

    tcase_set_tags(tc, "ch07");
    tcase_add_test(tc, least_init_sets_name_and_functions);
    tcase_add_test(tc, least_picks_fewest_live);
    tcase_add_test(tc, least_ties_rotate_in_round_robin_order);
    tcase_add_test(tc, least_counts_return_to_zero);
    tcase_add_test(tc, least_done_without_start_is_ignored);
    tcase_add_test(tc, least_pick_on_empty_returns_null);
    tcase_add_test(tc, least_pick_returns_held_backend);
    tcase_add_test(tc, least_removed_backend_keeps_row_while_live);
    tcase_add_test(tc, least_start_after_removal_is_counted);
    tcase_add_test(tc, least_counts_follow_backend_across_pools);
    tcase_add_test(tc, least_rebuild_after_pool_change_keeps_picks_valid);
    tcase_add_test(tc, least_destroy_releases_every_backend);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrent");
    tcase_set_tags(tc, "ch07");
    tcase_set_timeout(tc, 30); /* TSan is slow; a hang still fails */
    tcase_add_test(tc, least_concurrent_pick_start_done_returns_to_zero);
    suite_add_tcase(s, tc);

    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY, default normal */
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
