/*
 * proxy.h - MODE=http: a client connection served request by request,
 * each balanced on its own (proxy.c).
 */
#ifndef HARBOR_PROXY_H
#define HARBOR_PROXY_H

#include "conn.h"

/* Serve c's requests until it closes, errs, or asks to.  The caller holds
 * a slot for c, and closes its fds afterwards. */
void proxy_run(struct conn *c);
/* Answer c with Harbor's own status (503: no slot), and close politely. */
void proxy_refuse(struct conn *c, int status);

#endif
