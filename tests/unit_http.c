/*
 * unit_http.c - tests for common/http.c, the parser that decides where one
 * HTTP message ends and the next begins.  Most of it is one table of
 * request smuggling shapes: each row is the raw bytes, the status the
 * parser must answer, and for an accepted row how its body is framed, the
 * body it decodes to and what is left for the next message.  Every accepted
 * body is decoded twice, in one piece and a byte at a time, and both must
 * agree: a proxy reads whatever the socket gives it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "unit.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Bodies, fed in pieces ------------------------------------------------- */

/* What decoding one body gave. */
struct decoded {
    int rc;       /* 0: the body ended, 1: the bytes ran out, -1: malformed */
    size_t taken; /* bytes http_body_take() took, framing included */
    char data[512];
    size_t len; /* data bytes */
};

/*
 * Feed the body that starts at p[0..n) to a machine initialised from m, as
 * a proxy reading piece bytes at a time would (SIZE_MAX: all at once).
 */
static void
decode(const struct http_msg *m, const char *p, size_t n, size_t piece,
       struct decoded *d)
{
    struct http_body b;
    size_t avail = 0;

    memset(d, 0, sizeof(*d));
    http_body_init(&b, m);
    while (!http_body_done(&b)) {
        size_t data;
        long r;

        if (d->taken == avail) {
            if (avail == n) {
                d->rc = 1;
                return;
            }
            avail = n - avail < piece ? n : avail + piece;
        }
        r = http_body_take(&b, p + d->taken, avail - d->taken, &data);
        if (r < 0) {
            d->rc = -1;
            return;
        }
        ck_assert_msg((size_t)r <= avail - d->taken, "took more than given");
        ck_assert_msg(data == 0 || data == (size_t)r, "data and framing mixed");
        ck_assert_msg(r > 0, "took nothing from %zu bytes, and not done",
                      avail - d->taken);
        ck_assert_msg(d->len + data <= sizeof(d->data), "body too long");
        memcpy(d->data + d->len, p + d->taken, data);
        d->len += data;
        d->taken += (size_t)r;
    }
}

/* Decode in one piece and a byte at a time; fail unless both agree. */
static void
decode_both(const char *name, const struct http_msg *m, const char *p, size_t n,
            struct decoded *one)
{
    struct decoded bytes;

    decode(m, p, n, SIZE_MAX, one);
    decode(m, p, n, 1, &bytes);
    ck_assert_msg(one->rc == bytes.rc, "%s: in one piece %d, byte at a time %d",
                  name, one->rc, bytes.rc);
    if (one->rc < 0)
        return;
    ck_assert_msg(one->taken == bytes.taken,
                  "%s: took %zu in one piece, %zu byte at a time", name,
                  one->taken, bytes.taken);
    ck_assert_msg(one->len == bytes.len &&
                      memcmp(one->data, bytes.data, one->len) == 0,
                  "%s: the data differ in one piece and byte at a time", name);
}

/* Requests: the smuggling table ----------------------------------------- */

/* The request pipelined behind every accepted row, in the same bytes. */
#define NEXT "GET /second HTTP/1.1\r\nHost: x\r\n\r\n"

#define H      "Host: x\r\n"
#define POST_A "POST /a HTTP/1.1\r\n" H
#define TE     "Transfer-Encoding: "
#define CL     "Content-Length: "
#define HELLO  "5\r\nhello\r\n0\r\n\r\n"

enum outcome { REFUSED, ACCEPTED, BAD_BODY };

static const struct req_case {
    const char *name;
    const char *raw; /* head, body and NEXT for accepted rows */
    size_t len;
    enum outcome outcome;
    int status;               /* what http_parse_request() answers */
    enum http_body_kind body; /* for the rest: accepted rows */
    const char *data;         /* the decoded body */
} reqs[] = {
#define REQ_NO(name, raw, status)                                              \
    {                                                                          \
        name, raw, sizeof(raw) - 1, REFUSED, status, HTTP_BODY_NONE, NULL      \
    }
#define REQ_OK(name, raw, body, data)                                          \
    {                                                                          \
        name, raw NEXT, sizeof(raw NEXT) - 1, ACCEPTED, 0, body, data          \
    }
#define REQ_BAD_BODY(name, raw)                                                \
    {                                                                          \
        name, raw NEXT, sizeof(raw NEXT) - 1, BAD_BODY, 0, HTTP_BODY_CHUNKED,  \
            NULL                                                               \
    }

    /* Plain requests, pipelined. */
    REQ_OK("GET", "GET /a HTTP/1.1\r\n" H "\r\n", HTTP_BODY_NONE, ""),
    REQ_OK("GET, HTTP/1.0", "GET /a HTTP/1.0\r\n\r\n", HTTP_BODY_NONE, ""),
    REQ_OK("Content-Length", POST_A CL "5\r\n\r\nhello", HTTP_BODY_LENGTH,
           "hello"),
    REQ_OK("Content-Length: 0", POST_A CL "0\r\n\r\n", HTTP_BODY_LENGTH, ""),
    REQ_OK("Content-Length: 005", POST_A CL "005\r\n\r\nhello",
           HTTP_BODY_LENGTH, "hello"),
    REQ_OK("chunked", POST_A TE "chunked\r\n\r\n" HELLO, HTTP_BODY_CHUNKED,
           "hello"),
    REQ_OK("two chunks",
           POST_A TE "chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
           HTTP_BODY_CHUNKED, "hello"),
    REQ_OK("chunk data holding CRLF and a size",
           POST_A TE "chunked\r\n\r\n7\r\n\r\n0\r\n\r\n\r\n0\r\n\r\n",
           HTTP_BODY_CHUNKED, "\r\n0\r\n\r\n"),
    REQ_OK("only the last chunk", POST_A TE "chunked\r\n\r\n0\r\n\r\n",
           HTTP_BODY_CHUNKED, ""),

    /* CL.TE and TE.CL: two framings, one of them a lie. */
    REQ_NO("CL.TE", POST_A CL "6\r\n" TE "chunked\r\n\r\n0\r\n\r\nX", 400),
    REQ_NO("TE.CL", POST_A TE "chunked\r\n" CL "3\r\n\r\n" HELLO, 400),
    REQ_NO("CL.TE, TE not chunked", POST_A CL "5\r\n" TE "gzip\r\n\r\nhello",
           400),

    /* TE.TE: a Transfer-Encoding one parser reads and the next does not. */
    REQ_OK("TE: CHUNKED", POST_A TE "CHUNKED\r\n\r\n" HELLO, HTTP_BODY_CHUNKED,
           "hello"),
    REQ_OK("TE: Chunked", POST_A TE "Chunked\r\n\r\n" HELLO, HTTP_BODY_CHUNKED,
           "hello"),
    REQ_OK("TE: whitespace around chunked",
           POST_A "Transfer-Encoding:  \t chunked \t\r\n\r\n" HELLO,
           HTTP_BODY_CHUNKED, "hello"),
    REQ_OK("TE: no whitespace",
           POST_A "Transfer-Encoding:chunked\r\n\r\n" HELLO, HTTP_BODY_CHUNKED,
           "hello"),
    REQ_NO("TE: chunked, identity", POST_A TE "chunked, identity\r\n\r\n" HELLO,
           400),
    REQ_NO("TE: chunked, chunked", POST_A TE "chunked, chunked\r\n\r\n" HELLO,
           400),
    REQ_NO("TE: xchunked", POST_A TE "xchunked\r\n\r\n" HELLO, 501),
    REQ_NO("TE: identity", POST_A TE "identity\r\n\r\n" HELLO, 501),
    REQ_NO("TE: gzip", POST_A TE "gzip\r\n\r\n" HELLO, 501),
    REQ_NO("TE: gzip, chunked", POST_A TE "gzip, chunked\r\n\r\n" HELLO, 501),
    REQ_NO("TE: gzip,chunked", POST_A TE "gzip,chunked\r\n\r\n" HELLO, 501),
    REQ_NO("TE split: gzip, then chunked",
           POST_A TE "gzip\r\n" TE "chunked\r\n\r\n" HELLO, 501),
    REQ_NO("TE split: chunked, then gzip",
           POST_A TE "chunked\r\n" TE "gzip\r\n\r\n" HELLO, 400),
    REQ_NO("TE split: chunked twice",
           POST_A TE "chunked\r\n" TE "chunked\r\n\r\n" HELLO, 400),
    REQ_NO("TE with a space before the colon",
           POST_A "Transfer-Encoding : chunked\r\n\r\n" HELLO, 400),
    REQ_NO("TE with a tab before the colon",
           POST_A "Transfer-Encoding\t: chunked\r\n\r\n" HELLO, 400),
    REQ_NO("TE folded onto a second line",
           POST_A TE "\r\n chunked\r\n\r\n" HELLO, 400),
    REQ_NO("TE: chunked and a vertical tab",
           POST_A TE "chunked\v\r\n\r\n" HELLO, 400),
    REQ_NO("TE: chunked;x", POST_A TE "chunked;x\r\n\r\n" HELLO, 400),
    REQ_NO("TE: \"chunked\"", POST_A TE "\"chunked\"\r\n\r\n" HELLO, 400),
    REQ_NO("TE: an empty element first", POST_A TE ", chunked\r\n\r\n" HELLO,
           400),
    REQ_NO("TE: an empty element last", POST_A TE "chunked,\r\n\r\n" HELLO,
           400),
    REQ_NO("TE: empty", POST_A TE "\r\n\r\n" HELLO, 400),
    REQ_NO("TE in HTTP/1.0", "POST /a HTTP/1.0\r\n" TE "chunked\r\n\r\n" HELLO,
           400),

    /* Content-Length: one decimal number, or the same one again. */
    REQ_OK("Content-Length twice, equal", POST_A CL "5\r\n" CL "5\r\n\r\nhello",
           HTTP_BODY_LENGTH, "hello"),
    REQ_OK("Content-Length twice, equal, other case",
           POST_A CL "5\r\ncontent-length: 05\r\n\r\nhello", HTTP_BODY_LENGTH,
           "hello"),
    REQ_OK("Content-Length with whitespace around",
           POST_A CL " \t5 \t\r\n\r\nhello", HTTP_BODY_LENGTH, "hello"),
    REQ_NO("Content-Length twice, different",
           POST_A CL "5\r\n" CL "6\r\n\r\nhello!", 400),
    REQ_NO("Content-Length: 5, 5", POST_A CL "5, 5\r\n\r\nhello", 400),
    REQ_NO("Content-Length: 5,5", POST_A CL "5,5\r\n\r\nhello", 400),
    REQ_NO("Content-Length: +5", POST_A CL "+5\r\n\r\nhello", 400),
    REQ_NO("Content-Length: -1", POST_A CL "-1\r\n\r\nhello", 400),
    REQ_NO("Content-Length: 5 5", POST_A CL "5 5\r\n\r\nhello", 400),
    REQ_NO("Content-Length: 0x5", POST_A CL "0x5\r\n\r\nhello", 400),
    REQ_NO("Content-Length: 5.0", POST_A CL "5.0\r\n\r\nhello", 400),
    REQ_NO("Content-Length empty", POST_A CL "\r\n\r\nhello", 400),
    REQ_NO("Content-Length: 2^63", POST_A CL "9223372036854775808\r\n\r\nhello",
           400),
    REQ_NO("Content-Length past 2^64",
           POST_A CL "99999999999999999999\r\n\r\nhello", 400),
    REQ_NO("Content-Length with a space before the colon",
           POST_A "Content-Length : 5\r\n\r\nhello", 400),

    /* Chunk sizes and extensions. */
    REQ_OK("chunk size 0005",
           POST_A TE "chunked\r\n\r\n0005\r\nhello\r\n0\r\n\r\n",
           HTTP_BODY_CHUNKED, "hello"),
    REQ_OK("chunk size 16 digits",
           POST_A TE "chunked\r\n\r\n0000000000000005\r\nhello\r\n0\r\n\r\n",
           HTTP_BODY_CHUNKED, "hello"),
    REQ_OK("chunk size in capitals",
           POST_A TE "chunked\r\n\r\nA\r\n0123456789\r\n000\r\n\r\n",
           HTTP_BODY_CHUNKED, "0123456789"),
    REQ_OK("chunk extension, token",
           POST_A TE "chunked\r\n\r\n5;a=b\r\nhello\r\n0;last\r\n\r\n",
           HTTP_BODY_CHUNKED, "hello"),
    REQ_OK("chunk extensions, quoted and spaced",
           POST_A TE
           "chunked\r\n\r\n5 ; a = \"q\\\"s;\" ; b\r\nhello\r\n0\r\n\r\n",
           HTTP_BODY_CHUNKED, "hello"),
    REQ_OK("trailers",
           POST_A TE "chunked\r\n\r\n"
                     "5\r\nhello\r\n0\r\nX-T: 1\r\nY:\r\n\r\n",
           HTTP_BODY_CHUNKED, "hello"),
    REQ_BAD_BODY("chunk size of 17 digits", POST_A TE
                 "chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk size of 17 digits, zeros first", POST_A TE
                 "chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk size 2^60", POST_A TE
                 "chunked\r\n\r\n1000000000000000\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk size not hex",
                 POST_A TE "chunked\r\n\r\ng\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk size, then not hex",
                 POST_A TE "chunked\r\n\r\n5g\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk size 0x5",
                 POST_A TE "chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk size -5",
                 POST_A TE "chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk size empty",
                 POST_A TE "chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("whitespace before a chunk size",
                 POST_A TE "chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("whitespace after a chunk size",
                 POST_A TE "chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk extension with a space in it",
                 POST_A TE "chunked\r\n\r\n5;a b\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk extension empty",
                 POST_A TE "chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk extension without a value",
                 POST_A TE "chunked\r\n\r\n5;a=\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk extension, bytes after the quote",
                 POST_A TE "chunked\r\n\r\n5;a=\"x\"y\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("chunk extension, NUL in the quotes",
                 POST_A TE "chunked\r\n\r\n5;a=\"\0\"\r\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("bare LF after a chunk size",
                 POST_A TE "chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("bare CR after a chunk size",
                 POST_A TE "chunked\r\n\r\n5\rhello\r\n0\r\n\r\n"),
    REQ_BAD_BODY("no CRLF after chunk data",
                 POST_A TE "chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n"),
    REQ_BAD_BODY("bare LF after chunk data",
                 POST_A TE "chunked\r\n\r\n5\r\nhello\n0\r\n\r\n"),
    REQ_BAD_BODY("bare LF to end the trailers",
                 POST_A TE "chunked\r\n\r\n0\r\n\n"),
    REQ_BAD_BODY("bare LF after a trailer",
                 POST_A TE "chunked\r\n\r\n0\r\nX-T: 1\n\r\n"),
    REQ_BAD_BODY("folded trailer",
                 POST_A TE "chunked\r\n\r\n0\r\nX-T: 1\r\n t\r\n\r\n"),
    REQ_BAD_BODY("trailer without a colon",
                 POST_A TE "chunked\r\n\r\n0\r\nX-T\r\n\r\n"),

    /* Line ends and bytes: what one parser ends a line at, another may
     * not. */
    REQ_OK("bare LF line ends", "GET /a HTTP/1.1\nHost: x\n\n", HTTP_BODY_NONE,
           ""),
    REQ_OK("bare LF, then CRLF", "GET /a HTTP/1.1\nHost: x\r\n\n",
           HTTP_BODY_NONE, ""),
    REQ_OK("empty lines before the request line",
           "\r\n\n\r\nGET /a HTTP/1.1\r\n" H "\r\n", HTTP_BODY_NONE, ""),
    REQ_OK("obs-text in a value",
           "GET /a HTTP/1.1\r\n" H "X-A: caf\xc3\xa9\r\n\r\n", HTTP_BODY_NONE,
           ""),
    REQ_OK("no Host", "GET /a HTTP/1.1\r\n\r\n", HTTP_BODY_NONE, ""),
    REQ_NO("bare CR in a value", POST_A "X-A: a\rb\r\n" CL "5\r\n\r\nhello",
           400),
    REQ_NO("bare CR ending a line", "GET /a HTTP/1.1\r" H "\r\n", 400),
    REQ_NO("bare CR ending the head", "GET /a HTTP/1.1\r\n" H "\r\r\n\r\n",
           400),
    REQ_NO("NUL in a value", POST_A "X-A: a\0b\r\n" CL "5\r\n\r\nhello", 400),
    REQ_NO("NUL in a name", POST_A "X-\0A: ab\r\n" CL "5\r\n\r\nhello", 400),
    REQ_NO("control byte in a value",
           POST_A "X-A: a\x01"
                  "b\r\n\r\n",
           400),
    REQ_NO("DEL in a value",
           POST_A "X-A: a\x7f"
                  "b\r\n\r\n",
           400),
    REQ_NO("obs-fold", POST_A "X-A: a\r\n b\r\n" CL "5\r\n\r\nhello", 400),
    REQ_NO("obs-fold with a tab", POST_A "X-A: a\r\n\tb\r\n\r\n", 400),
    REQ_NO("obs-fold on the first field", "GET /a HTTP/1.1\r\n " H "\r\n", 400),
    REQ_NO("line without a colon", POST_A "X-A\r\n" CL "5\r\n\r\nhello", 400),
    REQ_NO("empty field name", POST_A ": x\r\n\r\n", 400),
    REQ_NO("Host with a space before the colon",
           "GET /a HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    REQ_NO("two Hosts", "GET /a HTTP/1.1\r\n" H "Host: y\r\n\r\n", 400),

    /* Request lines and targets. */
    REQ_OK("absolute-form http", "GET http://x/abs HTTP/1.1\r\n" H "\r\n",
           HTTP_BODY_NONE, ""),
    REQ_OK("absolute-form https", "GET https://x/abs HTTP/1.1\r\n" H "\r\n",
           HTTP_BODY_NONE, ""),
    REQ_OK("absolute-form, scheme in capitals",
           "GET HTTP://x/abs HTTP/1.1\r\n" H "\r\n", HTTP_BODY_NONE, ""),
    REQ_OK("asterisk-form with OPTIONS", "OPTIONS * HTTP/1.1\r\n" H "\r\n",
           HTTP_BODY_NONE, ""),
    REQ_NO("asterisk-form with GET", "GET * HTTP/1.1\r\n" H "\r\n", 400),
    REQ_NO("asterisk-form, longer", "OPTIONS *x HTTP/1.1\r\n" H "\r\n", 400),
    REQ_NO("absolute-form, scheme only", "GET http:// HTTP/1.1\r\n" H "\r\n",
           400),
    REQ_NO("absolute-form ftp", "GET ftp://x/ HTTP/1.1\r\n" H "\r\n", 400),
    REQ_NO("target a", "GET a HTTP/1.1\r\n" H "\r\n", 400),
    REQ_NO("CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 501),
    REQ_NO("HTTP/2.0", "GET /a HTTP/2.0\r\n" H "\r\n", 400),
    REQ_NO("HTTP/1.2", "GET /a HTTP/1.2\r\n" H "\r\n", 400),
    REQ_NO("HTTP/1.10", "GET /a HTTP/1.10\r\n" H "\r\n", 400),
    REQ_NO("http/1.1", "GET /a http/1.1\r\n" H "\r\n", 400),
    REQ_NO("no version", "GET /a\r\n" H "\r\n", 400),
    REQ_NO("two spaces after the method", "GET  /a HTTP/1.1\r\n" H "\r\n", 400),
    REQ_NO("two spaces before the version", "GET /a  HTTP/1.1\r\n" H "\r\n",
           400),
    REQ_NO("a tab for a space", "GET\t/a HTTP/1.1\r\n" H "\r\n", 400),
    REQ_NO("space after the version", "GET /a HTTP/1.1 \r\n" H "\r\n", 400),
    REQ_NO("empty method", " /a HTTP/1.1\r\n" H "\r\n", 400),
    REQ_NO("method not a token", "G(T /a HTTP/1.1\r\n" H "\r\n", 400),
    REQ_NO("NUL in the target", "GET /a\0b HTTP/1.1\r\n" H "\r\n", 400),
    REQ_NO("obs-text in the target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" H "\r\n",
           400),
};

/* Where the head of raw[0..len) starts and ends, after empty lines. */
static size_t
head_of(const char *raw, size_t len, size_t *skip)
{
    *skip = http_skip_empty(raw, len);
    return http_head_end(raw + *skip, len - *skip);
}

START_TEST(request_table_row)
{
    const struct req_case *c = &reqs[_i];
    struct http_msg m, next;
    struct decoded d;
    size_t skip, end, rest;
    int status;

    end = head_of(c->raw, c->len, &skip);
    ck_assert_msg(end > 0, "%s: no end of head found", c->name);
    status = http_parse_request(c->raw + skip, end, &m);
    ck_assert_msg(status == c->status, "%s: status %d (%s), want %d", c->name,
                  status, m.why != NULL ? m.why : "no reason", c->status);
    if (c->outcome == REFUSED) {
        ck_assert_msg(m.why != NULL, "%s: refused without a reason", c->name);
        return;
    }
    ck_assert_msg(m.head_len == end, "%s: head_len %zu, want %zu", c->name,
                  m.head_len, end);
    ck_assert_msg(m.body == c->body, "%s: body kind %d, want %d", c->name,
                  m.body, c->body);
    decode_both(c->name, &m, c->raw + skip + end, c->len - skip - end, &d);
    if (c->outcome == BAD_BODY) {
        ck_assert_msg(d.rc == -1, "%s: a malformed body decoded (%d)", c->name,
                      d.rc);
        return;
    }
    ck_assert_msg(d.rc == 0, "%s: the body did not end (%d)", c->name, d.rc);
    ck_assert_msg(
        d.len == strlen(c->data) && memcmp(d.data, c->data, d.len) == 0,
        "%s: body \"%.*s\", want \"%s\"", c->name, (int)d.len, d.data, c->data);
    if (c->body == HTTP_BODY_LENGTH)
        ck_assert_msg(m.length == strlen(c->data), "%s: length %llu", c->name,
                      m.length);

    /* The next message starts right after, untouched. */
    rest = skip + end + d.taken;
    ck_assert_msg(c->len - rest == strlen(NEXT) &&
                      memcmp(c->raw + rest, NEXT, strlen(NEXT)) == 0,
                  "%s: the next message starts at %zu, want %zu", c->name, rest,
                  c->len - strlen(NEXT));
    ck_assert_int_eq(http_head_end(c->raw + rest, c->len - rest), strlen(NEXT));
    ck_assert_int_eq(http_parse_request(c->raw + rest, strlen(NEXT), &next), 0);
    ck_assert_msg(next.target_len == 7 &&
                      memcmp(next.target, "/second", 7) == 0,
                  "%s: the next request lost its target", c->name);
}
END_TEST

/* A head of n field lines, Host among them. */
static size_t
many_fields(char *buf, size_t size, int n)
{
    size_t len = (size_t)snprintf(buf, size, "GET /a HTTP/1.1\r\n" H);
    int i;

    for (i = 1; i < n; i++)
        len += (size_t)snprintf(buf + len, size - len, "X-%d: v\r\n", i);
    len += (size_t)snprintf(buf + len, size - len, "\r\n");
    ck_assert_uint_lt(len, size);
    return len;
}

START_TEST(request_with_100_fields_is_parsed_and_101_refused_with_431)
{
    char buf[4096];
    struct http_msg m;
    size_t len;

    len = many_fields(buf, sizeof(buf), HTTP_FIELDS_MAX);
    ck_assert_int_eq(http_head_end(buf, len), len);
    ck_assert_int_eq(http_parse_request(buf, len, &m), 0);
    ck_assert_uint_eq(m.nfields, HTTP_FIELDS_MAX);
    len = many_fields(buf, sizeof(buf), HTTP_FIELDS_MAX + 1);
    ck_assert_int_eq(http_parse_request(buf, len, &m), 431);
}
END_TEST

START_TEST(request_start_line_and_fields_point_into_the_buffer)
{
    static const char raw[] = "PUT /p?q=1 HTTP/1.1\r\nHost:  x.y \r\n"
                              "X-Empty:\r\n\r\n";
    struct http_msg m;

    ck_assert_int_eq(http_parse_request(raw, sizeof(raw) - 1, &m), 0);
    ck_assert_ptr_eq(m.method, raw);
    ck_assert_uint_eq(m.method_len, 3);
    ck_assert_ptr_eq(m.target, raw + 4);
    ck_assert_uint_eq(m.target_len, 6);
    ck_assert_int_eq(m.minor, 1);
    ck_assert_uint_eq(m.nfields, 2);
    ck_assert(http_field_is(&m.fields[0], "host"));
    ck_assert_uint_eq(m.fields[0].value_len, 3);
    ck_assert(memcmp(m.fields[0].value, "x.y", 3) == 0);
    ck_assert(http_field_is(&m.fields[1], "X-EMPTY"));
    ck_assert_uint_eq(m.fields[1].value_len, 0);
    ck_assert(!http_field_is(&m.fields[1], "X-Empt"));
    ck_assert(!http_field_is(&m.fields[1], "X-Empty2"));
}
END_TEST

START_TEST(content_length_of_2_to_the_63_minus_1_is_accepted)
{
    static const char raw[] = POST_A CL "9223372036854775807\r\n\r\n";
    struct http_msg m;
    struct http_body b;
    size_t data;

    ck_assert_int_eq(http_parse_request(raw, sizeof(raw) - 1, &m), 0);
    ck_assert_int_eq(m.body, HTTP_BODY_LENGTH);
    ck_assert(m.length == 9223372036854775807ULL);
    http_body_init(&b, &m);
    ck_assert_int_eq(http_body_take(&b, "abc", 3, &data), 3);
    ck_assert(!http_body_done(&b));
}
END_TEST

/* Chunk sizes at the limit: 2^60 - 1 is a size, 2^60 is not. */
START_TEST(chunk_size_below_2_to_the_60_is_taken)
{
    static const char *const sizes[] = {"FFFFFFFFFFFFFFF\r\n",
                                        "0fffffffffffffff\r\n"};
    static const char raw[] = POST_A TE "chunked\r\n\r\n";
    struct http_msg m;
    struct http_body b;
    size_t i, data;

    ck_assert_int_eq(http_parse_request(raw, sizeof(raw) - 1, &m), 0);
    for (i = 0; i < 2; i++) {
        http_body_init(&b, &m);
        ck_assert_int_eq(http_body_take(&b, sizes[i], strlen(sizes[i]), &data),
                         strlen(sizes[i]));
        ck_assert_uint_eq(data, 0);
        ck_assert_int_eq(http_body_take(&b, "abcd", 4, &data), 4);
        ck_assert_uint_eq(data, 4);
        ck_assert(!http_body_done(&b));
    }
}
END_TEST

/* A malformed body stays malformed, and a finished one takes no more. */
START_TEST(body_errors_stick_and_done_bodies_take_nothing)
{
    static const char raw[] = POST_A TE "chunked\r\n\r\n";
    struct http_msg m;
    struct http_body b;
    size_t data;

    ck_assert_int_eq(http_parse_request(raw, sizeof(raw) - 1, &m), 0);
    http_body_init(&b, &m);
    ck_assert_int_eq(http_body_take(&b, "z\r\n", 3, &data), -1);
    ck_assert_int_eq(http_body_take(&b, "0\r\n\r\n", 5, &data), -1);
    http_body_init(&b, &m);
    ck_assert_int_eq(http_body_take(&b, "0\r\n\r\nGET", 8, &data), 5);
    ck_assert(http_body_done(&b));
    ck_assert_int_eq(http_body_take(&b, "GET", 3, &data), 0);
    ck_assert_uint_eq(data, 0);
}
END_TEST

/* Connection, Expect and Upgrade, in both versions. */
static const struct {
    const char *raw;
    int keep_alive, expect_continue, upgrade;
} req_flags[] = {
    {"GET / HTTP/1.1\r\n\r\n", 1, 0, 0},
    {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0, 0, 0},
    {"GET / HTTP/1.1\r\nConnection: x, CLOSE\r\n\r\n", 0, 0, 0},
    {"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", 0, 0, 0},
    {"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", 1, 0, 0},
    {"GET / HTTP/1.0\r\n\r\n", 0, 0, 0},
    {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1, 0, 0},
    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n"
     "Connection: close\r\n\r\n",
     0, 0, 0},
    {"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n", 1, 1, 0},
    {"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", 0, 0, 0},
    {"PUT / HTTP/1.1\r\nExpect: 100-continue, x\r\n\r\n", 1, 0, 0},
    {"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: ws\r\n\r\n", 1, 0, 1},
    {"GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n", 1, 0, 0},
    {"GET / HTTP/1.1\r\nUpgrade: ws\r\n\r\n", 1, 0, 0},
};

START_TEST(request_flags_follow_connection_expect_and_upgrade)
{
    const char *raw = req_flags[_i].raw;
    struct http_msg m;

    ck_assert_int_eq(http_parse_request(raw, strlen(raw), &m), 0);
    ck_assert_msg(m.keep_alive == req_flags[_i].keep_alive, "%s: keep_alive %d",
                  raw, m.keep_alive);
    ck_assert_msg(m.expect_continue == req_flags[_i].expect_continue,
                  "%s: expect_continue %d", raw, m.expect_continue);
    ck_assert_msg(m.upgrade == req_flags[_i].upgrade, "%s: upgrade %d", raw,
                  m.upgrade);
}
END_TEST

/* Heads: where they end ------------------------------------------------- */

static const struct {
    const char *buf;
    size_t end, skip;
} heads[] = {
    {"GET / HTTP/1.1\r\n\r\n", 18, 0},
    {"GET / HTTP/1.1\n\n", 16, 0},
    {"GET / HTTP/1.1\r\n\nX", 17, 0},
    {"GET / HTTP/1.1\n\r\nX", 17, 0},
    {"GET / HTTP/1.1\r\n", 0, 0},
    {"GET / HTTP/1.1\r\n\r", 0, 0},
    {"GET / HTTP/1.1\r\nA: b\r\r\n", 0, 0}, /* "\r\r\n" is no empty line */
    {"", 0, 0},
    {"\r\n\r\nGET", 2, 4},
    {"\n", 1, 1},
};

START_TEST(head_end_finds_the_first_empty_line)
{
    const char *buf = heads[_i].buf;

    ck_assert_msg(http_head_end(buf, strlen(buf)) == heads[_i].end,
                  "\"%s\": %zu", buf, http_head_end(buf, strlen(buf)));
    ck_assert_uint_eq(http_skip_empty(buf, strlen(buf)), heads[_i].skip);
}
END_TEST

/* Responses ------------------------------------------------------------- */

/* The response pipelined behind every framed one. */
#define NEXT_RESP "HTTP/1.1 204 No Content\r\n\r\n"

static const struct resp_case {
    const char *name;
    const char *raw;
    size_t len;
    int head_request;
    int rc;                   /* what http_parse_response() answers */
    int status;               /* the status code, when rc is 0 */
    enum http_body_kind body; /* the rest, when rc is 0 */
    int keep_alive;
    const char *data; /* the decoded body; a close-delimited body is all */
    const char *next; /* what is left after the body */
} resps[] = {
#define RESP_OK(name, raw, head, status, body, ka, data)                       \
    {                                                                          \
        name, raw NEXT_RESP, sizeof(raw NEXT_RESP) - 1, head, 0, status, body, \
            ka, data, NEXT_RESP                                                \
    }
#define RESP_NO(name, raw)                                                     \
    {                                                                          \
        name, raw, sizeof(raw) - 1, 0, -1, 0, HTTP_BODY_NONE, 0, NULL, NULL    \
    }

    RESP_OK("200 with Content-Length",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0, 200,
            HTTP_BODY_LENGTH, 1, "hello"),
    RESP_OK("200, no reason phrase",
            "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nhi", 0, 200,
            HTTP_BODY_LENGTH, 1, "hi"),
    RESP_OK("200, an empty reason phrase",
            "HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nhi", 0, 200,
            HTTP_BODY_LENGTH, 1, "hi"),
    RESP_OK("200 chunked",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" HELLO, 0,
            200, HTTP_BODY_CHUNKED, 1, "hello"),
    RESP_OK("200 to HEAD, with a Content-Length",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1, 200,
            HTTP_BODY_NONE, 1, ""),
    RESP_OK("200 to HEAD, chunked",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 200,
            HTTP_BODY_NONE, 1, ""),
    RESP_OK("204 with a Content-Length",
            "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 0, 204,
            HTTP_BODY_NONE, 1, ""),
    RESP_OK("304 chunked",
            "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
            0, 304, HTTP_BODY_NONE, 1, ""),
    RESP_OK("100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", 0, 100,
            HTTP_BODY_NONE, 1, ""),
    RESP_OK("101 Switching Protocols",
            "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
            "Upgrade: ws\r\n\r\n",
            0, 101, HTTP_BODY_NONE, 1, ""),
    RESP_OK("HTTP/1.0 with Content-Length",
            "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", 0, 200,
            HTTP_BODY_LENGTH, 0, "hi"),
    RESP_OK("HTTP/1.0 keep-alive",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: "
            "2\r\n\r\nhi",
            0, 200, HTTP_BODY_LENGTH, 1, "hi"),
    RESP_OK("Connection: close",
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
            "2\r\n\r\nhi",
            0, 200, HTTP_BODY_LENGTH, 0, "hi"),
    RESP_OK("no length: read to the close", "HTTP/1.1 200 OK\r\n\r\nhello", 0,
            200, HTTP_BODY_CLOSE, 0, "hello" NEXT_RESP),
    RESP_OK("gzip without chunked: read to the close",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello", 0, 200,
            HTTP_BODY_CLOSE, 0, "hello" NEXT_RESP),
    RESP_NO("Content-Length and Transfer-Encoding",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: "
            "chunked\r\n\r\n"),
    RESP_NO("Transfer-Encoding and Content-Length",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: "
            "5\r\n\r\n"),
    RESP_NO("two Content-Lengths",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: "
            "6\r\n\r\n"),
    RESP_NO("a bad Content-Length, even in a 204",
            "HTTP/1.1 204 No Content\r\nContent-Length: +5\r\n\r\n"),
    RESP_NO("chunked, identity",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n"),
    RESP_NO("Transfer-Encoding in HTTP/1.0",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    RESP_NO("obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\r\n"),
    RESP_NO("bare CR", "HTTP/1.1 200 OK\rX-A: a\r\n\r\n"),
    RESP_NO("a two-digit status", "HTTP/1.1 20 OK\r\n\r\n"),
    RESP_NO("a four-digit status", "HTTP/1.1 2000\r\n\r\n"),
    RESP_NO("status 099", "HTTP/1.1 099 x\r\n\r\n"),
    RESP_NO("status 600", "HTTP/1.1 600 x\r\n\r\n"),
    RESP_NO("no space after the status", "HTTP/1.1 200OK\r\n\r\n"),
    RESP_NO("a control byte in the reason", "HTTP/1.1 200 O\x01K\r\n\r\n"),
    RESP_NO("HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n"),
    RESP_NO("not HTTP", "SSH-2.0-x\r\n\r\n"),
};

START_TEST(response_table_row)
{
    const struct resp_case *c = &resps[_i];
    struct http_msg m;
    struct decoded d;
    size_t end, rest;
    int rc;

    end = http_head_end(c->raw, c->len);
    ck_assert_msg(end > 0, "%s: no end of head found", c->name);
    rc = http_parse_response(c->raw, end, c->head_request, &m);
    ck_assert_msg(rc == c->rc, "%s: %d (%s), want %d", c->name, rc,
                  m.why != NULL ? m.why : "no reason", c->rc);
    if (rc < 0) {
        ck_assert_msg(m.why != NULL, "%s: refused without a reason", c->name);
        return;
    }
    ck_assert_int_eq(m.status, c->status);
    ck_assert_msg(m.body == c->body, "%s: body kind %d, want %d", c->name,
                  m.body, c->body);
    ck_assert_msg(m.keep_alive == c->keep_alive, "%s: keep_alive %d", c->name,
                  m.keep_alive);
    decode_both(c->name, &m, c->raw + end, c->len - end, &d);
    ck_assert_msg(d.rc == (c->body == HTTP_BODY_CLOSE ? 1 : 0),
                  "%s: decoding ended with %d", c->name, d.rc);
    ck_assert_msg(
        d.len == strlen(c->data) && memcmp(d.data, c->data, d.len) == 0,
        "%s: body \"%.*s\", want \"%s\"", c->name, (int)d.len, d.data, c->data);
    rest = end + d.taken;
    if (c->body == HTTP_BODY_CLOSE) {
        ck_assert_uint_eq(rest, c->len); /* the close is the end */
        return;
    }
    ck_assert_msg(c->len - rest == strlen(c->next) &&
                      memcmp(c->raw + rest, c->next, strlen(c->next)) == 0,
                  "%s: the next response starts at %zu", c->name, rest);
}
END_TEST

/* Lists and reasons ----------------------------------------------------- */

static const struct {
    const char *list, *token;
    int has;
} lists[] = {
    {"close", "close", 1},
    {"Close", "close", 1},
    {"keep-alive, close", "close", 1},
    {" keep-alive ,\tclose\t", "close", 1},
    {"a,,close,", "close", 1},
    {"closed", "close", 0},
    {"clos", "close", 0},
    {"x-close", "close", 0},
    {"", "close", 0},
    {",", "close", 0},
    {"keep-alive", "keep-alive", 1},
    {"upgrade, keep-alive", "Upgrade", 1},
    {"close keep-alive", "close", 0},
};

START_TEST(list_has_finds_whole_elements_in_any_case)
{
    const char *s = lists[_i].list, *t = lists[_i].token;

    ck_assert_msg(http_list_has(s, strlen(s), t, strlen(t)) == lists[_i].has,
                  "\"%s\" has \"%s\": want %d", s, t, lists[_i].has);
}
END_TEST

START_TEST(reason_names_the_statuses_harbor_answers_with)
{
    ck_assert_str_eq(http_reason(200), "OK");
    ck_assert_str_eq(http_reason(400), "Bad Request");
    ck_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(http_reason(501), "Not Implemented");
    ck_assert_str_eq(http_reason(502), "Bad Gateway");
    ck_assert_str_eq(http_reason(504), "Gateway Timeout");
    ck_assert_str_eq(http_reason(299), "Unknown");
    ck_assert_str_eq(http_reason(-1), "Unknown");
}
END_TEST

Suite *
http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("smuggling");

    tcase_add_loop_test(tc, request_table_row, 0, COUNT(reqs));
    tcase_add_test(tc,
                   request_with_100_fields_is_parsed_and_101_refused_with_431);
    tcase_add_test(tc, content_length_of_2_to_the_63_minus_1_is_accepted);
    tcase_add_test(tc, chunk_size_below_2_to_the_60_is_taken);
    tcase_add_test(tc, body_errors_stick_and_done_bodies_take_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("request");
    tcase_add_test(tc, request_start_line_and_fields_point_into_the_buffer);
    tcase_add_loop_test(tc, request_flags_follow_connection_expect_and_upgrade,
                        0, COUNT(req_flags));
    tcase_add_loop_test(tc, head_end_finds_the_first_empty_line, 0,
                        COUNT(heads));
    suite_add_tcase(s, tc);

    tc = tcase_create("response");
    tcase_add_loop_test(tc, response_table_row, 0, COUNT(resps));
    suite_add_tcase(s, tc);

    tc = tcase_create("list");
    tcase_add_loop_test(tc, list_has_finds_whole_elements_in_any_case, 0,
                        COUNT(lists));
    tcase_add_test(tc, reason_names_the_statuses_harbor_answers_with);
    suite_add_tcase(s, tc);
    return s;
}
