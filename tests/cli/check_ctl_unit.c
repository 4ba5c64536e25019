/* patientctl's modules without a broker: how a load file becomes rows (line numbers,
 * quoting, CRLF, blank lines, what is unparsable), the journal across runs, the rows in
 * flight, request ids, options, durations and reply topics; `token --jwks-out`, its tokens
 * checked with OpenSSL from the JWK Set it writes, never through patientctl's own code. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "ctl_inflight.h"
#include "ctl_input.h"
#include "ctl_journal.h"
#include "ctl_jwk.h"
#include "ctl_op.h"
#include "ctl_opts.h"
#include "ctl_reqid.h"
#include "ctl_token.h"
#include "pw_check_main.h"
#include "pw_config.h"
#include "pw_envelope.h"
#include "pw_util.h"

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

/* ---- token --jwks-out ------------------------------------------------------------------ */

/* What one `patientctl token` run in this process printed, and how it ended. */
typedef struct token_run {
	ctl_exit rc;
	char *out, *err; /**< NUL-terminated */
} token_run;

static void token_run_free(token_run *r)
{
	free(r->out);
	free(r->err);
}

/* Runs `patientctl token` with args (NULL-terminated, after "token") as main does: options,
 * settings (none: the environment of the test), then the --jwks-out path. */
static void run_token(token_run *r, const char *const *args)
{
	char *argv[24] = {"patientctl", "token"};
	int argc = 2;
	ctl_opts o;
	pw_config cfg;
	size_t out_len = 0, err_len = 0;
	FILE *out, *err;

	memset(r, 0, sizeof(*r));
	memset(&cfg, 0, sizeof(cfg));
	for (; args[argc - 2] != NULL; argc++) {
		ck_assert(argc < 23);
		argv[argc] = (char *)args[argc - 2];
	}
	argv[argc] = NULL;
	out = open_memstream(&r->out, &out_len);
	err = open_memstream(&r->err, &err_len);
	ck_assert(out != NULL && err != NULL);
	r->rc = ctl_opts_parse(&o, argc, argv, err);
	if (r->rc == CTL_EXIT_OK) {
		ck_assert_ptr_nonnull(o.jwks_out);
		ck_assert(pw_config_load(&cfg, o.cfg_argc, o.cfg_argv, 0, err) == PW_OK);
		r->rc = ctl_token_jwks(&o, &cfg, out, err);
	}
	pw_config_free(&cfg);
	ck_assert(fclose(out) == 0 && fclose(err) == 0);
}

/* A refused run: exit 2, nothing on stdout, one line on stderr starting with opt. */
static void want_refused(const char *const *args, const char *opt)
{
	token_run r;

	run_token(&r, args);
	ck_assert_msg(r.rc == CTL_EXIT_USAGE, "%s: exit %d, want 2 (stderr: %s)", opt, r.rc, r.err);
	ck_assert_msg(r.out[0] == '\0', "%s: printed %s", opt, r.out);
	ck_assert_msg(strncmp(r.err, opt, strlen(opt)) == 0 && r.err[strlen(opt)] == ':',
	              "stderr does not start with %s: %s", opt, r.err);
	ck_assert_msg(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "not one line: %s", r.err);
	token_run_free(&r);
}

/* The JSON of one base64url part of a token (n characters at p). */
static json_t *json_of_b64(const char *p, size_t n)
{
	unsigned char buf[4096];
	size_t len;

	ck_assert(pw_util_b64url_decode(p, n, buf, sizeof(buf), &len) == PW_OK);
	json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
	ck_assert_ptr_nonnull(j);
	return j;
}

/* Decodes a JWK member (base64url) into buf; its length. */
static size_t member_bytes(const json_t *jwk, const char *name, unsigned char *buf, size_t size)
{
	const char *v = json_string_value(json_object_get(jwk, name));
	size_t len;

	ck_assert_msg(v != NULL, "JWK member %s missing", name);
	ck_assert_msg(strchr(v, '=') == NULL, "%s is padded: %s", name, v);
	ck_assert(pw_util_b64url_decode(v, strlen(v), buf, size, &len) == PW_OK);
	return len;
}

/* The public key a JWK describes, rebuilt with OpenSSL alone (EVP_PKEY_fromdata). */
static EVP_PKEY *pkey_of_jwk(const json_t *jwk)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	BIGNUM *n = NULL, *e = NULL;
	unsigned char a[1024], b[1024], pub[65];
	size_t alen, blen;
	const char *type;

	ck_assert(bld != NULL && kty != NULL);
	if (strcmp(kty, "RSA") == 0) {
		alen = member_bytes(jwk, "n", a, sizeof(a));
		blen = member_bytes(jwk, "e", b, sizeof(b));
		/* Minimal big-endian (RFC 7518 6.3.1.1): no leading zero octet. */
		ck_assert(a[0] != 0 && b[0] != 0 && alen >= 256);
		n = BN_bin2bn(a, (int)alen, NULL);
		e = BN_bin2bn(b, (int)blen, NULL);
		ck_assert(n != NULL && e != NULL);
		ck_assert(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1);
		ck_assert(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1);
		type = "RSA";
	} else if (strcmp(kty, "EC") == 0) {
		ck_assert_str_eq(crv, "P-256");
		/* Fixed length: 32 bytes each even when a coordinate starts with zeros. */
		ck_assert_uint_eq(member_bytes(jwk, "x", a, sizeof(a)), 32);
		ck_assert_uint_eq(member_bytes(jwk, "y", b, sizeof(b)), 32);
		pub[0] = 0x04; /* an uncompressed point */
		memcpy(pub + 1, a, 32);
		memcpy(pub + 33, b, 32);
		ck_assert(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
		                                          "prime256v1", 0) == 1);
		ck_assert(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
		                                           sizeof(pub)) == 1);
		type = "EC";
	} else {
		ck_assert_str_eq(kty, "OKP");
		ck_assert_str_eq(crv, "Ed25519");
		alen = member_bytes(jwk, "x", a, sizeof(a));
		ck_assert_uint_eq(alen, 32);
		ck_assert(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, a, alen) ==
		          1);
		type = "ED25519";
	}
	/* No private member may be published. */
	ck_assert_ptr_null(json_object_get(jwk, "d"));
	ck_assert_ptr_null(json_object_get(jwk, "p"));
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	ck_assert(params != NULL && ctx != NULL);
	ck_assert(EVP_PKEY_fromdata_init(ctx) == 1);
	ck_assert(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return key;
}

/* Does the token's signature verify with key (OpenSSL, JWS rules: ES256 is raw r||s)? */
static bool signature_ok(const char *token, EVP_PKEY *key, const char *alg)
{
	const char *d2 = strrchr(token, '.');
	unsigned char sig[1024], *der = NULL;
	size_t sig_len;
	int der_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	ck_assert(d2 != NULL && ctx != NULL);
	ck_assert(pw_util_b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof(sig), &sig_len) ==
	          PW_OK);
	if (strcmp(alg, "ES256") == 0) {
		ck_assert_uint_eq(sig_len, 64);
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
		ck_assert(es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1);
		der_len = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		ck_assert(der_len > 0);
	}
	ck_assert(EVP_DigestVerifyInit(ctx, NULL, strcmp(alg, "EdDSA") == 0 ? NULL : EVP_sha256(),
	                               NULL, key) == 1);
	ok = EVP_DigestVerify(ctx, der ? der : sig, der ? (size_t)der_len : sig_len,
	                      (const unsigned char *)token, (size_t)(d2 - token)) == 1;
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* RFC 7638's thumbprint of a JWK, computed here without ctl_jwk: the canonical text
 * written out by hand, SHA-256, base64url. */
static void thumbprint_here(const json_t *jwk, char *out, size_t size)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	char canon[2048];
	unsigned char md[32];
	unsigned int md_len;

#define M(name) json_string_value(json_object_get(jwk, name))
	if (strcmp(kty, "RSA") == 0)
		snprintf(canon, sizeof(canon), "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
		         M("e"), M("n"));
	else if (strcmp(kty, "EC") == 0)
		snprintf(canon, sizeof(canon),
		         "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", M("crv"),
		         M("x"), M("y"));
	else
		snprintf(canon, sizeof(canon), "{\"crv\":\"%s\",\"kty\":\"OKP\",\"x\":\"%s\"}",
		         M("crv"), M("x"));
#undef M
	ck_assert(EVP_Digest(canon, strlen(canon), md, &md_len, EVP_sha256(), NULL) == 1);
	ck_assert(pw_util_b64url_encode(md, md_len, out, size) == PW_OK);
}

/* The key of kid in the set at path (borrowed from *set, which the caller frees). */
static const json_t *key_of(const char *path, const char *kid, json_t **set)
{
	json_t *keys;

	*set = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	ck_assert_msg(*set != NULL, "%s is not JSON", path);
	keys = json_object_get(*set, "keys");
	ck_assert(json_is_array(keys));
	for (size_t i = 0; i < json_array_size(keys); i++) {
		const json_t *k = json_array_get(keys, i);
		if (strcmp(json_string_value(json_object_get(k, "kid")), kid) == 0)
			return k;
	}
	ck_abort_msg("no key %s in %s", kid, path);
	return NULL;
}

/* Checks a token minted for alg against the set at path: header, kid = thumbprint (unless
 * want_kid), the JWK's alg and use, the signature, and that a changed byte breaks it.
 * Returns the kid (static). */
static const char *check_minted(const char *token, const char *path, const char *alg,
                                const char *want_kid)
{
	static char kid[256];
	const char *d1 = strchr(token, '.');
	json_t *header, *claims, *set;
	char thumb[64];
	char *forged;

	ck_assert_msg(d1 != NULL && strchr(d1 + 1, '.') != NULL, "not a JWS: %s", token);
	header = json_of_b64(token, (size_t)(d1 - token));
	ck_assert_str_eq(json_string_value(json_object_get(header, "alg")), alg);
	ck_assert_str_eq(json_string_value(json_object_get(header, "typ")), "JWT");
	ck_assert_uint_eq(json_object_size(header), 3);
	snprintf(kid, sizeof(kid), "%s", json_string_value(json_object_get(header, "kid")));
	json_decref(header);
	claims = json_of_b64(d1 + 1, (size_t)(strchr(d1 + 1, '.') - d1 - 1));
	ck_assert_str_eq(json_string_value(json_object_get(claims, "sub")), "jwks@example.com");
	json_decref(claims);

	const json_t *jwk = key_of(path, kid, &set);
	thumbprint_here(jwk, thumb, sizeof(thumb));
	ck_assert_str_eq(kid, want_kid ? want_kid : thumb);
	ck_assert_str_eq(json_string_value(json_object_get(jwk, "alg")), alg);
	ck_assert_str_eq(json_string_value(json_object_get(jwk, "use")), "sig");
	EVP_PKEY *pub = pkey_of_jwk(jwk);
	ck_assert_msg(signature_ok(token, pub, alg), "%s: the signature does not verify", alg);
	/* The check above is real: the same token with one claim byte changed fails it. */
	forged = strdup(token);
	ck_assert_ptr_nonnull(forged);
	forged[d1 - token + 2] = forged[d1 - token + 2] == 'A' ? 'B' : 'A';
	ck_assert(!signature_ok(forged, pub, alg));
	free(forged);
	EVP_PKEY_free(pub);
	json_decref(set);
	return kid;
}

/* The token a successful run printed, without its newline (static). */
static const char *token_of(const token_run *r)
{
	static char tok[4096];
	size_t n = strlen(r->out);

	ck_assert_msg(r->rc == CTL_EXIT_OK, "exit %d: %s", r->rc, r->err);
	ck_assert_msg(r->err[0] == '\0', "stderr: %s", r->err);
	ck_assert_msg(n > 1 && n < sizeof(tok) && r->out[n - 1] == '\n' &&
	                  strchr(r->out, '\n') == r->out + n - 1,
	              "stdout is not one line: %s", r->out);
	memcpy(tok, r->out, n - 1);
	tok[n - 1] = '\0';
	return tok;
}

static size_t set_size(const char *path)
{
	json_t *set = json_load_file(path, 0, NULL);
	size_t n;

	ck_assert_ptr_nonnull(set);
	n = json_array_size(json_object_get(set, "keys"));
	json_decref(set);
	return n;
}

static const char *const algs[] = {"ES256", "RS256", "EdDSA"};

/* Each algorithm: a new key, its public JWK in the set, a token OpenSSL verifies with it. */
START_TEST(jwks_each_alg)
{
	char set[256], key[256];
	const char *alg = algs[_i];
	token_run r;
	struct stat st;

	snprintf(set, sizeof(set), "%s/jwks.json", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	const char *args[] = {"--sub", "jwks@example.com", "--jwks-out", set,     "--alg",
	                      alg,     "--key-out",        key,          "--ttl", "2h",
	                      NULL};
	run_token(&r, args);
	check_minted(token_of(&r), set, alg, NULL);
	ck_assert_uint_eq(set_size(set), 1);
	/* The private key is not in the output, and its file is the owner's alone. */
	ck_assert(strstr(r.out, "PRIVATE") == NULL);
	ck_assert(stat(key, &st) == 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert(stat(set, &st) == 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0644);
	token_run_free(&r);

	/* Signing again with the key written: the same kid, still one key in the set. */
	const char *again[] = {"--sub", "jwks@example.com", "--jwks-out", set, "--alg",
	                       alg,     "--key-in",         key,          NULL};
	json_t *before = json_load_file(set, 0, NULL), *after;
	run_token(&r, again);
	check_minted(token_of(&r), set, alg, NULL);
	after = json_load_file(set, 0, NULL);
	ck_assert(before != NULL && after != NULL && json_equal(before, after));
	json_decref(before);
	json_decref(after);
	token_run_free(&r);
}
END_TEST

/* A token of patientctl's own key carries exactly the HS256 token's claims. */
START_TEST(jwks_same_claims_as_hs256)
{
	pw_config cfg;
	EVP_PKEY *key = NULL;
	char why[256];
	char *hs, *es;
	json_t *c1, *c2;

	memset(&cfg, 0, sizeof(cfg));
	cfg.jwt_secret = "0123456789abcdef0123456789abcdef";
	cfg.jwt_owner_claim = "tenant";
	cfg.jwt_issuer = "https://issuer.example";
	cfg.jwt_audience = "patients";
	ck_assert(ctl_jwk_generate(CTL_JWK_ES256, &key, why, sizeof(why)) == PW_OK);
	hs = ctl_token_mint(&cfg, "a@example.com", 600, "patients:read", 1700000000);
	es = ctl_token_mint_jws(&cfg, key, CTL_JWK_ES256, "k1", "a@example.com", 600,
	                        "patients:read", 1700000000, why, sizeof(why));
	ck_assert(hs != NULL && es != NULL);
	c1 = json_of_b64(strchr(hs, '.') + 1, (size_t)(strrchr(hs, '.') - strchr(hs, '.') - 1));
	c2 = json_of_b64(strchr(es, '.') + 1, (size_t)(strrchr(es, '.') - strchr(es, '.') - 1));
	ck_assert_msg(json_equal(c1, c2), "claims differ");
	ck_assert_str_eq(json_string_value(json_object_get(c2, "tenant")), "a@example.com");
	ck_assert_str_eq(json_string_value(json_object_get(c2, "aud")), "patients");
	ck_assert_int_eq(json_integer_value(json_object_get(c2, "exp")), 1700000600);
	json_decref(c1);
	json_decref(c2);
	free(hs);
	free(es);
	EVP_PKEY_free(key);
}
END_TEST

/* A set of several keys: each run adds one and keeps the others; the same kid replaces. */
START_TEST(jwks_add_and_rotate)
{
	char set[256];
	token_run r;
	json_t *s1, *s2;

	snprintf(set, sizeof(set), "%s/rotating.json", dir);
	const char *first[] = {
	    "--sub", "jwks@example.com", "--jwks-out", set, "--alg", "ES256", "--kid", "k1", NULL};
	const char *second[] = {"--sub", "jwks@example.com", "--jwks-out", set, "--alg", "EdDSA",
	                        NULL};
	const char *replace[] = {
	    "--sub", "jwks@example.com", "--jwks-out", set, "--alg", "RS256", "--kid", "k1", NULL};
	run_token(&r, first);
	char tok1[4096];
	snprintf(tok1, sizeof(tok1), "%s", token_of(&r));
	check_minted(tok1, set, "ES256", "k1");
	token_run_free(&r);

	run_token(&r, second);
	const char *kid2 = check_minted(token_of(&r), set, "EdDSA", NULL);
	char k2[128];
	snprintf(k2, sizeof(k2), "%s", kid2);
	token_run_free(&r);
	ck_assert_uint_eq(set_size(set), 2);
	/* The first key still verifies its token. */
	check_minted(tok1, set, "ES256", "k1");

	/* Rotation under the same kid: k1 is now the RSA key, the Ed25519 key untouched. */
	const json_t *kept;
	kept = key_of(set, k2, &s1);
	json_t *kept_copy = json_deep_copy(kept);
	json_decref(s1);
	run_token(&r, replace);
	check_minted(token_of(&r), set, "RS256", "k1");
	token_run_free(&r);
	ck_assert_uint_eq(set_size(set), 2);
	ck_assert(json_equal(key_of(set, k2, &s2), kept_copy));
	ck_assert_str_eq(json_string_value(json_object_get(key_of(set, "k1", &s1), "kty")), "RSA");
	json_decref(s1);
	json_decref(s2);
	json_decref(kept_copy);
}
END_TEST

/* Writes key to dir/name as PEM (private, or only its public half); the path (static). */
static const char *pem_file(const char *name, EVP_PKEY *key, bool public_only)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert(public_only ? PEM_write_PUBKEY(f, key) == 1
	                      : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
	ck_assert(fclose(f) == 0);
	return path;
}

/* --key-in must hold a private key of the type --alg needs; the set is left as it was. */
START_TEST(jwks_key_in_of_the_wrong_type)
{
	char set[256];
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	char p_ec[256], p_ec384[256], p_ed[256], p_rsa[256], p_pub[256];

	ck_assert(ec != NULL && ec384 != NULL && ed != NULL && rsa1024 != NULL);
	snprintf(p_ec, sizeof(p_ec), "%s", pem_file("ec.pem", ec, false));
	snprintf(p_ec384, sizeof(p_ec384), "%s", pem_file("ec384.pem", ec384, false));
	snprintf(p_ed, sizeof(p_ed), "%s", pem_file("ed.pem", ed, false));
	snprintf(p_rsa, sizeof(p_rsa), "%s", pem_file("rsa1024.pem", rsa1024, false));
	snprintf(p_pub, sizeof(p_pub), "%s", pem_file("ecpub.pem", ec, true));
	snprintf(set, sizeof(set), "%s/jwks.json", dir);
	const char *ok[] = {"--sub", "jwks@example.com", "--jwks-out", set, "--alg",
	                    "ES256", "--key-in",         p_ec,         NULL};
	token_run r;
	run_token(&r, ok);
	check_minted(token_of(&r), set, "ES256", NULL);
	token_run_free(&r);

	struct {
		const char *alg, *pem;
	} wrong[] = {
	    {"RS256", p_ec},    /* EC for RSA */
	    {"EdDSA", p_ec},    /* EC for Ed25519 */
	    {"ES256", p_ed},    /* Ed25519 for EC */
	    {"ES256", p_ec384}, /* the wrong curve */
	    {"RS256", p_rsa},   /* RSA, too small */
	    {"ES256", p_pub},   /* no private key */
	    {"ES256", "/nonexistent/key.pem"},
	};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		const char *args[] = {"--sub",      "jwks@example.com", "--jwks-out", set, "--alg",
		                      wrong[i].alg, "--key-in",         wrong[i].pem, NULL};
		want_refused(args, "--key-in");
	}
	ck_assert_uint_eq(set_size(set), 1);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa1024);
}
END_TEST

/* Bad options and a --jwks-out file that is not a set: one line naming the option, exit 2,
 * nothing written. */
START_TEST(jwks_bad_options)
{
	char set[256], notset[256];

	snprintf(set, sizeof(set), "%s/jwks.json", dir);
	snprintf(notset, sizeof(notset), "%s", put("notset.json", "{\"keys\":{}}", 11));
#define S "--sub", "jwks@example.com"
	const char *no_alg[] = {S, "--jwks-out", set, NULL};
	const char *bad_alg[] = {S, "--jwks-out", set, "--alg", "HS256", NULL};
	const char *alg_alone[] = {S, "--alg", "ES256", NULL};
	const char *kid_alone[] = {S, "--kid", "k", NULL};
	const char *key_in_alone[] = {S, "--key-in", "k.pem", NULL};
	const char *key_out_alone[] = {S, "--key-out", "k.pem", NULL};
	const char *kid_space[] = {S, "--jwks-out", set, "--alg", "ES256", "--kid", "a b", NULL};
	const char *kid_empty[] = {S, "--jwks-out", set, "--alg", "ES256", "--kid", "", NULL};
	const char *in_and_out[] = {S,          "--jwks-out", set,         "--alg", "ES256",
	                            "--key-in", "a.pem",      "--key-out", "b.pem", NULL};
	const char *out_is_set[] = {S, "--jwks-out", set, "--alg", "ES256", "--key-out", set, NULL};
	const char *empty_out[] = {S, "--jwks-out", "", "--alg", "ES256", NULL};
	const char *no_sub[] = {"--jwks-out", set, "--alg", "ES256", NULL};
	const char *not_a_set[] = {S, "--jwks-out", notset, "--alg", "EdDSA", NULL};
#undef S
	want_refused(no_alg, "--alg");
	want_refused(bad_alg, "--alg");
	want_refused(alg_alone, "--alg");
	want_refused(kid_alone, "--kid");
	want_refused(key_in_alone, "--key-in");
	want_refused(key_out_alone, "--key-out");
	want_refused(kid_space, "--kid");
	want_refused(kid_empty, "--kid");
	want_refused(in_and_out, "--key-out");
	want_refused(out_is_set, "--key-out");
	want_refused(empty_out, "--jwks-out");
	want_refused(no_sub, "--sub");
	want_refused(not_a_set, "--jwks-out");
	ck_assert(access(set, F_OK) != 0);
	json_t *still = json_load_file(notset, 0, NULL);
	ck_assert(still != NULL && json_is_object(json_object_get(still, "keys")));
	json_decref(still);
}
END_TEST

/* RFC 7638 3.1's example: its members in another order and with kid and alg beside them. */
START_TEST(jwk_thumbprint_rfc7638)
{
	const char *example =
	    "{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtV"
	    "T86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93l"
	    "qt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajr"
	    "n1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-c"
	    "sFCur-kEgU8awapJzKnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
	const char *want = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
	json_t *jwk = json_loads(example, 0, NULL);
	char got[CTL_JWK_THUMBPRINT_SIZE], here[64];

	ck_assert_ptr_nonnull(jwk);
	ck_assert(ctl_jwk_thumbprint(jwk, got, sizeof(got)) == PW_OK);
	ck_assert_str_eq(got, want);
	/* The test's own thumbprint (used on minted keys above) agrees with the RFC too. */
	thumbprint_here(jwk, here, sizeof(here));
	ck_assert_str_eq(here, want);
	/* A JWK without a required member, or of another kty, has none. */
	json_object_del(jwk, "e");
	ck_assert(ctl_jwk_thumbprint(jwk, got, sizeof(got)) == PW_E_INVALID);
	json_object_set_new(jwk, "kty", json_string("oct"));
	ck_assert(ctl_jwk_thumbprint(jwk, got, sizeof(got)) == PW_E_INVALID);
	json_decref(jwk);
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

	/* RSA key generation takes a while, more under valgrind or a sanitizer. */
	TCase *jw = tcase_create("jwks");
	tcase_set_timeout(jw, 60);
	tcase_add_checked_fixture(jw, dir_up, dir_down);
	tcase_add_loop_test(jw, jwks_each_alg, 0, (int)(sizeof(algs) / sizeof(algs[0])));
	tcase_add_test(jw, jwks_same_claims_as_hs256);
	tcase_add_test(jw, jwks_add_and_rotate);
	tcase_add_test(jw, jwks_key_in_of_the_wrong_type);
	tcase_add_test(jw, jwks_bad_options);
	tcase_add_test(jw, jwk_thumbprint_rfc7638);
	suite_add_tcase(s, jw);
	return pw_check_run(s);
}
