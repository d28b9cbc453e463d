/*
 * reload.c - keep the pool in step with BACKENDS_FILE, without a restart.
 *
 * DESIGN: one reload thread sleeps on a condition variable for
 * RELOAD_INTERVAL_MS at a time; the signal thread wakes it early on SIGHUP.
 * When the file changed (or on SIGHUP) it reads the whole file, resolves
 * every line, and only if all of them are good applies the difference to
 * the pool: additions first, then removals, so the pool is never empty in
 * between.  pool_add() and pool_remove() take the pool's write lock for a
 * moment; picks wait that moment, and live connections never notice: each
 * holds a reference to its backend and never looks at the pool again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "harbor.h"
#include "log.h"
#include "reload.h"

/*
 * Read path: one host:port a line, blank lines and # comments allowed.
 * On success *v holds *n resolved addresses (free it).  On any bad line,
 * or no backend at all, returns -1 with the reason in err, the whole file
 * rejected.
 */
int
backends_file_read(const char *path, struct addr **v, size_t *n, char *err,
                   size_t errlen)
{
    struct addr *out = NULL, *grown;
    size_t count = 0, cap = 0, lineno = 0, k, len;
    char *line = NULL, *p, *end;
    const char *why;
    size_t linecap = 0;
    FILE *f;
    int rc = -1;

    if ((f = fopen(path, "r")) == NULL) {
        snprintf(err, errlen, "cannot open (%s)", strerror(errno));
        return -1;
    }
    while (getline(&line, &linecap, f) >= 0) {
        lineno++;
        if ((p = strchr(line, '#')) != NULL)
            *p = '\0';
        for (p = line; *p == ' ' || *p == '\t'; p++)
            ;
        len = strlen(p);
        for (end = p + len; end > p && strchr(" \t\r\n", end[-1]); end--)
            ;
        *end = '\0';
        if (*p == '\0')
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            if ((grown = realloc(out, cap * sizeof(*out))) == NULL) {
                snprintf(err, errlen, "%s", strerror(errno));
                goto out;
            }
            out = grown;
        }
        if (backend_parse(p, &out[count], &why) < 0) {
            snprintf(err, errlen, "line %zu: %s", lineno, why);
            goto out;
        }
        for (k = 0; k < count; k++) {
            if (strcmp(out[k].text, out[count].text) == 0) {
                snprintf(err, errlen, "line %zu: duplicate entry", lineno);
                goto out;
            }
        }
        count++;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "read error (%s)", strerror(errno));
        goto out;
    }
    if (count == 0) {
        snprintf(err, errlen, "no backends");
        goto out;
    }
    *v = out;
    *n = count;
    out = NULL;
    rc = 0;
out:
    free(out);
    free(line);
    fclose(f);
    return rc;
}

/* Make the pool hold exactly v[0..n-1]: add what is new, drop the rest. */
static void
reload_apply(struct harbor *h, const struct addr *v, size_t n)
{
    struct backend **old;
    size_t nold, i, j;
    int added = 0, removed = 0;

    if (pool_snapshot(&h->pool, &old, &nold) < 0) {
        log_error("reload: %s", strerror(errno));
        return;
    }
    for (j = 0; j < n; j++) {
        struct backend *b = backend_new(&v[j]);

        if (b != NULL && pool_add(&h->pool, b) == 0)
            added++;
        if (b != NULL)
            backend_release(b); /* the pool holds it, or it was in already */
    }
    for (i = 0; i < nold; i++) {
        for (j = 0; j < n; j++)
            if (strcmp(old[i]->addr.text, v[j].text) == 0)
                break;
        if (j == n && pool_remove(&h->pool, old[i]->addr.text) == 0)
            removed++;
    }
    pool_snapshot_free(old, nold);
    health_sync(h, 0); /* check the new backends, stop the removed, rebuild */
    log_info("reload: %zu backends (+%d -%d)", n, added, removed);
}

/*
 * Do two looks at the file differ?  A rename puts a new inode in place; a
 * rewrite in place changes the modification time or the size.
 */
static int
stat_differs(const struct stat *a, const struct stat *b)
{
    return a->st_ino != b->st_ino || a->st_size != b->st_size ||
           a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
           a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

/* Called from the reload thread only: it alone touches h->reload.seen. */
static void
reload_now(struct harbor *h, const char *why)
{
    struct stat before, after;
    struct addr *v;
    size_t n;
    char err[256];

    memset(&before, 0, sizeof(before));
    stat(h->backends_file, &before);
    if (backends_file_read(h->backends_file, &v, &n, err, sizeof(err)) < 0) {
        log_error("reload (%s): %s: %s; keeping the current pool", why,
                  h->backends_file, err);
        h->reload.seen = before; /* say it once, not every interval */
        return;
    }
    /*
     * A writer rewriting the file in place may still be at it.  If the
     * file changed while we read it, we may hold half of it: drop it, and
     * leave seen alone so that the next look reads it again.
     */
    if (stat(h->backends_file, &after) == 0 && stat_differs(&before, &after)) {
        log_warn("reload (%s): %s changed while being read; reading it "
                 "again at the next look",
                 why, h->backends_file);
        free(v);
        return;
    }
    h->reload.seen = before;
    reload_apply(h, v, n);
    free(v);
}

static void *
reload_main(void *arg)
{
    struct harbor *h = arg;
    struct reload *r = &h->reload;
    struct timespec ts;
    struct stat st;
    int hup;

    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        if (!r->hup)
            cond_wait_until(&r->wake, &r->lock,
                            deadline_in(&ts, h->reload_interval_ms));
        hup = r->hup;
        r->hup = 0;
        if (r->stop)
            break;
        pthread_mutex_unlock(&r->lock); /* never hold it across file I/O */
        if (hup)
            reload_now(h, "SIGHUP");
        else if (stat(h->backends_file, &st) == 0 &&
                 stat_differs(&st, &r->seen))
            reload_now(h, "file changed");
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/*
 * Start watching h->backends_file, from r->seen: its state before start-up
 * read it, so that a change made since is seen as one.  Called before the
 * signal thread exists, so that a SIGHUP never finds r half made.  0 or -1.
 */
int
reload_start(struct harbor *h)
{
    struct reload *r = &h->reload;
    int err;

    if ((err = pthread_mutex_init(&r->lock, NULL)) != 0 ||
        (err = cond_init_monotonic(&r->wake)) != 0 ||
        (err = pthread_create(&r->tid, NULL, reload_main, h)) != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

/* SIGHUP: reload now. */
void
reload_kick(struct harbor *h)
{
    struct reload *r = &h->reload;

    pthread_mutex_lock(&r->lock);
    r->hup = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

/* Stop the reload thread and wait for it. */
void
reload_stop(struct harbor *h)
{
    struct reload *r = &h->reload;

    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->tid, NULL);
}
