/*
 * unit_pool.c - tests for common/pool.c: order, duplicate and missing
 * names, pool_next's wrap, and the reference counts that let a reload drop
 * a backend while connections still use it.  The last case hammers the
 * pool from several threads; run it under TSan and ASan (make sanitize) to
 * catch the races and use-after-frees it exists for.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pool.h"
#include "unit.h"

/* A new backend 127.0.0.1:<port>, held once by the test. */
static struct backend *
new_port(unsigned port)
{
    struct addr a;
    struct backend *b;

    unit_addr(&a, port);
    b = backend_new(&a);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* Add a backend 127.0.0.1:<port>, held by the pool alone afterwards. */
static void
add_port(struct pool *p, unsigned port)
{
    struct backend *b = new_port(port);

    ck_assert_int_eq(pool_add(p, b), 0);
    backend_release(b);
}

/* Assert the pool holds exactly the given ports, in this order. */
static void
assert_ports(struct pool *p, const unsigned *ports, size_t n)
{
    struct backend **v;
    size_t got, i;

    ck_assert_int_eq(pool_snapshot(p, &v, &got), 0);
    ck_assert_uint_eq(got, n);
    ck_assert_uint_eq(pool_size(p), n);
    for (i = 0; i < n; i++)
        ck_assert_uint_eq(v[i]->addr.port, ports[i]);
    pool_snapshot_free(v, got);
}

START_TEST(pool_starts_empty)
{
    struct pool p;
    struct backend **v;
    size_t n = 99;

    ck_assert_int_eq(pool_init(&p), 0);
    ck_assert_uint_eq(pool_size(&p), 0);
    ck_assert_ptr_null(pool_next(&p, 0));
    ck_assert_ptr_null(pool_next(&p, 7));
    ck_assert_int_eq(pool_snapshot(&p, &v, &n), 0);
    ck_assert_uint_eq(n, 0);
    pool_snapshot_free(v, n);
    pool_destroy(&p);
}
END_TEST

START_TEST(backend_new_copies_address_held_by_caller)
{
    struct pool p;
    struct addr a;
    struct backend *b;

    unit_addr(&a, 9001);
    b = backend_new(&a);
    ck_assert_ptr_nonnull(b);
    /* The backend keeps its own copy: the caller's struct may be reused. */
    unit_addr(&a, 9999);
    ck_assert_str_eq(b->addr.text, "127.0.0.1:9001");
    ck_assert_uint_eq(b->addr.port, 9001);
    ck_assert_uint_eq(b->addr.salen, sizeof(struct sockaddr_in));
    ck_assert_int_eq(unit_refs(b), 1);

    /* The pool takes a reference of its own ... */
    ck_assert_int_eq(pool_init(&p), 0);
    ck_assert_int_eq(pool_add(&p, b), 0);
    ck_assert_int_eq(unit_refs(b), 2);
    ck_assert_ptr_eq(unit_at(&p, 0), b);
    /* ... so the caller can let go of its (ASan: no use-after-free). */
    backend_release(b);
    ck_assert_int_eq(unit_refs(unit_at(&p, 0)), 1);
    ck_assert_str_eq(unit_at(&p, 0)->addr.text, "127.0.0.1:9001");
    pool_destroy(&p);
}
END_TEST

START_TEST(pool_add_then_remove_keeps_order)
{
    static const unsigned all[] = {9001, 9002, 9003, 9004, 9005};
    static const unsigned mid_gone[] = {9001, 9002, 9004, 9005};
    static const unsigned ends_gone[] = {9002, 9004};
    static const unsigned re_added[] = {9002, 9004, 9003};
    struct pool p;
    size_t i;

    ck_assert_int_eq(pool_init(&p), 0);
    for (i = 0; i < 5; i++)
        add_port(&p, all[i]);
    assert_ports(&p, all, 5);

    ck_assert_int_eq(unit_remove(&p, 9003), 0);
    assert_ports(&p, mid_gone, 4);
    ck_assert_int_eq(unit_remove(&p, 9001), 0);
    ck_assert_int_eq(unit_remove(&p, 9005), 0);
    assert_ports(&p, ends_gone, 2);

    /* A name removed before can come back; it goes to the end. */
    add_port(&p, 9003);
    assert_ports(&p, re_added, 3);
    pool_destroy(&p);
}
END_TEST

/* Added more than 8 (the first allocation): the slice grows in order. */
START_TEST(pool_grows_past_first_allocation)
{
    unsigned ports[40];
    struct pool p;
    size_t i;

    ck_assert_int_eq(pool_init(&p), 0);
    for (i = 0; i < 40; i++) {
        ports[i] = 9001 + (unsigned)i;
        add_port(&p, ports[i]);
    }
    assert_ports(&p, ports, 40);
    pool_destroy(&p);
}
END_TEST

START_TEST(pool_add_duplicate_fails_eexist)
{
    struct pool p;
    struct backend *twin, *b;

    ck_assert_int_eq(pool_init(&p), 0);
    add_port(&p, 9001);
    add_port(&p, 9002);

    /* Another backend with a name already in: refused, not held. */
    twin = new_port(9001);
    errno = 0;
    ck_assert_int_eq(pool_add(&p, twin), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(unit_refs(twin), 1);
    backend_release(twin);

    /* The same backend twice: refused too, and its count unchanged. */
    b = unit_at(&p, 1);
    errno = 0;
    ck_assert_int_eq(pool_add(&p, b), -1);
    ck_assert_int_eq(errno, EEXIST);
    ck_assert_int_eq(unit_refs(b), 1);
    ck_assert_uint_eq(pool_size(&p), 2);
    pool_destroy(&p);
}
END_TEST

START_TEST(backend_in_finds_only_members)
{
    struct pool p;
    struct backend **v;
    size_t n;

    ck_assert_int_eq(pool_init(&p), 0);
    add_port(&p, 9001);
    add_port(&p, 9002);
    add_port(&p, 9003);
    ck_assert_int_eq(pool_snapshot(&p, &v, &n), 0);
    ck_assert_int_eq(backend_in(v, 2, v[0]), 1);
    ck_assert_int_eq(backend_in(v, 2, v[1]), 1);
    ck_assert_int_eq(backend_in(v, 2, v[2]), 0); /* past n */
    ck_assert_int_eq(backend_in(v, 0, v[0]), 0);
    pool_snapshot_free(v, n);
    pool_destroy(&p);
}
END_TEST

START_TEST(pool_remove_absent_fails_enoent)
{
    struct pool p;

    ck_assert_int_eq(pool_init(&p), 0);
    errno = 0;
    ck_assert_int_eq(unit_remove(&p, 9001), -1);
    ck_assert_int_eq(errno, ENOENT);

    add_port(&p, 9001);
    errno = 0;
    ck_assert_int_eq(unit_remove(&p, 9002), -1);
    ck_assert_int_eq(errno, ENOENT);
    /* The name must match whole, not as a prefix. */
    errno = 0;
    ck_assert_int_eq(pool_remove(&p, "127.0.0.1:900"), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_uint_eq(pool_size(&p), 1);

    ck_assert_int_eq(unit_remove(&p, 9001), 0);
    errno = 0;
    ck_assert_int_eq(unit_remove(&p, 9001), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_uint_eq(pool_size(&p), 0);
    pool_destroy(&p);
}
END_TEST

/* pool_next(i) is position i modulo the size, returned held. */
START_TEST(pool_next_wraps_and_holds)
{
    static const struct {
        size_t turn;
        size_t pos;
    } turns[] = {
        {0, 0}, {1, 1}, {2, 2}, {3, 0}, {4, 1}, {299, 2}, {SIZE_MAX, 0},
    };
    struct pool p;
    struct backend *b;
    size_t i;

    ck_assert_int_eq(pool_init(&p), 0);
    add_port(&p, 9001);
    add_port(&p, 9002);
    add_port(&p, 9003);

    /* SIZE_MAX is 2^64 - 1 (or 2^32 - 1), both 0 modulo 3. */
    for (i = 0; i < sizeof(turns) / sizeof(turns[0]); i++) {
        b = pool_next(&p, turns[i].turn);
        ck_assert_ptr_eq(b, unit_at(&p, turns[i].pos));
        ck_assert_int_eq(unit_refs(b), 2); /* the pool's and ours */
        backend_release(b);
        ck_assert_int_eq(unit_refs(b), 1);
    }

    /* The hold is per call: two turns on one backend, two references. */
    b = pool_next(&p, 1);
    ck_assert_ptr_eq(pool_next(&p, 4), b);
    ck_assert_int_eq(unit_refs(b), 3);
    backend_release(b);
    backend_release(b);
    ck_assert_int_eq(unit_refs(b), 1);
    pool_destroy(&p);
}
END_TEST

START_TEST(pool_snapshot_holds_references)
{
    struct pool p;
    struct backend **v, **w;
    size_t n, m, i;

    ck_assert_int_eq(pool_init(&p), 0);
    add_port(&p, 9001);
    add_port(&p, 9002);
    add_port(&p, 9003);

    ck_assert_int_eq(pool_snapshot(&p, &v, &n), 0);
    ck_assert_uint_eq(n, 3);
    for (i = 0; i < n; i++) {
        ck_assert_ptr_eq(v[i], unit_at(&p, i));
        ck_assert_int_eq(unit_refs(v[i]), 2);
    }
    ck_assert_int_eq(pool_snapshot(&p, &w, &m), 0);
    ck_assert_uint_eq(m, 3);
    for (i = 0; i < n; i++)
        ck_assert_int_eq(unit_refs(v[i]), 3);
    pool_snapshot_free(w, m);
    for (i = 0; i < n; i++)
        ck_assert_int_eq(unit_refs(v[i]), 2);

    /* The snapshot is a copy: it outlives a change to the pool. */
    ck_assert_int_eq(unit_remove(&p, 9002), 0);
    ck_assert_uint_eq(pool_size(&p), 2);
    ck_assert_str_eq(v[1]->addr.text, "127.0.0.1:9002");
    ck_assert_int_eq(unit_refs(v[1]), 1);
    pool_snapshot_free(v, n); /* frees 9002; ASan catches a double free */

    ck_assert_int_eq(unit_refs(unit_at(&p, 0)), 1);
    ck_assert_int_eq(unit_refs(unit_at(&p, 1)), 1);
    pool_destroy(&p);
}
END_TEST

START_TEST(pool_removed_backend_valid_until_released)
{
    struct pool p;
    struct backend *b, *c;

    ck_assert_int_eq(pool_init(&p), 0);
    add_port(&p, 9001);
    add_port(&p, 9002);

    /* A connection picks 9002 the way round-robin does ... */
    b = pool_next(&p, 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(unit_refs(b), 2);

    /* ... a reload drops it ... */
    ck_assert_int_eq(unit_remove(&p, 9002), 0);
    ck_assert_uint_eq(pool_size(&p), 1);
    ck_assert_int_eq(unit_refs(b), 1);

    /* ... and the connection still uses it (ASan: no use-after-free). */
    ck_assert_str_eq(b->addr.text, "127.0.0.1:9002");
    c = pool_next(&p, 1); /* turn 1 of a pool of one */
    ck_assert_ptr_eq(c, unit_at(&p, 0));
    backend_release(c);
    backend_release(b);
    pool_destroy(&p);
}
END_TEST

/*
 * One backend in two pools, as chapter 06 keeps every backend in one and
 * the up ones in another: each pool holds it, and leaving one pool does
 * not take it out of the other.
 */
START_TEST(backend_in_two_pools_held_by_each)
{
    struct pool all, up;
    struct backend *b = new_port(9001);

    ck_assert_int_eq(pool_init(&all), 0);
    ck_assert_int_eq(pool_init(&up), 0);
    ck_assert_int_eq(pool_add(&all, b), 0);
    ck_assert_int_eq(pool_add(&up, b), 0);
    backend_release(b);
    ck_assert_int_eq(unit_refs(b), 2);

    ck_assert_int_eq(unit_remove(&up, 9001), 0);
    ck_assert_int_eq(unit_refs(b), 1);
    ck_assert_uint_eq(pool_size(&up), 0);
    ck_assert_ptr_eq(unit_at(&all, 0), b);

    /* Back in: the same backend, not a copy. */
    ck_assert_int_eq(pool_add(&up, b), 0);
    ck_assert_ptr_eq(unit_at(&up, 0), b);
    ck_assert_int_eq(unit_refs(b), 2);
    pool_destroy(&all);
    ck_assert_int_eq(unit_refs(b), 1);
    ck_assert_str_eq(b->addr.text, "127.0.0.1:9001");
    pool_destroy(&up);
}
END_TEST

/*
 * Concurrency: two readers pick, use and release (every 64th op they take
 * a snapshot instead); two writers each add and remove names of their own,
 * so each knows what must succeed.  The fixed backends are never removed,
 * so a reader always finds one.  Threads count errors instead of
 * asserting: Check's asserts belong to the test's own thread.
 */
enum { FIXED = 4, WRITERS = 2, READERS = 2, OPS = 10000, NAMES = 8 };

struct worker {
    pthread_t tid;
    struct pool *p;
    unsigned id;
    long errors;
};

static void *
reader(void *arg)
{
    struct worker *w = arg;
    struct backend *b, **v;
    size_t i, n;

    for (i = 0; i < OPS; i++) {
        if (i % 64 == 0) {
            if (pool_snapshot(w->p, &v, &n) < 0) {
                w->errors++;
                continue;
            }
            if (n < FIXED)
                w->errors++;
            pool_snapshot_free(v, n);
            continue;
        }
        if ((b = pool_next(w->p, i + w->id)) == NULL) {
            w->errors++;
            continue;
        }
        /* Ours at least; a writer may have dropped the pool's already. */
        if (unit_refs(b) < 1 || strncmp(b->addr.text, "127.0.0.1:", 10) != 0)
            w->errors++;
        backend_release(b);
    }
    return NULL;
}

static void *
writer(void *arg)
{
    struct worker *w = arg;
    int present[NAMES] = {0};
    struct backend *b;
    unsigned port;
    size_t i, k;
    struct addr a;

    for (i = 0; i < OPS + NAMES; i++) {
        k = i % NAMES;
        port = 20000 + w->id * 100 + (unsigned)k;
        /* The last NAMES ops only remove, so the writer ends with none. */
        if (present[k]) {
            if (unit_remove(w->p, port) < 0)
                w->errors++;
            present[k] = 0;
        } else if (i < OPS) {
            unit_addr(&a, port);
            if ((b = backend_new(&a)) == NULL) {
                w->errors++;
                continue;
            }
            if (pool_add(w->p, b) < 0)
                w->errors++;
            backend_release(b);
            present[k] = 1;
        }
    }
    return NULL;
}

START_TEST(pool_concurrent_add_remove_pick)
{
    struct worker w[WRITERS + READERS];
    struct pool p;
    struct backend *b;
    size_t i;

    ck_assert_int_eq(pool_init(&p), 0);
    for (i = 0; i < FIXED; i++)
        add_port(&p, 9001 + (unsigned)i);
    for (i = 0; i < WRITERS + READERS; i++) {
        w[i].p = &p;
        w[i].id = (unsigned)i;
        w[i].errors = 0;
        ck_assert_int_eq(pthread_create(&w[i].tid, NULL,
                                        i < WRITERS ? writer : reader, &w[i]),
                         0);
    }
    for (i = 0; i < WRITERS + READERS; i++)
        pthread_join(w[i].tid, NULL);
    for (i = 0; i < WRITERS + READERS; i++)
        ck_assert_msg(w[i].errors == 0, "thread %zu: %ld errors", i,
                      w[i].errors);

    ck_assert_uint_eq(pool_size(&p), FIXED);
    for (i = 0; i < FIXED; i++) {
        b = unit_at(&p, i);
        ck_assert_uint_eq(b->addr.port, 9001 + i);
        ck_assert_int_eq(unit_refs(b), 1);
    }
    pool_destroy(&p);
}
END_TEST

Suite *
pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("basic");

    tcase_add_test(tc, pool_starts_empty);
    tcase_add_test(tc, backend_new_copies_address_held_by_caller);
    tcase_add_test(tc, backend_in_finds_only_members);
    tcase_add_test(tc, pool_add_then_remove_keeps_order);
    tcase_add_test(tc, pool_grows_past_first_allocation);
    tcase_add_test(tc, pool_add_duplicate_fails_eexist);
    tcase_add_test(tc, pool_remove_absent_fails_enoent);
    tcase_add_test(tc, pool_next_wraps_and_holds);
    tcase_add_test(tc, pool_snapshot_holds_references);
    tcase_add_test(tc, pool_removed_backend_valid_until_released);
    tcase_add_test(tc, backend_in_two_pools_held_by_each);
    suite_add_tcase(s, tc);

    tc = tcase_create("concurrent");
    tcase_set_timeout(tc, 30); /* TSan is slow; a hang still fails */
    tcase_add_test(tc, pool_concurrent_add_remove_pick);
    suite_add_tcase(s, tc);
    return s;
}
