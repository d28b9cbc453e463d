/*
 * http.c - the strict HTTP/1.1 parser of http.h: heads (RFC 9112 §2-§6)
 * and a byte-wise state machine for chunked bodies (§7.1).
 *
 * Strict on purpose.  Request smuggling lives in the gap between two
 * parsers that read one message two ways, so every shape RFC 9112 calls
 * ambiguous - two lengths, a folded line, a coding we do not know - is
 * refused with a status rather than read the lenient way.  No allocation
 * and no I/O: every result points into the caller's buffer.
 */
#include <limits.h>
#include <string.h>

#include "http.h"

#define CHUNK_DIGITS_MAX 16           /* hex digits of one chunk size */
#define CHUNK_SIZE_LIMIT (1ULL << 60) /* a chunk size must be below it */
#define FRAMING_LINE_MAX 4096         /* one size line or trailer line */
#define TRAILERS_MAX     16384        /* the whole trailer section */
#define LENGTH_MAX       9223372036854775807ULL /* 2^63-1 */

/* Bytes ----------------------------------------------------------------- */

/* RFC 9110 §5.6.2: the bytes of a token (method, field name, coding). */
static int
is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* A byte a field value may hold: no control but HTAB, and no DEL. */
static int
is_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int
is_token(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return 0;
    return n > 0;
}

static int
lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Is s[0..n) the NUL-terminated word, in any case? */
static int
eq_nocase(const char *s, size_t n, const char *word)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (word[i] == '\0' || lower((unsigned char)s[i]) != lower(word[i]))
            return 0;
    return word[n] == '\0';
}

/* Lines of a head ------------------------------------------------------- */

size_t
http_head_end(const char *buf, size_t len)
{
    size_t i, start = 0;

    for (i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        /* An empty line, "\n" or "\r\n", ends the head. */
        if (i == start || (i == start + 1 && buf[start] == '\r'))
            return i + 1;
        start = i + 1;
    }
    return 0;
}

size_t
http_skip_empty(const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
        i++;
    return i;
}

/*
 * The line at buf[*pos..len) without its CRLF or LF, and *pos moved past
 * it.  -1 for a CR that is not just before an LF: RFC 9112 §2.2 lets a
 * recipient reject it, and a parser that took it for a line end would see
 * a field another one does not.
 */
static int
head_line(const char *buf, size_t len, size_t *pos, const char **line,
          size_t *n, struct http_msg *m)
{
    size_t i;

    for (i = *pos; i < len; i++) {
        if (buf[i] == '\r' && (i + 1 == len || buf[i + 1] != '\n')) {
            m->why = "bare CR";
            return -1;
        }
        if (buf[i] == '\r' || buf[i] == '\n') {
            *line = buf + *pos;
            *n = i - *pos;
            *pos = i + (buf[i] == '\r' ? 2 : 1);
            return 0;
        }
    }
    m->why = "head does not end in an empty line";
    return -1;
}

/*
 * One field line, name ":" OWS value OWS (RFC 9112 §5).  The name must
 * touch the colon: "Transfer-Encoding : chunked" is a field some parsers
 * drop and others read, so it is refused (§5.1).
 */
static int
parse_field(const char *line, size_t n, struct http_field *f,
            struct http_msg *m)
{
    size_t i = 0, end;

    if (is_ws((unsigned char)line[0])) {
        m->why = "obs-fold"; /* a continuation line, §5.2 */
        return -1;
    }
    while (i < n && is_tchar((unsigned char)line[i]))
        i++;
    if (i == n) {
        m->why = "field line without a colon";
        return -1;
    }
    if (line[i] != ':') {
        m->why = is_ws((unsigned char)line[i]) ? "whitespace before colon"
                                               : "bad field name";
        return -1;
    }
    if (i == 0) {
        m->why = "empty field name";
        return -1;
    }
    f->name = line;
    f->name_len = i;
    for (end = i + 1; end < n; end++) {
        if (!is_value_byte((unsigned char)line[end])) {
            m->why = "control byte in a field value";
            return -1;
        }
    }
    for (i++; i < n && is_ws((unsigned char)line[i]); i++)
        ;
    while (end > i && is_ws((unsigned char)line[end - 1]))
        end--;
    f->value = line + i;
    f->value_len = end - i;
    return 0;
}

/* The field lines from pos up to and including the empty line. */
static int
parse_fields(const char *buf, size_t len, size_t pos, struct http_msg *m)
{
    const char *line;
    size_t n;

    for (;;) {
        if (head_line(buf, len, &pos, &line, &n, m) < 0)
            return 400;
        if (n == 0)
            break;
        if (m->nfields == HTTP_FIELDS_MAX) {
            m->why = "too many field lines";
            return 431;
        }
        if (parse_field(line, n, &m->fields[m->nfields], m) < 0)
            return 400;
        m->nfields++;
    }
    if (pos != len) {
        m->why = "bytes after the empty line";
        return 400;
    }
    m->head_len = len;
    return 0;
}

/* What the fields say --------------------------------------------------- */

enum te_result { TE_NONE, TE_CHUNKED, TE_OTHER, TE_BAD };

/* What the fields that frame and keep a connection say, in one pass. */
struct framing {
    size_t cls;            /* Content-Length fields */
    unsigned long long cl; /* their one value */
    enum te_result te;     /* the Transfer-Encoding list */
    size_t codings;        /* how many codings it lists */
    size_t hosts;          /* Host fields */
    int close, alive, conn_upgrade, upgrade, expect;
};

/* A Content-Length value: 1*DIGIT, and no more than 2^63-1. */
static int
parse_length(const struct http_field *f, unsigned long long *out)
{
    unsigned long long v = 0;
    size_t i;

    if (f->value_len == 0)
        return -1;
    for (i = 0; i < f->value_len; i++) {
        unsigned d = (unsigned)(f->value[i] - '0');
        if (d > 9 || v > (LENGTH_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/*
 * Read every Transfer-Encoding field as one list (§6.1: several fields
 * are one list joined by commas).  Chunked must be the last coding, once;
 * otherwise the end of the body is a matter of opinion.
 */
static enum te_result
parse_codings(struct http_msg *m, size_t *ncodings)
{
    int chunked = 0;
    size_t i, n = 0;

    for (i = 0; i < m->nfields; i++) {
        const struct http_field *f = &m->fields[i];
        const char *s = f->value, *end = f->value + f->value_len;

        if (!http_field_is(f, "Transfer-Encoding"))
            continue;
        for (;;) {
            const char *e = memchr(s, ',', (size_t)(end - s));
            const char *a = s, *b = e != NULL ? e : end;

            while (a < b && is_ws((unsigned char)*a))
                a++;
            while (b > a && is_ws((unsigned char)b[-1]))
                b--;
            if (!is_token(a, (size_t)(b - a))) {
                m->why = a == b ? "empty transfer coding"
                                : "transfer coding is not a token";
                return TE_BAD;
            }
            if (chunked) {
                m->why = "chunked is not the last transfer coding";
                return TE_BAD;
            }
            chunked = eq_nocase(a, (size_t)(b - a), "chunked");
            n++;
            if (e == NULL)
                break;
            s = e + 1;
        }
    }
    *ncodings = n;
    if (n == 0)
        return TE_NONE;
    return chunked ? TE_CHUNKED : TE_OTHER;
}

static int
read_framing(struct http_msg *m, struct framing *fr)
{
    size_t i;

    memset(fr, 0, sizeof(*fr));
    for (i = 0; i < m->nfields; i++) {
        const struct http_field *f = &m->fields[i];
        unsigned long long v;

        if (http_field_is(f, "Content-Length")) {
            if (parse_length(f, &v) < 0) {
                m->why = "bad Content-Length";
                return -1;
            }
            if (fr->cls > 0 && v != fr->cl) {
                m->why = "two Content-Length values";
                return -1;
            }
            fr->cl = v;
            fr->cls++;
        } else if (http_field_is(f, "Host")) {
            fr->hosts++;
        } else if (http_field_is(f, "Connection")) {
            fr->close |= http_list_has(f->value, f->value_len, "close", 5);
            fr->alive |=
                http_list_has(f->value, f->value_len, "keep-alive", 10);
            fr->conn_upgrade |=
                http_list_has(f->value, f->value_len, "upgrade", 7);
        } else if (http_field_is(f, "Upgrade")) {
            fr->upgrade = 1;
        } else if (http_field_is(f, "Expect")) {
            fr->expect |= eq_nocase(f->value, f->value_len, "100-continue");
        }
    }
    fr->te = parse_codings(m, &fr->codings);
    return 0;
}

/* The flags both kinds of message share (rules 8 and 10). */
static void
set_flags(struct http_msg *m, const struct framing *fr)
{
    m->keep_alive = m->minor == 1 ? !fr->close : fr->alive && !fr->close;
    m->upgrade = fr->conn_upgrade && fr->upgrade;
}

/* Requests -------------------------------------------------------------- */

/* "HTTP/1.0" or "HTTP/1.1", exactly: the minor version, or -1. */
static int
parse_version(const char *s, size_t n)
{
    if (n != 8 || memcmp(s, "HTTP/1.", 7) != 0)
        return -1;
    return s[7] == '0' ? 0 : s[7] == '1' ? 1 : -1;
}

/* method SP request-target SP HTTP-version, one SP each (§3). */
static int
parse_request_line(const char *line, size_t n, struct http_msg *m)
{
    size_t i = 0, t;

    while (i < n && is_tchar((unsigned char)line[i]))
        i++;
    if (i == 0 || i == n || line[i] != ' ') {
        m->why = "bad method";
        return -1;
    }
    m->method = line;
    m->method_len = i;
    for (t = ++i; i < n && line[i] > 0x20 && line[i] < 0x7f; i++)
        ;
    if (i == t || i == n || line[i] != ' ') {
        m->why = "bad request target";
        return -1;
    }
    m->target = line + t;
    m->target_len = i - t;
    m->minor = parse_version(line + i + 1, n - i - 1);
    if (m->minor < 0) {
        m->why = "bad HTTP version";
        return -1;
    }
    return 0;
}

/* The four forms of request-target (§3.2); 0 or the status. */
static int
check_target(struct http_msg *m)
{
    const char *t = m->target;
    size_t n = m->target_len;

    if (m->method_len == 7 && memcmp(m->method, "CONNECT", 7) == 0) {
        m->why = "CONNECT";
        return 501;
    }
    if (t[0] == '/')
        return 0;
    if (n == 1 && t[0] == '*') {
        if (m->method_len == 7 && memcmp(m->method, "OPTIONS", 7) == 0)
            return 0;
        m->why = "asterisk-form without OPTIONS";
        return 400;
    }
    /* absolute-form, as a proxy may be sent: a scheme and something. */
    if ((n > 7 && eq_nocase(t, 7, "http://")) ||
        (n > 8 && eq_nocase(t, 8, "https://")))
        return 0;
    m->why = "bad request target";
    return 400;
}

int
http_parse_request(const char *buf, size_t head_len, struct http_msg *m)
{
    struct framing fr;
    const char *line;
    size_t pos = 0, n;
    int status;

    memset(m, 0, sizeof(*m));
    if (head_line(buf, head_len, &pos, &line, &n, m) < 0 ||
        parse_request_line(line, n, m) < 0)
        return 400;
    if ((status = parse_fields(buf, head_len, pos, m)) != 0)
        return status;
    if ((status = check_target(m)) != 0)
        return status;
    if (read_framing(m, &fr) < 0)
        return 400;
    if (fr.hosts > 1) {
        m->why = "two Host fields";
        return 400;
    }
    if (fr.te != TE_NONE) {
        /* Checked in this order so each refusal names its first cause. */
        if (m->minor == 0) {
            m->why = "Transfer-Encoding in HTTP/1.0";
            return 400;
        }
        if (fr.cls > 0) {
            m->why = "Transfer-Encoding with Content-Length";
            return 400;
        }
        if (fr.te == TE_BAD)
            return 400;
        if (fr.te == TE_OTHER || fr.codings > 1) {
            m->why = "transfer coding other than chunked";
            return 501;
        }
        m->body = HTTP_BODY_CHUNKED;
    } else if (fr.cls > 0) {
        m->body = HTTP_BODY_LENGTH;
        m->length = fr.cl;
    }
    set_flags(m, &fr);
    m->expect_continue = m->minor == 1 && fr.expect;
    return 0;
}

/* Responses ------------------------------------------------------------- */

/* HTTP-version SP 3DIGIT [ SP reason-phrase ] (§4). */
static int
parse_status_line(const char *line, size_t n, struct http_msg *m)
{
    size_t i;

    m->minor = n >= 8 ? parse_version(line, 8) : -1;
    if (m->minor < 0 || n < 12 || line[8] != ' ') {
        m->why = "bad status line";
        return -1;
    }
    for (i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9') {
            m->why = "bad status code";
            return -1;
        }
        m->status = m->status * 10 + (line[i] - '0');
    }
    if (m->status < 100 || m->status > 599 || (n > 12 && line[12] != ' ')) {
        m->why = "bad status code";
        return -1;
    }
    for (i = 13; i < n; i++) {
        if (!is_value_byte((unsigned char)line[i])) {
            m->why = "control byte in the reason phrase";
            return -1;
        }
    }
    return 0;
}

int
http_parse_response(const char *buf, size_t head_len, int head_request,
                    struct http_msg *m)
{
    struct framing fr;
    const char *line;
    size_t pos = 0, n;

    memset(m, 0, sizeof(*m));
    if (head_line(buf, head_len, &pos, &line, &n, m) < 0 ||
        parse_status_line(line, n, m) < 0 ||
        parse_fields(buf, head_len, pos, m) != 0 || read_framing(m, &fr) < 0)
        return -1;
    /* These have no body whatever their fields say (RFC 9112 §6.3). */
    if (head_request || m->status < 200 || m->status == 204 ||
        m->status == 304) {
        m->body = HTTP_BODY_NONE;
    } else if (fr.te != TE_NONE) {
        if (fr.cls > 0) {
            m->why = "Transfer-Encoding with Content-Length";
            return -1;
        }
        if (m->minor == 0) {
            m->why = "Transfer-Encoding in HTTP/1.0";
            return -1;
        }
        if (fr.te == TE_BAD)
            return -1;
        /* Codings without chunked end where the connection does. */
        m->body = fr.te == TE_CHUNKED ? HTTP_BODY_CHUNKED : HTTP_BODY_CLOSE;
    } else if (fr.cls > 0) {
        m->body = HTTP_BODY_LENGTH;
        m->length = fr.cl;
    } else {
        m->body = HTTP_BODY_CLOSE;
    }
    set_flags(m, &fr);
    if (m->body == HTTP_BODY_CLOSE)
        m->keep_alive = 0;
    return 0;
}

/* Fields and lists ------------------------------------------------------ */

int
http_field_is(const struct http_field *f, const char *name)
{
    return eq_nocase(f->name, f->name_len, name);
}

int
http_list_has(const char *s, size_t len, const char *token, size_t token_len)
{
    const char *end = s + len;

    while (s <= end) {
        const char *e = memchr(s, ',', (size_t)(end - s));
        const char *a = s, *b = e != NULL ? e : end;

        while (a < b && is_ws((unsigned char)*a))
            a++;
        while (b > a && is_ws((unsigned char)b[-1]))
            b--;
        if ((size_t)(b - a) == token_len) {
            size_t i;

            for (i = 0; i < token_len; i++)
                if (lower((unsigned char)a[i]) !=
                    lower((unsigned char)token[i]))
                    break;
            if (i == token_len)
                return 1;
        }
        if (e == NULL)
            break;
        s = e + 1;
    }
    return 0;
}

/* Bodies ---------------------------------------------------------------- */

/*
 * Where the chunked machine is (RFC 9112 §7.1):
 *
 *   chunk-size [ chunk-ext ] CRLF chunk-data CRLF ... 0 CRLF trailers CRLF
 *
 * One state per place a byte can be.  In the trailers, b->left counts the
 * bytes the section may still take, as no chunk is left to count.
 */
enum chunk_state {
    CH_SIZE,        /* hex digits of the chunk size */
    CH_EXT_END,     /* just after the size or an extension */
    CH_EXT_WS,      /* whitespace after it: only ";" may follow */
    CH_EXT_NAME0,   /* after ";": whitespace, then the name */
    CH_EXT_NAME,    /* in the name */
    CH_EXT_NAME_WS, /* whitespace after the name: "=" or ";" follows */
    CH_EXT_VALUE0,  /* after "=": whitespace, then the value */
    CH_EXT_TOKEN,   /* a token value */
    CH_EXT_QUOTED,  /* a quoted-string value */
    CH_EXT_ESCAPE,  /* just after a backslash in it */
    CH_SIZE_LF,     /* the CR of the size line seen */
    CH_DATA,        /* chunk data: b->left bytes of it */
    CH_DATA_CR,     /* the CRLF after the data */
    CH_DATA_LF,
    CH_TRAILER, /* start of a trailer line, or of the final CRLF */
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_END_LF, /* the final LF */
    CH_ERROR   /* malformed: every later call fails too */
};

void
http_body_init(struct http_body *b, const struct http_msg *m)
{
    memset(b, 0, sizeof(*b));
    b->kind = m->body;
    b->state = CH_SIZE;
    if (m->body == HTTP_BODY_LENGTH)
        b->left = m->length;
    b->done = m->body == HTTP_BODY_NONE ||
              (m->body == HTTP_BODY_LENGTH && m->length == 0);
}

static int
hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* What may follow a size or a whole extension: ";", CR, or whitespace. */
static int
ext_end(unsigned char c)
{
    return c == ';'    ? CH_EXT_NAME0
           : c == '\r' ? CH_SIZE_LF
           : is_ws(c)  ? CH_EXT_WS
                       : CH_ERROR;
}

/* The state after one framing byte c, or CH_ERROR. */
static int
chunk_step(struct http_body *b, unsigned char c)
{
    int h;

    switch (b->state) {
    case CH_SIZE:
        if ((h = hex_value(c)) < 0)
            return b->digits == 0 ? CH_ERROR : ext_end(c);
        /* Below 2^60 before the shift, so the shift cannot overflow. */
        b->left = b->left * 16 + (unsigned)h;
        if (++b->digits > CHUNK_DIGITS_MAX || b->left >= CHUNK_SIZE_LIMIT)
            return CH_ERROR;
        return CH_SIZE;
    case CH_EXT_END:
        return ext_end(c);
    case CH_EXT_WS:
        return is_ws(c) ? CH_EXT_WS : c == ';' ? CH_EXT_NAME0 : CH_ERROR;
    case CH_EXT_NAME0:
        return is_ws(c) ? CH_EXT_NAME0 : is_tchar(c) ? CH_EXT_NAME : CH_ERROR;
    case CH_EXT_NAME:
        if (is_tchar(c))
            return CH_EXT_NAME;
        if (c == '=')
            return CH_EXT_VALUE0;
        return is_ws(c) ? CH_EXT_NAME_WS : ext_end(c);
    case CH_EXT_NAME_WS:
        return is_ws(c)   ? CH_EXT_NAME_WS
               : c == '=' ? CH_EXT_VALUE0
               : c == ';' ? CH_EXT_NAME0
                          : CH_ERROR;
    case CH_EXT_VALUE0:
        return is_ws(c)      ? CH_EXT_VALUE0
               : c == '"'    ? CH_EXT_QUOTED
               : is_tchar(c) ? CH_EXT_TOKEN
                             : CH_ERROR;
    case CH_EXT_TOKEN:
        return is_tchar(c) ? CH_EXT_TOKEN : ext_end(c);
    case CH_EXT_QUOTED:
        /* qdtext is any value byte but '"' and '\' (RFC 9110 §5.6.4). */
        return c == '"'           ? CH_EXT_END
               : c == '\\'        ? CH_EXT_ESCAPE
               : is_value_byte(c) ? CH_EXT_QUOTED
                                  : CH_ERROR;
    case CH_EXT_ESCAPE:
        return is_value_byte(c) ? CH_EXT_QUOTED : CH_ERROR;
    case CH_SIZE_LF:
        if (c != '\n')
            return CH_ERROR;
        if (b->left > 0)
            return CH_DATA;
        b->left = TRAILERS_MAX;
        return CH_TRAILER;
    case CH_DATA_CR:
        return c == '\r' ? CH_DATA_LF : CH_ERROR;
    case CH_DATA_LF:
        return c == '\n' ? CH_SIZE : CH_ERROR;
    case CH_TRAILER:
        /* A trailer line is a field line (rule 4), without obs-fold. */
        return c == '\r' ? CH_END_LF : is_tchar(c) ? CH_TR_NAME : CH_ERROR;
    case CH_TR_NAME:
        return is_tchar(c) ? CH_TR_NAME : c == ':' ? CH_TR_VALUE : CH_ERROR;
    case CH_TR_VALUE:
        return c == '\r' ? CH_TR_LF : is_value_byte(c) ? CH_TR_VALUE : CH_ERROR;
    case CH_TR_LF:
        return c == '\n' ? CH_TRAILER : CH_ERROR;
    case CH_END_LF:
        if (c != '\n')
            return CH_ERROR;
        b->done = 1;
        return CH_END_LF;
    }
    return CH_ERROR;
}

/* A run of framing bytes, up to the next chunk's data or the end. */
static long
chunk_framing(struct http_body *b, const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n && b->state != CH_DATA && !b->done; i++) {
        int was = b->state;

        b->state = chunk_step(b, (unsigned char)p[i]);
        if (b->state == CH_ERROR)
            return -1;
        if (was >= CH_TRAILER && b->left-- == 0) {
            b->state = CH_ERROR;
            return -1;
        }
        b->line = p[i] == '\n' ? 0 : b->line + 1;
        if (b->line > FRAMING_LINE_MAX) {
            b->state = CH_ERROR;
            return -1;
        }
        if (b->state == CH_SIZE && was == CH_DATA_LF) {
            b->digits = 0;
            b->left = 0;
        }
    }
    return (long)i;
}

long
http_body_take(struct http_body *b, const char *p, size_t n, size_t *data)
{
    size_t take;

    *data = 0;
    if (b->done || n == 0)
        return 0;
    if (n > LONG_MAX)
        n = LONG_MAX; /* what the return type can count */
    switch (b->kind) {
    case HTTP_BODY_NONE:
        return 0;
    case HTTP_BODY_CLOSE:
        *data = n;
        return (long)n;
    case HTTP_BODY_LENGTH:
        take = b->left < n ? (size_t)b->left : n;
        b->left -= take;
        b->done = b->left == 0;
        *data = take;
        return (long)take;
    case HTTP_BODY_CHUNKED:
        break;
    }
    if (b->state == CH_ERROR)
        return -1;
    if (b->state != CH_DATA)
        return chunk_framing(b, p, n);
    take = b->left < n ? (size_t)b->left : n;
    b->left -= take;
    if (b->left == 0)
        b->state = CH_DATA_CR;
    *data = take;
    return (long)take;
}

int
http_body_done(const struct http_body *b)
{
    return b->done;
}

/* Reason phrases -------------------------------------------------------- */

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {417, "Expectation Failed"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *
http_reason(int status)
{
    size_t i;

    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Unknown";
}
