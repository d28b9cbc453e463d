/*
 * reload.h - keep the pool in step with BACKENDS_FILE (reload.c).
 */
#ifndef HARBOR_RELOAD_H
#define HARBOR_RELOAD_H

#include <pthread.h>
#include <stddef.h>
#include <sys/stat.h>

#include "config.h"

struct harbor;

/* The reload thread. */
struct reload {
    pthread_mutex_t lock; /* guards hup and stop */
    pthread_cond_t wake;  /* signalled on SIGHUP and on stop */
    int hup;              /* a SIGHUP is waiting to be served */
    int stop;
    pthread_t tid;    /* joined by reload_stop() */
    struct stat seen; /* the file as last read; the thread's own */
};

/*
 * Read path: one host:port a line, blank lines and # comments allowed.
 * On success *v holds *n resolved addresses (free it).  On any bad line,
 * or no backend at all, returns -1 with the reason in err, the whole file
 * rejected.
 */
int backends_file_read(const char *path, struct addr **v, size_t *n, char *err,
                       size_t errlen);

/* Start the reload thread.  0, or -1 with errno. */
int reload_start(struct harbor *h);
/* SIGHUP: reload now. */
void reload_kick(struct harbor *h);
/* Stop the reload thread and wait for it. */
void reload_stop(struct harbor *h);

#endif
