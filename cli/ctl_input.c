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

#define BLOCK 65536

typedef struct cell {
	size_t off, len;
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
	int eof;
	uint64_t size, consumed;
	unsigned long lineno; /**< physical lines read so far */
	char *line;           /**< the current line's content, at most row_max bytes */
	size_t line_len;
	int line_long;   /**< the line was longer than row_max: cut */
	char term[2];    /**< the line break that ended it */
	size_t term_len; /**< 0 at the end of the file */
	/* CSV */
	struct csv_parser csv;
	int csv_ready;
	int row_open; /**< a row started and has not ended */
	int row_done; /**< libcsv reported the end of the row */
	int nomem;    /**< a callback could not allocate */
	unsigned long row_line;
	char *text; /**< the open row's raw text, at most row_max bytes */
	size_t text_len;
	char *cellbuf; /**< the open row's cells, unquoted, back to back */
	size_t cellbuf_len, cellbuf_cap;
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
			in->eof = 1;
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
	int any = 0;

	in->line_len = 0;
	in->line_long = 0;
	in->term_len = 0;
	for (;;) {
		int c = next_byte(in);
		if (c == -2) {
			fprintf(err, "%s: read error: %s\n", in->path,
			        strerror(errno ? errno : EIO));
			return -1;
		}
		if (c == -1)
			break;
		any = 1;
		if (c == '\n') {
			in->term[0] = '\n';
			in->term_len = 1;
			break;
		}
		if (c == '\r') {
			int n = peek_byte(in);
			if (n == -2) {
				fprintf(err, "%s: read error: %s\n", in->path,
				        strerror(errno ? errno : EIO));
				return -1;
			}
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
			in->line_long = 1;
	}
	if (!any)
		return 0;
	in->lineno++;
	return 1;
}

static int blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
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

static void on_field(void *s, size_t len, void *data)
{
	ctl_input *in = data;

	if (in->nomem)
		return;
	if (in->ncells == in->cells_cap) {
		size_t cap = in->cells_cap ? in->cells_cap * 2 : 16;
		cell *nc = realloc(in->cells, cap * sizeof(*nc));
		if (nc == NULL) {
			in->nomem = 1;
			return;
		}
		in->cells = nc;
		in->cells_cap = cap;
	}
	if (s == NULL)
		len = 0;
	if (in->cellbuf_len + len > in->cellbuf_cap) {
		size_t cap = in->cellbuf_cap ? in->cellbuf_cap : 256;
		while (cap < in->cellbuf_len + len)
			cap *= 2;
		char *nb = realloc(in->cellbuf, cap);
		if (nb == NULL) {
			in->nomem = 1;
			return;
		}
		in->cellbuf = nb;
		in->cellbuf_cap = cap;
	}
	if (len > 0)
		memcpy(in->cellbuf + in->cellbuf_len, s, len);
	in->cells[in->ncells].off = in->cellbuf_len;
	in->cells[in->ncells].len = len;
	in->ncells++;
	in->cellbuf_len += len;
}

static void on_row(int c, void *data)
{
	ctl_input *in = data;

	(void)c;
	in->row_done = 1;
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
	in->row_open = 1;
	in->row_done = 0;
	in->row_line = in->lineno;
	in->text_len = 0;
	in->ncells = 0;
	in->cellbuf_len = 0;
}

static int append_text(ctl_input *in, const char *s, size_t n)
{
	if (in->text_len + n > in->row_max)
		return -1;
	memcpy(in->text + in->text_len, s, n);
	in->text_len += n;
	return 0;
}

static void unparsable(ctl_row *row, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void unparsable(ctl_row *row, const char *fmt, ...)
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
		const cell *c = &in->cells[i];
		json_t *probe = json_stringn(in->cellbuf + c->off, c->len);
		json_decref(probe);
		if (c->len == 0 || probe == NULL || memchr(in->cellbuf + c->off, '\0', c->len)) {
			fprintf(err, "%s:%lu: column %zu of the header is %s\n", in->path,
			        in->row_line, i + 1, c->len == 0 ? "empty" : "not valid UTF-8");
			return -1;
		}
		in->header[i] = strndup(in->cellbuf + c->off, c->len);
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
static void csv_payload(ctl_input *in, ctl_row *row)
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
		const cell *c = &in->cells[i];
		if (c->len == 0)
			continue;
		/* json_stringn refuses invalid UTF-8, which the worker could not take either. */
		json_t *v = json_stringn(in->cellbuf + c->off, c->len);
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

/* Reads on until a row ends: 1 with *row filled (the header too, by the caller's
 * choice), 0 at the end of the file, -1 on an error. */
static int csv_next(ctl_input *in, ctl_row *row, FILE *err)
{
	for (;;) {
		int r = read_line(in, err);
		if (r < 0)
			return -1;
		if (r == 0 && !in->row_open)
			return 0;
		if (r == 0) {
			/* The last row had no line break: csv_fini ends it, or finds a quote
			 * still open. */
			int fin = csv_fini(&in->csv, on_field, on_row, in);
			if (csv_reset(in) != 0)
				goto nomem;
			in->row_open = 0;
			row->line = in->row_line;
			row->text = in->text;
			row->text_len = in->text_len;
			if (fin != 0 || !in->row_done)
				unparsable(row,
				           "a quoted cell is still open at the end of the file");
			else if (in->nomem)
				goto nomem;
			else if (in->header != NULL)
				csv_payload(in, row);
			return 1;
		}
		if (!in->row_open) {
			if (blank(in->line, in->line_len))
				continue;
			row_start(in);
		}
		row->line = in->row_line;
		int too_long = in->line_long || append_text(in, in->line, in->line_len) != 0;
		size_t fed =
		    too_long ? 0
		             : csv_parse(&in->csv, in->line, in->line_len, on_field, on_row, in);
		int malformed = !too_long && fed < in->line_len;
		if (!too_long && !malformed && in->term_len > 0) {
			fed = csv_parse(&in->csv, in->term, in->term_len, on_field, on_row, in);
			malformed = fed < in->term_len;
		}
		if (in->nomem)
			goto nomem;
		if (too_long || malformed) {
			/* Start afresh on the next line: an unclosed quote costs the rows it
			 * swallowed, not the rest of the file. */
			if (csv_reset(in) != 0)
				goto nomem;
			in->row_open = 0;
			row->text = in->text;
			row->text_len = in->text_len;
			if (too_long)
				unparsable(row,
				           "the row is longer than %zu bytes (an unclosed quote?)",
				           in->row_max);
			else
				unparsable(
				    row,
				    "malformed quoting: a quote inside an unquoted cell, or text "
				    "after a closing quote");
			return 1;
		}
		if (in->row_done) {
			in->row_open = 0;
			row->text = in->text;
			row->text_len = in->text_len;
			if (in->header != NULL)
				csv_payload(in, row);
			return 1;
		}
		/* A quoted cell goes on: its line break is part of the row's text. */
		if (append_text(in, in->term, in->term_len) != 0) {
			if (csv_reset(in) != 0)
				goto nomem;
			in->row_open = 0;
			row->text = in->text;
			row->text_len = in->text_len;
			unparsable(row, "the row is longer than %zu bytes (an unclosed quote?)",
			           in->row_max);
			return 1;
		}
	}
nomem:
	fprintf(err, "%s: out of memory\n", in->path);
	return -1;
}

/* ---- JSON Lines ---- */

static int jsonl_next(ctl_input *in, ctl_row *row, FILE *err)
{
	json_error_t jerr;

	for (;;) {
		int r = read_line(in, err);
		if (r <= 0)
			return r;
		if (blank(in->line, in->line_len) && !in->line_long)
			continue;
		row->line = in->lineno;
		row->text = in->line;
		row->text_len = in->line_len;
		if (in->line_long) {
			unparsable(row, "the line is longer than %zu bytes", in->row_max);
			return 1;
		}
		json_t *v = json_loadb(in->line, in->line_len, JSON_REJECT_DUPLICATES, &jerr);
		if (json_is_object(v)) {
			row->payload = v;
		} else {
			row->payload = NULL;
			if (v == NULL)
				unparsable(row, "not JSON: %s", jerr.text);
			else
				unparsable(row, "JSON, but not an object");
			json_decref(v);
		}
		return 1;
	}
}

/* ---- the module ---- */

int ctl_input_next(ctl_input *in, ctl_row *row, FILE *err)
{
	int r;

	memset(row, 0, sizeof(*row));
	r = in->fmt == CTL_INPUT_CSV ? csv_next(in, row, err) : jsonl_next(in, row, err);
	if (r == 1 && row_hash(in, row->text, row->text_len, &row->hash) != 0) {
		json_decref(row->payload);
		row->payload = NULL;
		fprintf(err, "%s: cannot hash a row (OpenSSL)\n", in->path);
		return -1;
	}
	return r;
}

ctl_exit ctl_input_open(ctl_input **out, const char *path, ctl_input_format fmt, size_t row_max,
                        const char *salt, FILE *err)
{
	ctl_input *in = calloc(1, sizeof(*in));
	struct stat st;
	ctl_exit rc = CTL_EXIT_USAGE;
	ctl_row header;

	*out = NULL;
	if (in == NULL) {
		fprintf(err, "%s: out of memory\n", path);
		return rc;
	}
	in->path = path;
	in->fmt = fmt;
	in->row_max = row_max;
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
	if (fmt == CTL_INPUT_CSV) {
		memset(&header, 0, sizeof(header));
		int r = csv_next(in, &header, err);
		if (r < 0)
			goto out;
		if (r == 0) {
			fprintf(err, "%s: no header row (the file is empty)\n", path);
			goto out;
		}
		if (in->header == NULL && header.why[0] != '\0') {
			fprintf(err, "%s:%lu: the header row is not valid CSV\n", path,
			        header.line);
			goto out;
		}
		if (take_header(in, err) != 0)
			goto out;
	}
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
	free(in->cellbuf);
	free(in->text);
	free(in->line);
	free(in->salt);
	free(in);
}
