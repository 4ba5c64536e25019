/* Load file rows; see ctl_input.h.
 *
 * The file is read one physical line at a time (ended by LF, CRLF or, in CSV, a lone CR)
 * and each line is fed to libcsv. A row starts on the first non-blank line read while no
 * row is open, which is what gives a CSV row its line number: libcsv itself knows no
 * lines. libcsv skips blank lines too, so the two agree on where rows are. */
#include "ctl_input.h"

#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "pw_util.h"

#define BLOCK 65536
/* libcsv sees at most row_max bytes of a row and the line break after them, so a row has
 * no more cells than that plus one, and no more bytes in its cells: bounds that only make
 * the promise of ctl_input.h (memory bounded by the longest row) explicit. */
#define ROW_SLACK 4

typedef struct cell {
	size_t off, len; /**< in cells_text */
} cell;

struct ctl_input {
	FILE *f;
	const char *path;
	ctl_input_format fmt;
	size_t row_max;
	char *salt;
	/* reading */
	unsigned char blk[BLOCK];
	size_t blk_pos, blk_len;
	bool eof;
	uint64_t size, consumed;
	unsigned long lineno; /**< physical lines read so far */
	char *line;           /**< the current line's content, at most row_max bytes */
	size_t line_len;
	bool line_long;  /**< the line was longer than row_max: cut */
	char term[2];    /**< the line break that ended it */
	size_t term_len; /**< 0 at the end of the file */
	/* CSV */
	struct csv_parser csv;
	bool csv_ready;
	bool row_open; /**< a row started and has not ended */
	bool row_done; /**< libcsv reported the end of the row */
	bool nomem;    /**< a callback could not allocate */
	unsigned long row_line;
	char *text; /**< the open row's raw text, at most row_max bytes */
	size_t text_len;
	pw_util_buf cells_text; /**< the open row's cells, unquoted, back to back */
	cell *cells;
	size_t ncells, cells_cap;
	char **header; /**< column names; NULL until the header is read */
	size_t nheader;
	char *header_text;
	size_t header_text_len;
};

/* ---- physical lines ---- */

/* The next byte, or -1 at the end of the file, or -2 on a read error. */
static int next_byte(ctl_input *in)
{
	if (in->blk_pos == in->blk_len) {
		if (in->eof)
			return -1;
		in->blk_len = fread(in->blk, 1, sizeof(in->blk), in->f);
		in->blk_pos = 0;
		if (in->blk_len < sizeof(in->blk)) {
			if (ferror(in->f))
				return -2;
			in->eof = true;
		}
		if (in->blk_len == 0)
			return -1;
	}
	in->consumed++;
	return in->blk[in->blk_pos++];
}

static int peek_byte(ctl_input *in)
{
	int c = next_byte(in);

	if (c >= 0) {
		in->blk_pos--; /* next_byte left it in the block */
		in->consumed--;
	}
	return c;
}

/* Reads one physical line into in->line: 1, 0 at the end of the file, -1 on an error. */
static int read_line(ctl_input *in, FILE *err)
{
	bool any = false;

	in->line_len = 0;
	in->line_long = false;
	in->term_len = 0;
	for (;;) {
		int c = next_byte(in);
		if (c == -2)
			goto read_error;
		if (c == -1)
			break;
		any = true;
		if (c == '\n') {
			in->term[0] = '\n';
			in->term_len = 1;
			break;
		}
		if (c == '\r') {
			int n = peek_byte(in);
			if (n == -2)
				goto read_error;
			if (n == '\n') {
				(void)next_byte(in);
				memcpy(in->term, "\r\n", 2);
				in->term_len = 2;
				break;
			}
			/* A lone CR ends a CSV row for libcsv, so it ends a line here too;
			 * in JSON Lines it is only whitespace. */
			if (in->fmt == CTL_INPUT_CSV) {
				in->term[0] = '\r';
				in->term_len = 1;
				break;
			}
		}
		if (in->line_len < in->row_max)
			in->line[in->line_len++] = (char)c;
		else
			in->line_long = true;
	}
	if (!any)
		return 0;
	in->lineno++;
	return 1;
read_error:
	fprintf(err, "%s: read error: %s\n", in->path, strerror(errno ? errno : EIO));
	return -1;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/* ---- hashing ---- */

static int row_hash(const ctl_input *in, const char *text, size_t len, uint64_t *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -1;

	/* NUL separators: no shift of bytes between salt, header and row gives the same
	 * input. */
	if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, in->salt, strlen(in->salt) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, in->header_text ? in->header_text : "",
	                     in->header_text ? in->header_text_len : 0) == 1 &&
	    EVP_DigestUpdate(ctx, "", 1) == 1 && EVP_DigestUpdate(ctx, text, len) == 1 &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 8) {
		uint64_t h = 0;
		for (int i = 0; i < 8; i++)
			h = (h << 8) | md[i];
		*out = h;
		rc = 0;
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* ---- CSV ---- */

static const char *cell_text(const ctl_input *in, size_t i)
{
	return in->cells_text.p + in->cells[i].off;
}

static void on_field(void *s, size_t len, void *data)
{
	ctl_input *in = data;
	void *cells = in->cells;

	if (in->nomem)
		return;
	if (s == NULL)
		len = 0;
	/* An empty cell is appended too, so cells_text.p is never NULL once a cell exists. */
	if (pw_util_grow(&cells, &in->cells_cap, in->ncells + 1, sizeof(*in->cells),
	                 in->row_max + ROW_SLACK) != PW_OK) {
		in->nomem = true;
		return;
	}
	in->cells = cells;
	in->cells[in->ncells].off = in->cells_text.len;
	in->cells[in->ncells].len = len;
	if (pw_util_buf_append(&in->cells_text, s, len) != PW_OK) {
		in->nomem = true;
		return;
	}
	in->ncells++;
}

static void on_row(int c, void *data)
{
	ctl_input *in = data;

	(void)c;
	in->row_done = true;
}

static int csv_reset(ctl_input *in)
{
	if (in->csv_ready)
		csv_free(&in->csv);
	in->csv_ready = csv_init(&in->csv, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL) == 0;
	return in->csv_ready ? 0 : -1;
}

static void row_start(ctl_input *in)
{
	in->row_open = true;
	in->row_done = false;
	in->row_line = in->lineno;
	in->text_len = 0;
	in->ncells = 0;
	pw_util_buf_reset(&in->cells_text);
}

/* Ends the open row and points row at its text. */
static void row_close(ctl_input *in, ctl_input_row *row)
{
	in->row_open = false;
	row->line = in->row_line;
	row->text = in->text;
	row->text_len = in->text_len;
}

/* Ends a row that went wrong and starts the parser afresh on the next line: an unclosed
 * quote costs the rows it swallowed, not the rest of the file. */
static pw_status row_restart(ctl_input *in, ctl_input_row *row)
{
	if (csv_reset(in) != 0)
		return PW_E_NOMEM;
	row_close(in, row);
	return PW_OK;
}

static bool append_text(ctl_input *in, const char *s, size_t n)
{
	if (in->text_len + n > in->row_max)
		return false;
	memcpy(in->text + in->text_len, s, n);
	in->text_len += n;
	return true;
}

static void unparsable(ctl_input_row *row, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void unparsable(ctl_input_row *row, const char *fmt, ...)
{
	va_list ap;

	row->payload = NULL;
	va_start(ap, fmt);
	vsnprintf(row->why, sizeof(row->why), fmt, ap);
	va_end(ap);
}

/* The header row's cells become the column names. 0, or -1 after a line on err. */
static int take_header(ctl_input *in, FILE *err)
{
	in->header = calloc(in->ncells ? in->ncells : 1, sizeof(*in->header));
	in->header_text = malloc(in->text_len + 1);
	if (in->header == NULL || in->header_text == NULL) {
		fprintf(err, "%s: out of memory\n", in->path);
		return -1;
	}
	memcpy(in->header_text, in->text, in->text_len);
	in->header_text_len = in->text_len;
	for (size_t i = 0; i < in->ncells; i++) {
		size_t len = in->cells[i].len;
		json_t *probe = json_stringn(cell_text(in, i), len);
		json_decref(probe);
		if (len == 0 || probe == NULL || memchr(cell_text(in, i), '\0', len)) {
			fprintf(err, "%s:%lu: column %zu of the header is %s\n", in->path,
			        in->row_line, i + 1, len == 0 ? "empty" : "not valid UTF-8");
			return -1;
		}
		in->header[i] = strndup(cell_text(in, i), len);
		in->nheader = i + 1;
		if (in->header[i] == NULL) {
			fprintf(err, "%s: out of memory\n", in->path);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(in->header[j], in->header[i]) == 0) {
				fprintf(err, "%s:%lu: column '%s' appears twice in the header\n",
				        in->path, in->row_line, in->header[i]);
				return -1;
			}
	}
	return 0;
}

/* The finished row's cells as a payload; an empty cell leaves its field out. */
static void csv_payload(ctl_input *in, ctl_input_row *row)
{
	json_t *p;

	if (in->ncells != in->nheader) {
		unparsable(row, "the row has %zu cells, the header has %zu", in->ncells,
		           in->nheader);
		return;
	}
	p = json_object();
	if (p == NULL) {
		unparsable(row, "out of memory");
		return;
	}
	for (size_t i = 0; i < in->ncells; i++) {
		if (in->cells[i].len == 0)
			continue;
		/* json_stringn refuses invalid UTF-8, which the worker could not take either. */
		json_t *v = json_stringn(cell_text(in, i), in->cells[i].len);
		if (v == NULL) {
			json_decref(p);
			unparsable(row, "column '%s' is not valid UTF-8", in->header[i]);
			return;
		}
		if (json_object_set_new(p, in->header[i], v) != 0) {
			json_decref(p);
			unparsable(row, "out of memory");
			return;
		}
	}
	row->payload = p;
}

/* What one line did to the open row. */
typedef enum feed {
	FEED_MORE,      /**< a quoted cell goes on to the next line */
	FEED_ROW,       /**< the row ended */
	FEED_TOO_LONG,  /**< the row's text would pass row_max */
	FEED_MALFORMED, /**< libcsv refused the quoting */
} feed;

/* Adds the line just read to the open row's text and gives it, with its line break, to
 * libcsv. */
static feed csv_feed(ctl_input *in)
{
	if (in->line_long || !append_text(in, in->line, in->line_len))
		return FEED_TOO_LONG;
	if (csv_parse(&in->csv, in->line, in->line_len, on_field, on_row, in) < in->line_len)
		return FEED_MALFORMED;
	if (in->term_len > 0 &&
	    csv_parse(&in->csv, in->term, in->term_len, on_field, on_row, in) < in->term_len)
		return FEED_MALFORMED;
	if (in->row_done)
		return FEED_ROW;
	/* A quoted cell goes on: its line break is part of the row's text. */
	if (!append_text(in, in->term, in->term_len))
		return FEED_TOO_LONG;
	return FEED_MORE;
}

/* The file ended inside a row (no final line break, or a quote still open): csv_fini ends
 * the row, or finds the quote open. PW_OK with row filled, or PW_E_NOMEM. */
static pw_status csv_last_row(ctl_input *in, ctl_input_row *row)
{
	int fin = csv_fini(&in->csv, on_field, on_row, in);

	if (row_restart(in, row) != PW_OK)
		return PW_E_NOMEM;
	if (fin != 0 || !in->row_done)
		unparsable(row, "a quoted cell is still open at the end of the file");
	else if (in->nomem)
		return PW_E_NOMEM;
	else if (in->header != NULL)
		csv_payload(in, row);
	return PW_OK;
}

/* Reads on until a row ends and fills *row (the header too: the caller chooses), or sets
 * *end at the end of the file. PW_OK, or a failure after a line on err. */
static pw_status csv_next(ctl_input *in, ctl_input_row *row, bool *end, FILE *err)
{
	for (;;) {
		int r = read_line(in, err);
		if (r < 0)
			return PW_E_INTERNAL;
		if (r == 0 && !in->row_open) {
			*end = true;
			return PW_OK;
		}
		if (r == 0) {
			if (csv_last_row(in, row) != PW_OK)
				goto nomem;
			return PW_OK;
		}
		if (!in->row_open) {
			if (blank(in->line, in->line_len))
				continue;
			row_start(in);
		}
		feed f = csv_feed(in);
		if (in->nomem)
			goto nomem;
		if (f == FEED_MORE)
			continue;
		if (f == FEED_ROW) {
			row_close(in, row);
			if (in->header != NULL)
				csv_payload(in, row);
			return PW_OK;
		}
		if (row_restart(in, row) != PW_OK)
			goto nomem;
		if (f == FEED_TOO_LONG)
			unparsable(row, "the row is longer than %zu bytes (an unclosed quote?)",
			           in->row_max);
		else
			unparsable(row,
			           "malformed quoting: a quote inside an unquoted cell, or text "
			           "after a closing quote");
		return PW_OK;
	}
nomem:
	fprintf(err, "%s: out of memory\n", in->path);
	return PW_E_NOMEM;
}

/* ---- JSON Lines ---- */

static pw_status jsonl_next(ctl_input *in, ctl_input_row *row, bool *end, FILE *err)
{
	json_error_t jerr;

	for (;;) {
		int r = read_line(in, err);
		if (r < 0)
			return PW_E_INTERNAL;
		if (r == 0) {
			*end = true;
			return PW_OK;
		}
		if (blank(in->line, in->line_len) && !in->line_long)
			continue;
		row->line = in->lineno;
		row->text = in->line;
		row->text_len = in->line_len;
		if (in->line_long) {
			unparsable(row, "the line is longer than %zu bytes", in->row_max);
			return PW_OK;
		}
		json_t *v = json_loadb(in->line, in->line_len, JSON_REJECT_DUPLICATES, &jerr);
		if (json_is_object(v)) {
			row->payload = v;
			return PW_OK;
		}
		if (v == NULL)
			unparsable(row, "not JSON: %s", jerr.text);
		else
			unparsable(row, "JSON, but not an object");
		json_decref(v);
		return PW_OK;
	}
}

/* ---- the module ---- */

pw_status ctl_input_next(ctl_input *in, ctl_input_row *row, bool *end, FILE *err)
{
	pw_status st;

	memset(row, 0, sizeof(*row));
	*end = false;
	st = in->fmt == CTL_INPUT_CSV ? csv_next(in, row, end, err) : jsonl_next(in, row, end, err);
	if (st == PW_OK && !*end && row_hash(in, row->text, row->text_len, &row->hash) != 0) {
		json_decref(row->payload);
		row->payload = NULL;
		fprintf(err, "%s: cannot hash a row (OpenSSL)\n", in->path);
		return PW_E_INTERNAL;
	}
	return st;
}

/* Reads the header row into in->header. 0, or -1 after a line on err. */
static int read_header(ctl_input *in, FILE *err)
{
	ctl_input_row header;
	bool end = false;

	memset(&header, 0, sizeof(header));
	if (csv_next(in, &header, &end, err) != PW_OK)
		return -1;
	if (end) {
		fprintf(err, "%s: no header row (the file is empty)\n", in->path);
		return -1;
	}
	if (header.why[0] != '\0') {
		fprintf(err, "%s:%lu: the header row is not valid CSV\n", in->path, header.line);
		return -1;
	}
	return take_header(in, err);
}

ctl_exit ctl_input_open(ctl_input **out, const char *path, ctl_input_format fmt, size_t row_max,
                        const char *salt, FILE *err)
{
	ctl_input *in = calloc(1, sizeof(*in));
	struct stat st;
	ctl_exit rc = CTL_EXIT_USAGE;

	*out = NULL;
	if (in == NULL) {
		fprintf(err, "%s: out of memory\n", path);
		return rc;
	}
	in->path = path;
	in->fmt = fmt;
	in->row_max = row_max;
	in->cells_text.max = row_max + ROW_SLACK;
	in->salt = strdup(salt);
	in->line = malloc(row_max + 1);
	in->text = malloc(row_max + 1);
	if (in->salt == NULL || in->line == NULL || in->text == NULL || csv_reset(in) != 0) {
		fprintf(err, "%s: out of memory\n", path);
		goto out;
	}
	/* "-": standard input (a pipe from a generator or an export), never closed here. */
	in->f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (in->f == NULL) {
		fprintf(err, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	if (fstat(fileno(in->f), &st) != 0 || S_ISDIR(st.st_mode)) {
		fprintf(err, "%s: %s\n", path,
		        S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
		goto out;
	}
	in->size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
	/* Spreadsheets save a UTF-8 byte order mark; it is not part of the first name. */
	/* The first read fills the block unless the file is shorter than it. */
	if (peek_byte(in) == 0xEF && in->blk_len >= 3 && in->blk[1] == 0xBB && in->blk[2] == 0xBF) {
		in->blk_pos += 3;
		in->consumed += 3;
	}
	if (fmt == CTL_INPUT_CSV && read_header(in, err) != 0)
		goto out;
	*out = in;
	in = NULL;
	rc = CTL_EXIT_OK;
out:
	ctl_input_close(in);
	return rc;
}

double ctl_input_fraction(const ctl_input *in)
{
	if (in->size == 0)
		return 0;
	return in->consumed >= in->size ? 1.0 : (double)in->consumed / (double)in->size;
}

void ctl_input_close(ctl_input *in)
{
	if (in == NULL)
		return;
	if (in->f != NULL && in->f != stdin)
		fclose(in->f);
	if (in->csv_ready)
		csv_free(&in->csv);
	for (size_t i = 0; i < in->nheader; i++)
		free(in->header[i]);
	free(in->header);
	free(in->header_text);
	free(in->cells);
	pw_util_buf_free(&in->cells_text);
	free(in->text);
	free(in->line);
	free(in->salt);
	free(in);
}
