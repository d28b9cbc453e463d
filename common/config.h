/*
 * config.h - configuration from the environment.
 *
 * Two layers.  The parse functions are pure: they return 0, or -1 with *why
 * pointing at a short static reason, and never exit, so a reload can reject
 * a bad file and keep running.  The config_* functions are for start-up
 * only: they read one variable (or its default), and on a bad value print
 * exactly one line, harbor: <VAR>: <reason>: "<value>", and exit 2.
 */
#ifndef HARBOR_CONFIG_H
#define HARBOR_CONFIG_H

#include <stddef.h>
#include <sys/socket.h>

#define ADDR_TEXT_MAX 272 /* "[" host(255) "]:" port(5) + NUL, rounded */

/*
 * An address as the user wrote it, split into host and port, and (for
 * backends) resolved once at start-up.  host is "" for ":port" (any address).
 */
struct addr {
    char text[ADDR_TEXT_MAX];   /* as written: "127.0.0.1:9001", ":9090" */
    char host[256];             /* without brackets; "" means any */
    unsigned port;              /* 0..65535 */
    struct sockaddr_storage sa; /* valid after addr_resolve() */
    socklen_t salen;            /* 0 until resolved */
};

/* Largest value config_number() accepts: enough for any millisecond or count
 * setting, small enough to add to a timestamp or pass as an int. */
#define CONFIG_NUMBER_MAX 2147483647UL

int addr_parse(const char *s, struct addr *a, const char **why);
int addr_resolve(struct addr *a, const char **why);
int number_parse(const char *s, unsigned long max, unsigned long *out,
                 const char **why);
int choice_parse(const char *s, const char *const choices[], int *out,
                 const char **why);

/* Parse and resolve one backend: host:port with a host and a port > 0. */
int backend_parse(const char *s, struct addr *a, const char **why);

/*
 * Parse and resolve a comma-separated host:port list into a new array of n
 * addresses (free it with free()).  On error *why is the reason and *bad the
 * 1-based position of the entry at fault.
 */
int backends_parse(const char *list, struct addr **v, size_t *n,
                   const char **why, size_t *bad);

/* Start-up readers: each reads VAR (def when unset) and exits 2 on error. */
void config_listen(const char *var, const char *def, struct addr *a);
void config_backends(const char *var, const char *def, struct addr **v,
                     size_t *n);
unsigned long config_number(const char *var, unsigned long def);
/* config_number(), and exit 2 unless min <= value <= max. */
unsigned long config_range(const char *var, unsigned long def,
                           unsigned long min, unsigned long max);
int config_choice(const char *var, const char *def,
                  const char *const choices[]);

/* Print the exit-2 line for VAR and exit. */
void config_fail(const char *var, const char *why, const char *value)
    __attribute__((noreturn));

#endif
