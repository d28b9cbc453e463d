/*
 * unit.h - the Check suites for common/, one per module, and the helpers
 * they share.  unit_main.c runs them all; each unit_<module>.c builds its
 * own suite so that CK_RUN_SUITE=pool (say) runs just that one.
 */
#ifndef HARBOR_UNIT_H
#define HARBOR_UNIT_H

#include <check.h>

#include "config.h"
#include "pool.h"

Suite *pool_suite(void);
Suite *strategy_suite(void);
Suite *config_suite(void);
Suite *net_suite(void);
Suite *http_suite(void);

/*
 * Fill a with the resolved address 127.0.0.1:<port>, as backends_parse()
 * would, without going through config.c: the pool and strategy tests should
 * fail only for bugs in pool.c and strategy.c.
 */
void unit_addr(struct addr *a, unsigned port);

/* Remove 127.0.0.1:<port> from p: pool_remove()'s result. */
int unit_remove(struct pool *p, unsigned port);

/* The backend at position i (read under the lock; the pool keeps its
 * reference), or NULL. */
struct backend *unit_at(struct pool *p, size_t i);

/* The reference count as a plain int, so a failed assertion prints a
 * readable line. */
int unit_refs(struct backend *b);

#endif
