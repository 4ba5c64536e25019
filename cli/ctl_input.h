/* The rows of a load file as create payloads: CSV with a header row (libcsv: quoting,
 * embedded commas and line breaks, CRLF) or JSON Lines, each row with its line number and
 * a hash of its text. Memory is bounded by the longest row allowed, not by the file. */
#ifndef CTL_INPUT_H
#define CTL_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "ctl_exit.h"
#include "pw_status.h"

typedef struct ctl_input ctl_input;

/* What a load file holds. */
typedef enum ctl_input_format {
	CTL_INPUT_AUTO = 0, /**< not a format: not given, so ctl_opts_parse goes by the name */
	CTL_INPUT_CSV,
	CTL_INPUT_JSONL,
} ctl_input_format;

typedef struct ctl_input_row {
	unsigned long line; /**< first physical line of the row, from 1 (a CSV header is 1) */
	uint64_t hash;      /**< of the salt, the CSV header's text and the row's text */
	json_t *payload;    /**< the row as an object (caller's reference); NULL: unparsable */
	char why[256];      /**< when unparsable: what is wrong, naming no cell's content */
	const char *text;   /**< the row's text as read, without its final line break;
	                         valid until the next call (cut at the row limit) */
	size_t text_len;
} ctl_input_row;

/* Opens path ("-": standard input) as fmt (CSV or JSONL) and, for CSV, reads the header
 * row. A row's text longer than row_max makes the row unparsable. salt (the owner) goes
 * into every row's hash, so one owner's journal never vouches for another's rows.
 * CTL_EXIT_OK with *out the caller's (ctl_input_close; it borrows path), or CTL_EXIT_USAGE
 * after one line on err naming the file (cannot open, no header, a header with an empty,
 * duplicate or non-UTF-8 name). */
PW_MUST_CHECK ctl_exit ctl_input_open(ctl_input **out, const char *path, ctl_input_format fmt,
                                      size_t row_max, const char *salt, FILE *err);

/* Reads the next row into *row. PW_OK with *end false and the row filled (unparsable rows
 * included), or with *end true at the end of the file; blank lines are not rows. After a
 * line on err: PW_E_INTERNAL when the file could not be read or a row not hashed,
 * PW_E_NOMEM out of memory. */
PW_MUST_CHECK pw_status ctl_input_next(ctl_input *in, ctl_input_row *row, bool *end, FILE *err);

/* The share of the file's bytes read so far, 0 to 1 (0 when the size is unknown). */
double ctl_input_fraction(const ctl_input *in);

void ctl_input_close(ctl_input *in); /* NULL is fine */

#endif
