/*
 * http.h - one strict HTTP/1.1 message parser (http.c), for echo and for
 * chapter 10's proxy.  It reads heads and frames bodies; it never does I/O
 * and never allocates.  Whatever RFC 9112 leaves ambiguous - two lengths,
 * a length that is not a number, a transfer coding it does not know - is an
 * error with the status to answer, never a guess: a front end and a back
 * end that guess differently are how requests get smuggled.
 */
#ifndef HARBOR_HTTP_H
#define HARBOR_HTTP_H

#include <stddef.h>

#define HTTP_FIELDS_MAX 100 /* field lines in one head, else 431 */

/* How a message's body is framed (RFC 9112 §6.3). */
enum http_body_kind {
    HTTP_BODY_NONE,    /* no body: HEAD, 1xx, 204, 304, no length */
    HTTP_BODY_LENGTH,  /* Content-Length bytes */
    HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
    HTTP_BODY_CLOSE    /* a response read until the backend closes */
};

/* One field line, pointing into the caller's buffer (not NUL-terminated). */
struct http_field {
    const char *name;
    size_t name_len;
    const char *value; /* without the whitespace around it */
    size_t value_len;
};

/* A parsed head.  Every pointer points into the buffer it was parsed from. */
struct http_msg {
    size_t head_len; /* start line, field lines and the blank line */
    int minor;       /* HTTP/1.<minor>: 0 or 1 */
    /* A request's start line. */
    const char *method;
    size_t method_len;
    const char *target; /* as sent, query included */
    size_t target_len;
    /* A response's start line. */
    int status;
    struct http_field fields[HTTP_FIELDS_MAX];
    size_t nfields;
    /* What the fields say. */
    enum http_body_kind body;
    unsigned long long length; /* HTTP_BODY_LENGTH: how many bytes */
    int keep_alive;            /* the connection may carry another message */
    int expect_continue;       /* Expect: 100-continue */
    int upgrade;               /* Connection: upgrade, with an Upgrade field */
    const char *why;           /* on an error: what was wrong, for the logs */
};

/*
 * Where the head at buf ends (just past its blank line), or 0 when it has
 * not all arrived.  Lines end in CRLF or a bare LF (RFC 9112 §2.2 allows
 * it, which is kind to people typing into nc); a CR anywhere else is an
 * error for the parse.  Empty lines before a request line should be
 * skipped first (http_skip_empty).
 */
size_t http_head_end(const char *buf, size_t len);
/* How many CR and LF bytes start buf: empty lines before a request. */
size_t http_skip_empty(const char *buf, size_t len);

/*
 * Parse the request head buf[0..head_len) into m.  0, or the status to
 * answer with before closing the connection: 400 for a malformed or
 * ambiguous head, 431 for too many field lines, 501 for a transfer coding
 * other than chunked.  m->why says what was wrong.
 */
int http_parse_request(const char *buf, size_t head_len, struct http_msg *m);
/*
 * Parse the response head buf[0..head_len) into m, for a request whose
 * method was HEAD when head_request is set.  0, or -1 for a malformed or
 * ambiguous response (m->why).
 */
int http_parse_response(const char *buf, size_t head_len, int head_request,
                        struct http_msg *m);

/* Is the field's name name (any case)? */
int http_field_is(const struct http_field *f, const char *name);
/*
 * Is token one of the comma-separated elements of the list s[0..len)
 * (any case, whitespace around elements ignored)?  For Connection.
 */
int http_list_has(const char *s, size_t len, const char *token,
                  size_t token_len);

/*
 * The body of one message, framed as it streams past.  Start it with
 * http_body_init() from the parsed head, then hand it the bytes that
 * follow the head, in pieces of any size, with http_body_take().
 */
struct http_body {
    enum http_body_kind kind;
    unsigned long long left; /* data bytes left: of the body, or the chunk */
    int state;               /* where in the chunked framing (http.c) */
    unsigned digits;         /* hex digits of the chunk size so far */
    size_t line;             /* bytes of the framing line so far */
    int done;                /* the message has ended */
};

void http_body_init(struct http_body *b, const struct http_msg *m);
/*
 * Take bytes of the body from p[0..n): never more than the message has
 * left, so what follows (the next message) stays with the caller.  Returns
 * how many bytes were taken, or -1 when the chunked framing is malformed.
 * One call takes either body data only or framing only (chunk sizes,
 * their CRLFs, trailers): *data is the count taken when it was data, else
 * 0.  A proxy forwards every byte taken; echo keeps the data.  Call until
 * http_body_done(), reading more whenever it took nothing.
 */
long http_body_take(struct http_body *b, const char *p, size_t n, size_t *data);
int http_body_done(const struct http_body *b);

/* The reason phrase for a status ("Bad Request"), or "Unknown". */
const char *http_reason(int status);

#endif
