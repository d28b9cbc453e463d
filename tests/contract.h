/*
 * contract.h - every text the scenarios look for in what Harbor prints, in
 * one table: the two stdout lines, the parts of the bad-setting line, and
 * each needle searched for in its log, grouped by the chapter that
 * introduced it.  A needle matches anywhere in one stderr line; where a
 * test fills in a number or an address, the text is a printf format.
 *
 * docs/contract.md shows each text in the section of its chapter, for
 * learners whose own balancer runs these scenarios; scripts/check-contract
 * fails when one is missing there, or when a scenario searches a log for a
 * string literal instead of a name from here.  The checker takes a
 * group's chapter from the two digits that open its heading comment, and
 * reads one define a line.
 */
#ifndef HARBOR_CONTRACT_H
#define HARBOR_CONTRACT_H

/* 01 proxy: stdout starts with these two lines, in order, each flushed. */
#define CONTRACT_HARBOR_UP "Harbor Up"    /* the whole first line */
#define CONTRACT_LISTENING "listening on" /* then " <host>:<port>" */

/* 01 proxy: a bad setting exits 2 with one stderr line, head reason tail. */
#define CONTRACT_BAD_SETTING_HEAD "harbor: %s: " /* the variable */
#define CONTRACT_BAD_SETTING_TAIL ": \"%s\""     /* the value, then \n */

/* 01 proxy: an address in use exits 1; stderr says so, in any case. */
#define CONTRACT_IN_USE "in use"

/* 01 proxy: a failed connect names the backend and says why, in any case. */
#define CONTRACT_REFUSED "refused"

/* 02 deadlines */
#define CONTRACT_NO_ANSWER   "connect %s: no answer in %d ms"
#define CONTRACT_NO_PROGRESS "no progress for %d ms"

/* 03 inflight: a cap the open files limit cannot carry is lowered, in one
 * line: "MAX_INFLIGHT <n> needs <fds> open files, " then the rest, then the
 * cap in force. */
#define CONTRACT_CAP_NEEDS   "MAX_INFLIGHT %d needs"
#define CONTRACT_CAP_LOWERED "the limit is %d: lowered to "

/* 04 shutdown; CONTRACT_CLOSING is only for a drain cut short. */
#define CONTRACT_DRAINING "draining %d connections"
#define CONTRACT_CLOSING  "closing %d connections"
#define CONTRACT_SHUTDOWN "shutdown complete"

/* 05 reload; no line says CONTRACT_ANY_RELOAD unless a reload happened.
 * A rejected file's line names the file and one of the two reasons. */
#define CONTRACT_RELOAD      "reload: %d backends (+%d -%d)"
#define CONTRACT_ANY_RELOAD  "reload"
#define CONTRACT_KEEPING     "keeping the current pool"
#define CONTRACT_BAD_LINE    "line %d"
#define CONTRACT_NO_BACKENDS "no backends"

/* 06 health; a DOWN line gives its reason, the status of an HTTP check. */
#define CONTRACT_BACKEND_DOWN  "backend %s DOWN"
#define CONTRACT_DOWN_REASON   "DOWN ("
#define CONTRACT_HTTP_503      "503"
#define CONTRACT_BACKEND_UP    "backend %s UP"
#define CONTRACT_NO_BACKEND_UP "no backend up"
#define CONTRACT_NO_VERDICT    "no verdict" /* a check we could not make */

/* 09 metrics: stdout's third line, unless METRICS_LISTEN=off. */
#define CONTRACT_METRICS_ON "metrics on" /* then " <host>:<port>" */
/* 09 metrics: its address in use exits 1, and the message names it. */
#define CONTRACT_METRICS_VAR "METRICS_LISTEN"

/* 10 http: Harbor's own answers (400, 408, 431, 501, 502, 503, 504) are
 * whole: this status line, Content-Type, Content-Length, Connection:
 * close, and this body, then the close. */
#define CONTRACT_OWN_STATUS "HTTP/1.1 %d %s" /* the code, its reason */
#define CONTRACT_OWN_BODY   "%d %s"          /* the same, then \n */
#define CONTRACT_OWN_TYPE   "text/plain"     /* the Content-Type */
#define CONTRACT_CLOSE      "close"          /* the Connection */
/* 10 http: the Connection of a reply to an HTTP/1.0 keep-alive client. */
#define CONTRACT_KEEP_ALIVE "keep-alive"

#endif
