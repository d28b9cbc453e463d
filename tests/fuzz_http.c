/*
 * fuzz_http.c - a libFuzzer target for common/http.c.  The first byte of
 * an input is a control byte (bit 0: the response answers a HEAD; the rest
 * shape the pieces a body is fed in); the others are bytes off the wire,
 * parsed as pipelined requests and as a response.  Every promise of http.h
 * that can be checked from outside is checked, and a broken one aborts, so
 * the fuzzer keeps the input: pointers inside the buffer, head_len and
 * nfields in bounds, a reason for every refusal, no body take beyond what
 * was given or what the body has left, and the same body decoded in one
 * piece and in small pieces.  make fuzz runs it; fuzz_replay.c runs the
 * seed corpus through it in every test-unit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define MESSAGES_MAX 4 /* pipelined requests followed in one input */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

/* Is p[0..n) inside buf[0..len)? */
static int
inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static int
is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* The head end as http.h words it: just past the first empty line. */
static size_t
head_end_reference(const char *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i == 0 || buf[i - 1] == '\n' ||
            (buf[i - 1] == '\r' && (i == 1 || buf[i - 2] == '\n')))
            return i + 1;
    }
    return 0;
}

/* What http_parse_*() promise about a head they accepted. */
static void
check_msg(const struct http_msg *m, const char *buf, size_t head_len)
{
    size_t i;

    CHECK(m->head_len == head_len);
    CHECK(m->nfields <= HTTP_FIELDS_MAX);
    CHECK(m->minor == 0 || m->minor == 1);
    CHECK(m->body == HTTP_BODY_NONE || m->body == HTTP_BODY_LENGTH ||
          m->body == HTTP_BODY_CHUNKED || m->body == HTTP_BODY_CLOSE);
    CHECK(m->body == HTTP_BODY_LENGTH || m->length == 0);
    CHECK(m->length <= 9223372036854775807ULL);
    CHECK(m->keep_alive == 0 || m->keep_alive == 1);
    for (i = 0; i < m->nfields; i++) {
        const struct http_field *f = &m->fields[i];

        CHECK(f->name_len > 0 && inside(f->name, f->name_len, buf, head_len));
        CHECK(inside(f->value, f->value_len, buf, head_len));
        CHECK(f->name[f->name_len] == ':');
        if (f->value_len > 0) {
            CHECK(!is_ws((unsigned char)f->value[0]));
            CHECK(!is_ws((unsigned char)f->value[f->value_len - 1]));
            CHECK(memchr(f->value, '\r', f->value_len) == NULL);
            CHECK(memchr(f->value, '\n', f->value_len) == NULL);
            CHECK(memchr(f->value, '\0', f->value_len) == NULL);
        }
        (void)http_list_has(f->value, f->value_len, "close", 5);
    }
}

/* The result of decoding one body. */
struct decoded {
    int rc;       /* 0: ended, 1: the bytes ran out, -1: malformed */
    size_t taken; /* every byte taken, framing included */
    size_t len;   /* data bytes, copied to data */
    char *data;
};

/*
 * The size of the next piece: from 1 byte (bits 1-3 of ctl all zero: a
 * byte at a time) to 1 << those bits, chosen by the input's own bytes so
 * that the fuzzer can steer where the pieces break.
 */
static size_t
piece_size(unsigned ctl, const char *p, size_t n, size_t k)
{
    unsigned shift = (ctl >> 1) & 7;

    return 1 + (unsigned char)p[(k * 7 + ctl) % n] % (1u << shift);
}

/*
 * Decode the body at p[0..n) as a reader would: take from what has
 * arrived, and when nothing more can be taken, let the next piece arrive.
 * Every call is checked against what it was given and what was left.
 */
static void
decode(const struct http_msg *m, const char *p, size_t n, unsigned ctl,
       int whole, struct decoded *d)
{
    struct http_body b;
    size_t avail = 0, pieces = 0, data;
    long r;

    d->rc = 1;
    d->taken = d->len = 0;
    http_body_init(&b, m);
    CHECK(b.kind == m->body);
    if (m->body == HTTP_BODY_NONE)
        CHECK(http_body_done(&b));
    while (!http_body_done(&b)) {
        unsigned long long left = b.left;
        size_t given;

        if (d->taken == avail) {
            size_t step;

            if (avail == n)
                return; /* the bytes ran out */
            step = whole ? SIZE_MAX : piece_size(ctl, p, n, pieces++);
            avail = n - avail < step ? n : avail + step;
        }
        given = avail - d->taken;
        r = http_body_take(&b, p + d->taken, given, &data);
        if (r < 0) {
            /* Malformed stays malformed. */
            CHECK(http_body_take(&b, p, n, &data) == -1);
            d->rc = -1;
            return;
        }
        CHECK(r > 0);              /* given bytes, not done: progress */
        CHECK((size_t)r <= given); /* never more than given */
        CHECK(data == 0 || data == (size_t)r); /* data or framing */
        if (b.kind == HTTP_BODY_CLOSE)
            CHECK(data == given);
        if (data > 0 && b.kind != HTTP_BODY_CLOSE) {
            /* Never more than the body, or the chunk, had left. */
            CHECK(data <= left && b.left == left - data);
        }
        memcpy(d->data + d->len, p + d->taken, data);
        d->len += data;
        d->taken += (size_t)r;
        CHECK(d->taken <= n);
    }
    d->rc = 0;
    /* A finished body takes nothing more. */
    CHECK(http_body_take(&b, p, n, &data) == 0 && data == 0);
}

/* Decode the body twice, whole and in pieces; both must agree. */
static int
check_body(const struct http_msg *m, const char *p, size_t n, unsigned ctl,
           size_t *taken)
{
    struct decoded one, some;

    one.data = malloc(n + 1);
    some.data = malloc(n + 1);
    CHECK(one.data != NULL && some.data != NULL);
    decode(m, p, n, ctl, 1, &one);
    decode(m, p, n, ctl, 0, &some);
    CHECK(one.rc == some.rc);
    if (one.rc >= 0) {
        CHECK(one.taken == some.taken && one.len == some.len);
        CHECK(memcmp(one.data, some.data, one.len) == 0);
        CHECK(one.len <= one.taken);
        if (m->body == HTTP_BODY_LENGTH && one.rc == 0)
            CHECK(one.len == m->length && one.taken == m->length);
        if (one.rc == 1)
            CHECK(one.taken == n);
    }
    *taken = one.taken;
    free(one.data);
    free(some.data);
    return one.rc;
}

/* Requests, one after another as a server reads them. */
static void
fuzz_requests(const char *buf, size_t len, unsigned ctl)
{
    int k;

    for (k = 0; k < MESSAGES_MAX; k++) {
        struct http_msg m;
        size_t skip, end, taken;
        int status;

        skip = http_skip_empty(buf, len);
        CHECK(skip <= len);
        CHECK(skip == len || (buf[skip] != '\r' && buf[skip] != '\n'));
        buf += skip;
        len -= skip;
        end = http_head_end(buf, len);
        CHECK(end == head_end_reference(buf, len));
        if (end == 0)
            return;
        CHECK(end <= len && buf[end - 1] == '\n');

        status = http_parse_request(buf, end, &m);
        CHECK(status == 0 || status == 400 || status == 431 || status == 501);
        CHECK(strcmp(http_reason(status == 0 ? 200 : status), "Unknown") != 0);
        if (status != 0) {
            CHECK(m.why != NULL);
            return;
        }
        check_msg(&m, buf, end);
        CHECK(m.method_len > 0 && inside(m.method, m.method_len, buf, end));
        CHECK(m.method == buf);
        CHECK(m.target_len > 0 && inside(m.target, m.target_len, buf, end));
        CHECK(m.body != HTTP_BODY_CLOSE);
        CHECK(m.method_len != 7 || memcmp(m.method, "CONNECT", 7) != 0);
        if (check_body(&m, buf + end, len - end, ctl, &taken) != 0)
            return;
        buf += end + taken;
        len -= end + taken;
    }
}

/* The same bytes as a response to a request, HEAD or not. */
static void
fuzz_response(const char *buf, size_t len, unsigned ctl)
{
    struct http_msg m;
    size_t end, taken;

    end = http_head_end(buf, len);
    if (end == 0)
        return;
    if (http_parse_response(buf, end, (int)(ctl & 1), &m) != 0) {
        CHECK(m.why != NULL);
        return;
    }
    check_msg(&m, buf, end);
    CHECK(m.status >= 100 && m.status <= 599);
    if ((ctl & 1) || m.status < 200 || m.status == 204 || m.status == 304)
        CHECK(m.body == HTTP_BODY_NONE);
    if (m.body == HTTP_BODY_CLOSE)
        CHECK(m.keep_alive == 0);
    (void)http_reason(m.status);
    (void)check_body(&m, buf + end, len - end, ctl, &taken);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data + 1;
    struct http_msg m;
    unsigned ctl;

    if (size == 0)
        return 0;
    ctl = data[0];
    fuzz_requests(buf, size - 1, ctl);
    fuzz_response(buf, size - 1, ctl);
    /*
     * The parsers accept a head only if it is exactly up to the first
     * empty line, whatever length they are handed.
     */
    if (http_parse_request(buf, size - 1, &m) == 0)
        CHECK(http_head_end(buf, size - 1) == size - 1);
    if (http_parse_response(buf, size - 1, 0, &m) == 0)
        CHECK(http_head_end(buf, size - 1) == size - 1);
    return 0;
}
