/* patientctl's modules without a broker: how a load file becomes rows (line numbers,
 * quoting, CRLF, blank lines, what is unparsable), the journal across runs, the rows in
 * flight, request ids, options, durations and reply topics. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "ctl_inflight.h"
#include "ctl_input.h"
#include "ctl_journal.h"
#include "ctl_op.h"
#include "ctl_opts.h"
#include "ctl_reqid.h"
#include "pw_check_main.h"
#include "pw_envelope.h"

#define ROW_MAX 4096

static char dir[128];

static void dir_up(void)
{
	snprintf(dir, sizeof(dir), "/tmp/pw-ctl-unit-XXXXXX");
	ck_assert(mkdtemp(dir) != NULL);
}

static void dir_down(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* Writes bytes (len of them) to dir/name; returns the path (static buffer). */
static const char *put(const char *name, const char *bytes, size_t len)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	ck_assert(f != NULL);
	ck_assert(fwrite(bytes, 1, len, f) == len);
	ck_assert(fclose(f) == 0);
	return path;
}

typedef struct got {
	unsigned long line[32];
	char *payload[32]; /**< compact JSON, or "!why" when unparsable */
	uint64_t hash[32];
	size_t n;
} got;

static void read_all(const char *path, ctl_input_format fmt, const char *salt, got *g)
{
	ctl_input *in = NULL;
	ctl_input_row row;
	bool end = false;

	memset(g, 0, sizeof(*g));
	ck_assert_int_eq(ctl_input_open(&in, path, fmt, ROW_MAX, salt, stderr), CTL_EXIT_OK);
	for (;;) {
		ck_assert_int_eq(ctl_input_next(in, &row, &end, stderr), PW_OK);
		if (end)
			break;
		ck_assert(g->n < 32);
		g->line[g->n] = row.line;
		g->hash[g->n] = row.hash;
		if (row.payload != NULL) {
			g->payload[g->n] = json_dumps(row.payload, JSON_COMPACT | JSON_SORT_KEYS);
			json_decref(row.payload);
		} else {
			char buf[300];
			snprintf(buf, sizeof(buf), "!%s", row.why);
			g->payload[g->n] = strdup(buf);
		}
		g->n++;
	}
	ck_assert(ctl_input_fraction(in) == 1.0);
	ctl_input_close(in);
}

static void got_free(got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->payload[i]);
}

static void want_row(const got *g, size_t i, unsigned long line, const char *payload)
{
	ck_assert_msg(i < g->n, "row %zu missing (%zu rows)", i, g->n);
	ck_assert_msg(g->line[i] == line, "row %zu: line %lu, want %lu", i, g->line[i], line);
	if (payload[0] == '!')
		ck_assert_msg(strncmp(g->payload[i], payload, strlen(payload)) == 0,
		              "row %zu: %s, want %s...", i, g->payload[i], payload);
	else
		ck_assert_msg(strcmp(g->payload[i], payload) == 0, "row %zu: %s, want %s", i,
		              g->payload[i], payload);
}

START_TEST(csv_quoting_and_lines)
{
	/* BOM, CRLF, a quoted comma, a quoted line break, a blank line, an empty cell, a
	 * quoted empty cell, "" inside quotes, an unknown column, no final line break. */
	static const char text[] = "\xEF\xBB\xBFnombre,apellido_paterno,dni,extra\r\n"
	                           "Ana,\"Perez, Jr\",1,x\r\n"
	                           "\"Mul\r\nti\",B,2,\r\n"
	                           "\r\n"
	                           "   \r\n"
	                           "C,\"\",3,\"say \"\"hi\"\"\"\r\n"
	                           "D,E,4,z";
	got g;

	read_all(put("a.csv", text, sizeof(text) - 1), CTL_INPUT_CSV, "o", &g);
	ck_assert_uint_eq(g.n, 4);
	want_row(&g, 0, 2,
	         "{\"apellido_paterno\":\"Perez, "
	         "Jr\",\"dni\":\"1\",\"extra\":\"x\",\"nombre\":\"Ana\"}");
	want_row(&g, 1, 3, "{\"apellido_paterno\":\"B\",\"dni\":\"2\",\"nombre\":\"Mul\\r\\nti\"}");
	want_row(&g, 2, 7, "{\"dni\":\"3\",\"extra\":\"say \\\"hi\\\"\",\"nombre\":\"C\"}");
	want_row(&g, 3, 8,
	         "{\"apellido_paterno\":\"E\",\"dni\":\"4\",\"extra\":\"z\",\"nombre\":\"D\"}");
	got_free(&g);
}
END_TEST

START_TEST(csv_lone_cr_and_lf)
{
	static const char text[] = "nombre,dni\rA,1\rB,2\n\nC,3\n";
	got g;

	read_all(put("cr.csv", text, sizeof(text) - 1), CTL_INPUT_CSV, "o", &g);
	ck_assert_uint_eq(g.n, 3);
	want_row(&g, 0, 2, "{\"dni\":\"1\",\"nombre\":\"A\"}");
	want_row(&g, 1, 3, "{\"dni\":\"2\",\"nombre\":\"B\"}");
	want_row(&g, 2, 5, "{\"dni\":\"3\",\"nombre\":\"C\"}");
	got_free(&g);
}
END_TEST

/* Rows that cannot be made into a payload are reported with their line, and the rows
 * after them are read as usual. */
START_TEST(csv_unparsable_rows)
{
	static const char text[] = "nombre,dni\n"
	                           "A,1,extra\n" /* 2: three cells */
	                           "B\n"         /* 3: one cell */
	                           "C\xff,4\n"   /* 4: not UTF-8 */
	                           "D\"x,5\n"    /* 5: a quote in an unquoted cell */
	                           "\"E\"x,6\n"  /* 6: text after a closing quote */
	                           "F,7\n"       /* 7: fine */
	                           "\"G,8\n";    /* 8: quote open at the end */
	got g;

	read_all(put("bad.csv", text, sizeof(text) - 1), CTL_INPUT_CSV, "o", &g);
	ck_assert_uint_eq(g.n, 7);
	want_row(&g, 0, 2, "!the row has 3 cells, the header has 2");
	want_row(&g, 1, 3, "!the row has 1 cells");
	want_row(&g, 2, 4, "!column 'nombre' is not valid UTF-8");
	want_row(&g, 3, 5, "!malformed quoting");
	want_row(&g, 4, 6, "!malformed quoting");
	want_row(&g, 5, 7, "{\"dni\":\"7\",\"nombre\":\"F\"}");
	want_row(&g, 6, 8, "!a quoted cell is still open");
	got_free(&g);
}
END_TEST

/* An unclosed quote swallows lines only up to the row limit; reading goes on after. */
START_TEST(csv_row_limit)
{
	size_t n = 0, cap = ROW_MAX * 3;
	char *text = malloc(cap);

	ck_assert(text != NULL);
	n += (size_t)snprintf(text + n, cap - n, "nombre,dni\n\"open,1\n");
	for (int i = 0; i < 100; i++) /* 100 lines of 50 bytes: over ROW_MAX inside the quote */
		n += (size_t)snprintf(text + n, cap - n, "%049d\n", i);
	n += (size_t)snprintf(text + n, cap - n, "Z,9\n");
	got g;
	read_all(put("long.csv", text, n), CTL_INPUT_CSV, "o", &g);
	ck_assert_uint_ge(g.n, 2);
	want_row(&g, 0, 2, "!the row is longer than 4096 bytes");
	want_row(&g, g.n - 1, 103, "{\"dni\":\"9\",\"nombre\":\"Z\"}");
	got_free(&g);
	free(text);
}
END_TEST

/* Rows right at the limit: as many cells as bytes, and one cell of ROW_MAX bytes, are read
 * as rows (the reader's own memory bounds must leave room for them), not as a failure. */
START_TEST(csv_rows_at_the_limit)
{
	size_t cap = ROW_MAX * 4, n = 0;
	char *text = malloc(cap), *want = malloc(ROW_MAX + 16);
	got g;

	ck_assert(text != NULL && want != NULL);
	n += (size_t)snprintf(text, cap, "a\n");
	memset(text + n, ',', ROW_MAX); /* line 2: ROW_MAX + 1 empty cells */
	n += ROW_MAX;
	text[n++] = '\n';
	text[n++] = '"'; /* line 3: a quote whose line break would pass the limit */
	memset(text + n, 'x', ROW_MAX - 1);
	n += ROW_MAX - 1;
	n += (size_t)snprintf(text + n, cap - n, "\r\ny\"\n"); /* line 4: y" is malformed */
	memset(text + n, 'x', ROW_MAX); /* line 5: one cell of ROW_MAX bytes */
	n += ROW_MAX;
	n += (size_t)snprintf(text + n, cap - n, "\nZ\n");

	read_all(put("limit.csv", text, n), CTL_INPUT_CSV, "o", &g);
	ck_assert_uint_eq(g.n, 5);
	want_row(&g, 0, 2, "!the row has 4097 cells, the header has 1");
	want_row(&g, 1, 3, "!the row is longer than 4096 bytes");
	want_row(&g, 2, 4, "!malformed quoting");
	memcpy(want, "{\"a\":\"", 6);
	memset(want + 6, 'x', ROW_MAX);
	memcpy(want + 6 + ROW_MAX, "\"}", 3);
	want_row(&g, 3, 5, want);
	want_row(&g, 4, 6, "{\"a\":\"Z\"}");
	got_free(&g);
	free(want);
	free(text);
}
END_TEST

START_TEST(csv_hash)
{
	static const char a[] = "nombre,dni\nA,1\nB,2\n";
	static const char b[] = "nombre,dni\nA,1\nB,3\n";
	static const char c[] = "nombre,dni\r\nA,1\r\nB,2\r\n";
	static const char d[] = "dni,nombre\nA,1\nB,2\n";
	got ga, gb, gc, gd, go;

	read_all(put("h.csv", a, sizeof(a) - 1), CTL_INPUT_CSV, "alice", &ga);
	read_all(put("h.csv", b, sizeof(b) - 1), CTL_INPUT_CSV, "alice", &gb);
	read_all(put("h.csv", c, sizeof(c) - 1), CTL_INPUT_CSV, "alice", &gc);
	read_all(put("h.csv", d, sizeof(d) - 1), CTL_INPUT_CSV, "alice", &gd);
	read_all(put("h.csv", a, sizeof(a) - 1), CTL_INPUT_CSV, "bob", &go);
	ck_assert(ga.hash[0] == gb.hash[0]); /* same row */
	ck_assert(ga.hash[1] != gb.hash[1]); /* edited row */
	ck_assert(ga.hash[0] == gc.hash[0]); /* CRLF instead of LF: same text */
	ck_assert(ga.hash[0] != gd.hash[0]); /* another header: another payload */
	ck_assert(ga.hash[0] != go.hash[0]); /* another owner */
	got_free(&ga);
	got_free(&gb);
	got_free(&gc);
	got_free(&gd);
	got_free(&go);
}
END_TEST

START_TEST(jsonl_rows)
{
	static const char text[] = "{\"nombre\":\"A\",\"dni\":\"1\"}\n"
	                           "\n"
	                           "  \t\n"
	                           "[1,2]\n"
	                           "{\"nombre\":\n"
	                           "{\"dni\":\"1\",\"dni\":\"2\"}\r\n"
	                           "{\"nombre\":\"B\"}";
	got g;

	read_all(put("r.jsonl", text, sizeof(text) - 1), CTL_INPUT_JSONL, "o", &g);
	ck_assert_uint_eq(g.n, 5);
	want_row(&g, 0, 1, "{\"dni\":\"1\",\"nombre\":\"A\"}");
	want_row(&g, 1, 4, "!JSON, but not an object");
	want_row(&g, 2, 5, "!not JSON");
	want_row(&g, 3, 6, "!not JSON");
	want_row(&g, 4, 7, "{\"nombre\":\"B\"}");
	got_free(&g);
}
END_TEST

START_TEST(input_open_errors)
{
	ctl_input *in = NULL;
	char missing[256];

	snprintf(missing, sizeof(missing), "%s/missing.csv", dir);
	ck_assert_int_eq(ctl_input_open(&in, missing, CTL_INPUT_CSV, ROW_MAX, "o", stderr),
	                 CTL_EXIT_USAGE);
	ck_assert_int_eq(
	    ctl_input_open(&in, put("e.csv", "", 0), CTL_INPUT_CSV, ROW_MAX, "o", stderr),
	    CTL_EXIT_USAGE);
	ck_assert_int_eq(
	    ctl_input_open(&in, put("d.csv", "a,a\n1,2\n", 8), CTL_INPUT_CSV, ROW_MAX, "o", stderr),
	    CTL_EXIT_USAGE);
	ck_assert_int_eq(ctl_input_open(&in, dir, CTL_INPUT_CSV, ROW_MAX, "o", stderr),
	                 CTL_EXIT_USAGE);
	ck_assert_ptr_null(in);
	/* An empty JSON Lines file is simply no rows. */
	ck_assert_int_eq(
	    ctl_input_open(&in, put("e.jsonl", "", 0), CTL_INPUT_JSONL, ROW_MAX, "o", stderr),
	    CTL_EXIT_OK);
	ctl_input_close(in);
}
END_TEST

START_TEST(journal_across_runs)
{
	char path[256];
	ctl_journal *j = NULL;

	snprintf(path, sizeof(path), "%s/j.done", dir);
	unlink(path);
	ck_assert_int_eq(ctl_journal_open(&j, path, stderr), CTL_EXIT_OK);
	ck_assert_uint_eq(ctl_journal_count(j), 0);
	ck_assert_int_eq(ctl_journal_add(j, 7, UINT64_C(0xdeadbeef00000001)), PW_OK);
	ck_assert_int_eq(ctl_journal_add(j, 3, UINT64_C(0xffffffffffffffff)), PW_OK);
	ck_assert_int_eq(ctl_journal_close(j), PW_OK);

	/* A crash can cut the last line: it is ignored, as is anything else unreadable. */
	FILE *f = fopen(path, "a");
	ck_assert(f != NULL);
	fputs("12 00ff\nnot a line\n9 0000000000000009", f);
	ck_assert(fclose(f) == 0);

	ck_assert_int_eq(ctl_journal_open(&j, path, stderr), CTL_EXIT_OK);
	ck_assert_uint_eq(ctl_journal_count(j), 2);
	ck_assert(ctl_journal_has(j, 7, UINT64_C(0xdeadbeef00000001)));
	ck_assert(ctl_journal_has(j, 3, UINT64_C(0xffffffffffffffff)));
	ck_assert(!ctl_journal_has(j, 7, UINT64_C(0xdeadbeef00000002)));
	ck_assert(!ctl_journal_has(j, 12, UINT64_C(0xff)));
	ck_assert(!ctl_journal_has(j, 9, 9));
	ck_assert_int_eq(ctl_journal_close(j), PW_OK);
}
END_TEST

/* Enough entries that the table read at open grows several times, in shuffled order. */
START_TEST(journal_many_entries)
{
	char path[256];
	ctl_journal *j = NULL;
	const unsigned long n = 5000;

	snprintf(path, sizeof(path), "%s/many.done", dir);
	unlink(path);
	ck_assert_int_eq(ctl_journal_open(&j, path, stderr), CTL_EXIT_OK);
	for (unsigned long i = 0; i < n; i++) {
		unsigned long line = (i * 7919) % n + 1; /* 7919 is prime: a permutation */
		ck_assert_int_eq(ctl_journal_add(j, line, line * 31), PW_OK);
	}
	ck_assert_int_eq(ctl_journal_close(j), PW_OK);

	ck_assert_int_eq(ctl_journal_open(&j, path, stderr), CTL_EXIT_OK);
	ck_assert_uint_eq(ctl_journal_count(j), n);
	for (unsigned long line = 1; line <= n; line++) {
		ck_assert(ctl_journal_has(j, line, line * 31));
		ck_assert(!ctl_journal_has(j, line, line * 31 + 1));
	}
	ck_assert(!ctl_journal_has(j, n + 1, (n + 1) * 31));
	ck_assert_int_eq(ctl_journal_close(j), PW_OK);
}
END_TEST

/* The rows in flight against a plain array: adds and removes in a scrambled order over few
 * buckets keep every row findable (deletion moves entries back into the hole), and the
 * walk visits each row once. */
START_TEST(inflight_set)
{
	enum { CAP = 8, LINES = 40 };
	ctl_inflight *f = NULL;
	bool in[LINES + 2] = {false};
	uint32_t x = 12345;
	char *p;

	ck_assert_int_eq(ctl_inflight_create(&f, 0), PW_E_INVALID);
	ck_assert_int_eq(ctl_inflight_create(&f, CAP), PW_OK);
	for (int step = 0; step < 5000; step++) {
		x = x * 1103515245u + 12345u;
		unsigned long line = (x >> 16) % LINES + 1;
		if (in[line]) {
			ctl_inflight_row *r = ctl_inflight_find(f, line);
			ck_assert_ptr_nonnull(r);
			ck_assert(r->line == line && r->hash == line * 3 &&
			          atol(r->payload) == (long)line);
			ctl_inflight_remove(f, r);
			in[line] = false;
		} else if (!ctl_inflight_full(f)) {
			p = malloc(24);
			ck_assert_ptr_nonnull(p);
			snprintf(p, 24, "%lu", line);
			ck_assert_ptr_nonnull(ctl_inflight_add(f, line, line * 3, step, p));
			in[line] = true;
		}
		int n = 0, walked = 0;
		for (unsigned long k = 1; k <= LINES; k++) {
			ck_assert((ctl_inflight_find(f, k) != NULL) == in[k]);
			n += in[k];
		}
		ck_assert_int_eq(ctl_inflight_count(f), n);
		for (ctl_inflight_row *r = ctl_inflight_next(f, NULL); r != NULL;
		     r = ctl_inflight_next(f, r), walked++)
			ck_assert(in[r->line]);
		ck_assert_int_eq(walked, n);
	}
	/* A full set, or line 0, refuses a row and leaves its payload with the caller. */
	for (unsigned long line = 1; !ctl_inflight_full(f); line++)
		if (!in[line])
			ck_assert_ptr_nonnull(ctl_inflight_add(f, line, 0, 0, strdup("x")));
	p = strdup("y");
	ck_assert_ptr_null(ctl_inflight_add(f, LINES + 1, 0, 0, p));
	ctl_inflight_remove(f, ctl_inflight_next(f, NULL));
	ck_assert_ptr_null(ctl_inflight_add(f, 0, 0, 0, p));
	free(p);
	ctl_inflight_destroy(f); /* frees the payloads still in it (valgrind) */
}
END_TEST

START_TEST(request_ids)
{
	char a[CTL_REQID_UUID_SIZE], b[CTL_REQID_UUID_SIZE], p[CTL_REQID_PREFIX_MAX + 1];
	char longname[300];

	ck_assert_int_eq(ctl_reqid_random(a), PW_OK);
	ck_assert_int_eq(ctl_reqid_random(b), PW_OK);
	ck_assert_uint_eq(strlen(a), 36);
	ck_assert(a[14] == '4' && strchr("89ab", a[19]) != NULL);
	ck_assert_str_ne(a, b);
	ck_assert(pw_envelope_request_id_valid(a));
	ck_assert(!pw_envelope_request_id_valid(""));
	ck_assert(!pw_envelope_request_id_valid("a b"));

	ctl_reqid_prefix_from_path("/data/in/Pacientes 2026 (v2).csv", p, sizeof(p));
	ck_assert_str_eq(p, "Pacientes_2026__v2_.csv");
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ctl_reqid_prefix_from_path(longname, p, sizeof(p));
	ck_assert_uint_eq(strlen(p), CTL_REQID_PREFIX_MAX);
	/* The longest prefix and line number still make a valid request id. */
	char rid[CTL_REQID_MAX + 32];
	snprintf(rid, sizeof(rid), "load:%s:%lu", p, (unsigned long)-1);
	ck_assert(strlen(rid) <= CTL_REQID_MAX);
	ck_assert(pw_envelope_request_id_valid(rid));
	ck_assert(ctl_reqid_prefix_valid("batch-7.a_b"));
	ck_assert(!ctl_reqid_prefix_valid("a:b"));
}
END_TEST

/* argc of a NULL-terminated argv array. */
#define NARGS(v) ((int)(sizeof(v) / sizeof((v)[0])) - 1)

/* Every option lands in its own field (the table names the field of each text option). */
START_TEST(options_land_in_their_fields)
{
	char *create[] = {"patientctl", "create",
	                  "--token=T",  "--payload",
	                  "{}",         "--nombre",
	                  "N",          "--apellido-paterno",
	                  "P",          "--apellido-materno",
	                  "M",          "--dni",
	                  "D",          "--fecha-nacimiento",
	                  "F",          "--sexo",
	                  "S",          "--reply-topic",
	                  "R",          "--request-id",
	                  "I",          "--timeout",
	                  "7",          "--kafka-brokers",
	                  "h:1",        NULL};
	char *list[] = {"patientctl", "list",  "--sub", "a@b", "--limit", "-3", "--cursor",
	                "C",          "--dni", "D",     "--q", "Q",       NULL};
	char *load[] = {"patientctl",  "load",       "-",         "--format", "ndjson",
	                "--id-prefix", "p",          "--journal", "J",        "--errors",
	                "E",           "--inflight", "9",         NULL};
	char *token[] = {"patientctl", "token", "--sub", "s", "--ttl", "2m", "--scope", "x", NULL};
	ctl_opts o;

	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(create), create, stderr), CTL_EXIT_OK);
	ck_assert_int_eq(o.cmd, CTL_CMD_CREATE);
	ck_assert_str_eq(o.token, "T");
	ck_assert_str_eq(o.payload, "{}");
	for (int i = 0; i < CTL_NFIELDS; i++)
		ck_assert_ptr_nonnull(o.fields[i]);
	ck_assert_str_eq(o.fields[CTL_F_NOMBRE], "N");
	ck_assert_str_eq(o.fields[CTL_F_APELLIDO_PATERNO], "P");
	ck_assert_str_eq(o.fields[CTL_F_APELLIDO_MATERNO], "M");
	ck_assert_str_eq(o.fields[CTL_F_DNI], "D");
	ck_assert_str_eq(o.fields[CTL_F_FECHA_NACIMIENTO], "F");
	ck_assert_str_eq(o.fields[CTL_F_SEXO], "S");
	ck_assert_str_eq(o.reply_topic, "R");
	ck_assert_str_eq(o.request_id, "I");
	ck_assert_int_eq(o.timeout_s, 7);
	ck_assert_int_eq(o.cfg_argc, 3);
	ck_assert_str_eq(o.cfg_argv[1], "--kafka-brokers");
	ck_assert_str_eq(o.cfg_argv[2], "h:1");
	ck_assert_ptr_null(o.cfg_argv[3]);

	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(list), list, stderr), CTL_EXIT_OK);
	ck_assert_str_eq(o.sub, "a@b");
	ck_assert(o.has_limit && o.limit == -3);
	ck_assert_str_eq(o.cursor, "C");
	ck_assert_str_eq(o.fields[CTL_F_DNI], "D");
	ck_assert_str_eq(o.q, "Q");
	ck_assert_ptr_null(o.token);

	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(load), load, stderr), CTL_EXIT_OK);
	ck_assert_str_eq(o.file, "-");
	ck_assert_int_eq(o.format, CTL_INPUT_JSONL);
	ck_assert_str_eq(o.id_prefix, "p");
	ck_assert_str_eq(o.journal, "J");
	ck_assert_str_eq(o.errors, "E");
	ck_assert_int_eq(o.inflight, 9);

	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(token), token, stderr), CTL_EXIT_OK);
	ck_assert_str_eq(o.sub, "s");
	ck_assert_int_eq(o.ttl_s, 120);
	ck_assert_str_eq(o.scope, "x");

	token[3] = ""; /* patientctl token --sub "" */
	ck_assert_int_eq(ctl_opts_parse(&o, 4, token, stderr), CTL_EXIT_USAGE);
}
END_TEST

/* Runs ctl_op_take on row (JSON text); returns the payload left as compact JSON (or
 * "!why" when refused) and sets *type. Caller frees. */
static char *op_of(const char *row, const char **type)
{
	char why[96];
	json_t *p = json_loads(row, 0, NULL);
	char *out = NULL;

	ck_assert_ptr_nonnull(p);
	*type = NULL;
	if (ctl_op_take(p, type, why, sizeof(why)) != PW_OK) {
		out = malloc(strlen(why) + 2);
		ck_assert_ptr_nonnull(out);
		sprintf(out, "!%s", why);
	} else {
		out = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	}
	json_decref(p);
	ck_assert_ptr_nonnull(out);
	return out;
}

#define WANT_OP(row, want_type, want_payload)                                                      \
	do {                                                                                       \
		const char *t_;                                                                    \
		char *p_ = op_of(row, &t_);                                                        \
		ck_assert_msg(strcmp(p_, want_payload) == 0, "%s: left %s, want %s", row, p_,      \
		              want_payload);                                                       \
		if (want_type == NULL)                                                             \
			ck_assert_ptr_null(t_);                                                    \
		else                                                                               \
			ck_assert_str_eq(t_, want_type);                                           \
		free(p_);                                                                          \
	} while (0)

/* A load row's op: absent or empty (a blank CSV cell is left out) is a create; id and
 * version as a CSV gives them become numbers, anything else is the worker's to judge. */
START_TEST(load_row_ops)
{
	WANT_OP("{\"dni\":\"1\",\"id\":\"7\"}", "patient.create", "{\"dni\":\"1\",\"id\":\"7\"}");
	WANT_OP("{\"op\":\"create\",\"dni\":\"1\"}", "patient.create", "{\"dni\":\"1\"}");
	WANT_OP("{\"op\":\"update\",\"id\":\"17\",\"version\":\"3\",\"nombre\":\"A\"}",
	        "patient.update", "{\"id\":17,\"nombre\":\"A\",\"version\":3}");
	WANT_OP("{\"op\":\"delete\",\"id\":5,\"version\":2}", "patient.delete",
	        "{\"id\":5,\"version\":2}");
	/* Not plain digits: sent as given, so the worker's 400 names the field. */
	WANT_OP("{\"op\":\"update\",\"id\":\"12a\",\"version\":\"-1\"}", "patient.update",
	        "{\"id\":\"12a\",\"version\":\"-1\"}");
	WANT_OP("{\"op\":\"delete\",\"id\":\"99999999999999999999\",\"version\":1}",
	        "patient.delete", "{\"id\":\"99999999999999999999\",\"version\":1}");
	WANT_OP("{\"op\":\"archive\",\"id\":1}", NULL, "!op must be create, update or delete");
	WANT_OP("{\"op\":\"UPDATE\",\"id\":1}", NULL, "!op must be create, update or delete");
	WANT_OP("{\"op\":3}", NULL, "!op must be create, update or delete");

	/* One patient's writes share a key (and so a partition); anything else keeps its id. */
	char key[48];
	ck_assert_str_eq(ctl_op_key("patient.update", 17, "r1", key, sizeof(key)), "patient:17");
	ck_assert_str_eq(ctl_op_key("patient.delete", 17, "r2", key, sizeof(key)), "patient:17");
	ck_assert_str_eq(ctl_op_key("patient.create", 17, "r3", key, sizeof(key)), "r3");
	ck_assert_str_eq(ctl_op_key("patient.update", 0, "r4", key, sizeof(key)), "r4");
	ck_assert_str_eq(ctl_op_key("patient.update", 12345, "r5", key, 8), "r5");
}
END_TEST

/* update and delete: --id and --version required, from 1 up; fields only for update. */
START_TEST(update_and_delete_options)
{
	char *update[] = {"patientctl", "update", "--sub", "a@b", "--id", "4",
	                  "--version",  "2",      "--dni", "D",   NULL};
	char *del[] = {"patientctl", "delete", "--sub", "a@b", "--id", "4", "--version", "9", NULL};
	char *no_version[] = {"patientctl", "update", "--sub", "a@b", "--id",
	                      "4",          "--dni",  "D",     NULL};
	char *no_fields[] = {"patientctl", "update",    "--sub", "a@b", "--id",
	                     "4",          "--version", "1",     NULL};
	char *zero[] = {"patientctl", "delete",    "--sub", "a@b", "--id",
	                "4",          "--version", "0",     NULL};
	char *no_id[] = {"patientctl", "delete", "--sub", "a@b", "--version", "1", NULL};
	char *del_fields[] = {"patientctl", "delete", "--sub", "a@b", "--id", "4",
	                      "--version",  "1",      "--dni", "D",   NULL};
	char *get_version[] = {"patientctl", "get",       "--sub", "a@b", "--id",
	                       "4",          "--version", "1",     NULL};
	char *bad_payload[] = {"patientctl", "update", "--sub",     "a@b", "--id", "4",
	                       "--version",  "1",      "--payload", "[1]", NULL};
	ctl_opts o;
	FILE *null = fopen("/dev/null", "w");

	ck_assert_ptr_nonnull(null);
	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(update), update, stderr), CTL_EXIT_OK);
	ck_assert_int_eq(o.cmd, CTL_CMD_UPDATE);
	ck_assert(o.id == 4 && o.version == 2);
	ck_assert_str_eq(o.fields[CTL_F_DNI], "D");
	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(del), del, stderr), CTL_EXIT_OK);
	ck_assert_int_eq(o.cmd, CTL_CMD_DELETE);
	ck_assert(o.id == 4 && o.version == 9);
	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(no_version), no_version, null), CTL_EXIT_USAGE);
	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(no_fields), no_fields, null), CTL_EXIT_USAGE);
	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(zero), zero, null), CTL_EXIT_USAGE);
	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(no_id), no_id, null), CTL_EXIT_USAGE);
	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(del_fields), del_fields, null), CTL_EXIT_USAGE);
	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(get_version), get_version, null), CTL_EXIT_USAGE);
	ck_assert_int_eq(ctl_opts_parse(&o, NARGS(bad_payload), bad_payload, null), CTL_EXIT_USAGE);
	fclose(null);
}
END_TEST

START_TEST(durations_and_reply_topics)
{
	long s;

	ck_assert(ctl_opts_parse_duration("3600", &s) == PW_OK && s == 3600);
	ck_assert(ctl_opts_parse_duration("90s", &s) == PW_OK && s == 90);
	ck_assert(ctl_opts_parse_duration("30m", &s) == PW_OK && s == 1800);
	ck_assert(ctl_opts_parse_duration("1h", &s) == PW_OK && s == 3600);
	ck_assert(ctl_opts_parse_duration("2d", &s) == PW_OK && s == 172800);
	ck_assert(ctl_opts_parse_duration("366d", &s) == PW_OK);
	ck_assert(ctl_opts_parse_duration("367d", &s) != PW_OK);
	ck_assert(ctl_opts_parse_duration("0", &s) != PW_OK);
	ck_assert(ctl_opts_parse_duration("-1h", &s) != PW_OK);
	ck_assert(ctl_opts_parse_duration("1hm", &s) != PW_OK);
	ck_assert(ctl_opts_parse_duration("h", &s) != PW_OK);

	ck_assert(pw_envelope_reply_to_allowed("patients.replies", "patients.replies"));
	ck_assert(pw_envelope_reply_to_allowed("patients.replies.billing-7", "patients.replies"));
	ck_assert(!pw_envelope_reply_to_allowed("patients.replies.", "patients.replies"));
	ck_assert(!pw_envelope_reply_to_allowed("patients.repliesx", "patients.replies"));
	ck_assert(!pw_envelope_reply_to_allowed("patients.replies.a b", "patients.replies"));
	ck_assert(!pw_envelope_reply_to_allowed("other", "patients.replies"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ctl_unit");
	TCase *tc = tcase_create("modules");

	tcase_add_checked_fixture(tc, dir_up, dir_down);
	tcase_add_test(tc, csv_quoting_and_lines);
	tcase_add_test(tc, csv_lone_cr_and_lf);
	tcase_add_test(tc, csv_unparsable_rows);
	tcase_add_test(tc, csv_row_limit);
	tcase_add_test(tc, csv_rows_at_the_limit);
	tcase_add_test(tc, csv_hash);
	tcase_add_test(tc, jsonl_rows);
	tcase_add_test(tc, input_open_errors);
	tcase_add_test(tc, journal_across_runs);
	tcase_add_test(tc, journal_many_entries);
	tcase_add_test(tc, inflight_set);
	tcase_add_test(tc, request_ids);
	tcase_add_test(tc, options_land_in_their_fields);
	tcase_add_test(tc, load_row_ops);
	tcase_add_test(tc, update_and_delete_options);
	tcase_add_test(tc, durations_and_reply_topics);
	suite_add_tcase(s, tc);
	return pw_check_run(s);
}
