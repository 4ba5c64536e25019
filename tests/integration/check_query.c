/* patient.get and patient.list end to end: paging, filters, limits, cursors, the audit
 * trail and the prefix indexes, against the real broker, database and worker. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "pw_check_main.h"
#include "pw_queries.h"
#include "pw_sql.h"
#include "pw_testkit.h"

/* One worker serves every case; each case has its own owners and request ids. */

static void assert_absent(const char *json, const char *path)
{
	char *got = tk_json_get(json, path);
	ck_assert_msg(got == NULL, "%s: want it absent, got %s in %s", path, got, json);
	free(got);
}

/* Sends {request_id, type, token, payload} (payload is stolen) to topic. */
static void send_typed(const char *topic, const char *rid, const char *type, const char *tok,
                       json_t *payload)
{
	json_t *cmd = json_pack("{s:s, s:s, s:s, s:o}", "request_id", rid, "type", type, "token",
	                        tok, "payload", payload);
	ck_assert_ptr_nonnull(cmd);
	char *s = json_dumps(cmd, JSON_COMPACT);
	json_decref(cmd);
	ck_assert_ptr_nonnull(s);
	tk_send(tk_shared_producer, topic, NULL, s, strlen(s), NULL);
	free(s);
}

/* A query (payload stolen) and its reply's value (caller frees). rid_out (64 bytes, may be
 * NULL) gets the request id. */
static char *ask(const char *type, const char *tok, json_t *payload, char *rid_out)
{
	char rid[64];
	tk_records recs = {0};
	tk_unique(rid, sizeof(rid), "q-");
	send_typed(tk_shared.query, rid, type, tok, payload);
	const char *keys[] = {rid};
	tk_await(&tk_shared, tk_shared.replies, keys, 1, &recs);
	char *v = strdup(tk_find(&recs, rid, NULL)->value);
	tk_records_free(&recs);
	if (rid_out)
		snprintf(rid_out, 64, "%s", rid);
	return v;
}

static char *get_patient(const char *tok, long long id, char *rid_out)
{
	return ask("patient.get", tok, json_pack("{s:I}", "id", (json_int_t)id), rid_out);
}

/* A patient.list; limit < 0, and NULL strings, leave the field out. */
static char *list(const char *tok, int limit, const char *cursor, const char *dni, const char *q)
{
	json_t *p = json_object();
	if (limit >= 0)
		json_object_set_new(p, "limit", json_integer(limit));
	if (cursor)
		json_object_set_new(p, "cursor", json_string(cursor));
	if (dni)
		json_object_set_new(p, "dni", json_string(dni));
	if (q)
		json_object_set_new(p, "q", json_string(q));
	return ask("patient.list", tok, p, NULL);
}

/* The ids of a 200 list reply's items, in order; returns how many. */
static size_t item_ids(const char *reply, long long *ids, size_t max)
{
	json_t *root = json_loads(reply, 0, NULL);
	ck_assert_msg(root != NULL, "reply is not JSON: %s", reply);
	json_t *items = json_object_get(json_object_get(root, "data"), "items");
	ck_assert_msg(json_is_array(items), "no data.items in %s", reply);
	size_t n = json_array_size(items);
	ck_assert_msg(n <= max, "%zu items, room for %zu", n, max);
	for (size_t i = 0; i < n; i++) {
		json_t *id = json_object_get(json_array_get(items, i), "id");
		ck_assert_msg(json_is_integer(id), "item %zu without an id in %s", i, reply);
		ids[i] = (long long)json_integer_value(id);
	}
	json_decref(root);
	return n;
}

/* data.next_cursor of a list reply, or NULL when it is null (caller frees). */
static char *next_cursor(const char *reply)
{
	json_t *root = json_loads(reply, 0, NULL);
	ck_assert_ptr_nonnull(root);
	json_t *data = json_object_get(root, "data");
	ck_assert_msg(data != NULL && json_object_get(data, "next_cursor") != NULL,
	              "no data.next_cursor in %s", reply);
	json_t *c = json_object_get(data, "next_cursor");
	ck_assert_msg(json_is_null(c) || json_is_string(c), "next_cursor not a string: %s", reply);
	char *out = json_is_string(c) ? strdup(json_string_value(c)) : NULL;
	json_decref(root);
	return out;
}

/* A patient to create: NULL names take the kit's defaults. */
typedef struct seed {
	const char *nombre, *paterno, *materno, *dni;
} seed;

/* Creates every patient for tok's owner and fills ids from the 201 replies; rids (64
 * bytes each, may be NULL) get the request ids. */
static void create_all(const char *tok, const seed *s, size_t n, long long *ids, char (*rids)[64])
{
	char(*r)[64] = calloc(n, sizeof(*r));
	const char **keys = calloc(n, sizeof(*keys));
	tk_records recs = {0};
	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_nonnull(keys);
	for (size_t i = 0; i < n; i++) {
		json_t *p =
		    json_pack("{s:s, s:s, s:s, s:s}", "nombre", s[i].nombre ? s[i].nombre : "Ana",
		              "apellido_paterno", s[i].paterno ? s[i].paterno : "Quispe", "dni",
		              s[i].dni, "fecha_nacimiento", "1990-04-12");
		ck_assert_ptr_nonnull(p);
		if (s[i].materno)
			json_object_set_new(p, "apellido_materno", json_string(s[i].materno));
		tk_unique(r[i], sizeof(r[i]), "c-");
		keys[i] = r[i];
		send_typed(tk_shared.create, r[i], "patient.create", tok, p);
	}
	tk_await(&tk_shared, tk_shared.replies, keys, n, &recs);
	for (size_t i = 0; i < n; i++) {
		const char *v = tk_find(&recs, r[i], NULL)->value;
		tk_assert_json(v, "status", "201");
		char *id = tk_json_get(v, "data.id");
		ids[i] = strtoll(id, NULL, 10);
		free(id);
		if (rids)
			snprintf(rids[i], 64, "%s", r[i]);
	}
	tk_records_free(&recs);
	free(keys);
	free(r);
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

/* A list reply's ids equal want (sorted ascending here), in that order. */
static void expect_items(const char *reply, long long *want, size_t n)
{
	long long got[256];
	tk_assert_json(reply, "status", "200");
	size_t m = item_ids(reply, got, 256);
	qsort(want, n, sizeof(*want), cmp_ll);
	ck_assert_msg(m == n, "want %zu items, got %zu in %s", n, m, reply);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(got[i] == want[i], "item %zu: want id %lld, got %lld in %s", i,
		              want[i], got[i], reply);
}

static void expect_400(const char *reply, const char *field, const char *reason)
{
	tk_assert_json(reply, "status", "400");
	tk_assert_json(reply, "error.code", "validation_failed");
	char path[64];
	snprintf(path, sizeof(path), "error.fields.%s", field);
	if (reason)
		tk_assert_json(reply, path, reason);
	else {
		char *v = tk_json_get(reply, path);
		ck_assert_msg(v != NULL, "no %s in %s", path, reply);
		free(v);
	}
	assert_absent(reply, "data");
}

/* The whole result of sql as the admin user; fails the test on an error. */
static PGresult *pg_all(const char *sql)
{
	PGconn *c = PQconnectdb(tk_env("DATABASE_URL"));
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
	PGresult *r = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "SQL failed: %s: %s", sql,
	              PQerrorMessage(c));
	PQfinish(c);
	return r;
}

/* The SQLSTATE sql fails with (caller frees), or NULL when it succeeds. */
static char *pg_sqlstate(const char *sql)
{
	PGconn *c = PQconnectdb(tk_env("DATABASE_URL"));
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
	PGresult *r = tk_exec(c, sql);
	ExecStatusType s = PQresultStatus(r);
	char *out = NULL;
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		out = strdup(st ? st : "?????");
	}
	PQclear(r);
	PQfinish(c);
	return out;
}

/* 120 patients in pages of 50: 50, 50, 20, each id once, ascending; the other owner's
 * patients never show. */
START_TEST(list_pages_through_everything)
{
	enum { NA = 120, NB = 5 };
	char *a = tk_owner("pga"), *b = tk_owner("pgb");
	char *ta = tk_token(a, 3600, NULL), *tb = tk_token(b, 3600, NULL);
	seed sa[NA], sb[NB];
	char dni_a[NA][16], dni_b[NB][16];
	long long ida[NA], idb[NB], seen[NA + 1];
	size_t nseen = 0;

	for (int i = 0; i < NA; i++) {
		snprintf(dni_a[i], sizeof(dni_a[i]), "PA%d", i);
		sa[i] = (seed){NULL, NULL, NULL, dni_a[i]};
	}
	for (int i = 0; i < NB; i++) {
		snprintf(dni_b[i], sizeof(dni_b[i]), "PB%d", i);
		sb[i] = (seed){NULL, NULL, NULL, dni_b[i]};
	}
	create_all(tb, sb, NB, idb, NULL);
	create_all(ta, sa, NA, ida, NULL);

	const size_t want[3] = {50, 50, 20};
	char *cursor = NULL;
	for (int page = 0; page < 3; page++) {
		char *reply = list(ta, 50, cursor, NULL, NULL);
		tk_assert_json(reply, "status", "200");
		size_t n = item_ids(reply, seen + nseen, NA + 1 - nseen);
		ck_assert_msg(n == want[page], "page %d: %zu items, want %zu", page, n, want[page]);
		nseen += n;
		free(cursor);
		cursor = next_cursor(reply);
		if (page < 2)
			ck_assert_msg(cursor != NULL, "page %d: next_cursor null", page);
		else
			ck_assert_msg(cursor == NULL, "last page: next_cursor %s", cursor);
		free(reply);
	}
	qsort(ida, NA, sizeof(*ida), cmp_ll);
	ck_assert_uint_eq(nseen, NA);
	for (size_t i = 0; i < NA; i++) {
		ck_assert_msg(seen[i] == ida[i], "position %zu: id %lld, want %lld", i, seen[i],
		              ida[i]);
		for (size_t j = 0; j < NB; j++)
			ck_assert_msg(seen[i] != idb[j], "B's patient %lld listed for A", idb[j]);
	}
	free(a);
	free(b);
	free(ta);
	free(tb);
}
END_TEST

/* dni exact, q a case-insensitive prefix of any name with % and _ literal, q kept across
 * pages. */
START_TEST(list_filters)
{
	char *a = tk_owner("fla"), *b = tk_owner("flb");
	char *ta = tk_token(a, 3600, NULL), *tb = tk_token(b, 3600, NULL);
	const seed sa[] = {
	    {"Ñandú", "Zeta", NULL, "F1"},    /* 0: nombre, upper-case Ñ */
	    {"Beto", "ñoño", NULL, "F2"},     /* 1: apellido_paterno, lower-case ñ */
	    {"Carla", "Ruiz", "Ñuñez", "F3"}, /* 2: apellido_materno */
	    {"50%_off", "Xx", NULL, "F4"},    /* 3 */
	    {"500x", "Xx", NULL, "F5"},       /* 4 */
	    {"Ana", "Quispe", "Nandu", "F6"}, /* 5: n without the tilde */
	};
	const seed sb[] = {{"Ñandú", "Zeta", NULL, "FB1"}};
	long long ida[6], idb[1], want[6];
	char *r;

	create_all(ta, sa, 6, ida, NULL);
	create_all(tb, sb, 1, idb, NULL);

	r = list(ta, -1, NULL, "F2", NULL);
	want[0] = ida[1];
	expect_items(r, want, 1);
	free(r);
	/* Another owner's dni: nothing, and no cursor. */
	r = list(ta, -1, NULL, "FB1", NULL);
	expect_items(r, want, 0);
	ck_assert_ptr_null(next_cursor(r));
	free(r);

	const char *enye[] = {"ñ", "Ñ"};
	for (int i = 0; i < 2; i++) {
		r = list(ta, -1, NULL, NULL, enye[i]);
		want[0] = ida[0], want[1] = ida[1], want[2] = ida[2];
		expect_items(r, want, 3);
		free(r);
	}
	/* Case-insensitive past the first character, accent-sensitive. */
	r = list(ta, -1, NULL, NULL, "ñANDÚ");
	want[0] = ida[0];
	expect_items(r, want, 1);
	free(r);
	r = list(ta, -1, NULL, NULL, "nand");
	want[0] = ida[5];
	expect_items(r, want, 1);
	free(r);
	/* A prefix, not a substring. */
	r = list(ta, -1, NULL, NULL, "nd");
	expect_items(r, want, 0);
	free(r);
	/* % and _ are literal. */
	r = list(ta, -1, NULL, NULL, "50%_");
	want[0] = ida[3];
	expect_items(r, want, 1);
	free(r);
	r = list(ta, -1, NULL, NULL, "50%");
	want[0] = ida[3];
	expect_items(r, want, 1);
	free(r);
	r = list(ta, -1, NULL, NULL, "5_0");
	expect_items(r, want, 0);
	free(r);
	r = list(ta, -1, NULL, NULL, "50");
	want[0] = ida[3], want[1] = ida[4];
	expect_items(r, want, 2);
	free(r);

	/* q with a cursor: one match per page, the filter kept. */
	long long matches[3] = {ida[0], ida[1], ida[2]};
	qsort(matches, 3, sizeof(*matches), cmp_ll);
	char *cursor = NULL;
	for (int page = 0; page < 3; page++) {
		r = list(ta, 1, cursor, NULL, "ñ");
		want[0] = matches[page];
		expect_items(r, want, 1);
		free(cursor);
		cursor = next_cursor(r);
		if (page < 2)
			ck_assert_msg(cursor != NULL, "page %d: next_cursor null", page);
		else
			ck_assert_msg(cursor == NULL, "last page: next_cursor %s", cursor);
		free(r);
	}
	free(a);
	free(b);
	free(ta);
	free(tb);
}
END_TEST

START_TEST(list_limits)
{
	char *o = tk_owner("lim");
	char *tok = tk_token(o, 3600, NULL);
	const seed s[] = {{NULL, NULL, NULL, "L1"}, {NULL, NULL, NULL, "L2"}};
	long long ids[2], want[2];
	char *r, *c;

	create_all(tok, s, 2, ids, NULL);
	r = list(tok, 0, NULL, NULL, NULL);
	expect_400(r, "limit", NULL);
	free(r);
	r = list(tok, 201, NULL, NULL, NULL);
	expect_400(r, "limit", NULL);
	free(r);
	r = list(tok, 1, NULL, NULL, NULL);
	want[0] = ids[0] < ids[1] ? ids[0] : ids[1];
	expect_items(r, want, 1);
	c = next_cursor(r);
	ck_assert_msg(c != NULL, "limit 1 of 2: next_cursor null in %s", r);
	free(c);
	free(r);
	r = list(tok, 200, NULL, NULL, NULL);
	want[0] = ids[0], want[1] = ids[1];
	expect_items(r, want, 2);
	ck_assert_ptr_null(next_cursor(r));
	free(r);
	free(tok);
	free(o);
}
END_TEST

/* A cursor is bound to its bytes, its owner and its filters. */
START_TEST(list_cursor_tampering)
{
	char *a = tk_owner("cta"), *b = tk_owner("ctb");
	char *ta = tk_token(a, 3600, NULL), *tb = tk_token(b, 3600, NULL);
	const seed sa[] = {
	    {NULL, NULL, NULL, "T1"}, {NULL, NULL, NULL, "T2"}, {NULL, NULL, NULL, "T3"}};
	const seed sb[] = {{NULL, NULL, NULL, "T1"}, {NULL, NULL, NULL, "T2"}};
	long long ida[3], idb[2], want[3];
	char *r;

	create_all(ta, sa, 3, ida, NULL);
	create_all(tb, sb, 2, idb, NULL);
	qsort(ida, 3, sizeof(*ida), cmp_ll);

	r = list(ta, 1, NULL, NULL, NULL);
	char *cursor = next_cursor(r);
	ck_assert_msg(cursor != NULL, "no cursor in %s", r);
	free(r);
	/* The real cursor works. */
	r = list(ta, 1, cursor, NULL, NULL);
	want[0] = ida[1];
	expect_items(r, want, 1);
	free(r);

	/* One character changed, still base64url. */
	char *forged = strdup(cursor);
	size_t at = strlen(forged) / 2;
	forged[at] = forged[at] == 'A' ? 'B' : 'A';
	r = list(ta, 1, forged, NULL, NULL);
	expect_400(r, "cursor", "invalid cursor");
	free(r);
	free(forged);

	/* Another owner with A's cursor: refused, none of A's rows. */
	r = list(tb, 1, cursor, NULL, NULL);
	expect_400(r, "cursor", "invalid cursor");
	for (int i = 0; i < 3; i++) {
		char id[32];
		snprintf(id, sizeof(id), "\"id\":%lld", ida[i]);
		ck_assert_msg(strstr(r, id) == NULL, "A's id %lld in B's reply %s", ida[i], r);
	}
	free(r);

	/* The same cursor with a q it was not made for. */
	r = list(ta, 1, cursor, NULL, "Ana");
	expect_400(r, "cursor", "invalid cursor");
	free(r);
	free(cursor);
	/* A cursor made for one q, reused with another. */
	r = list(ta, 1, NULL, NULL, "Ana");
	cursor = next_cursor(r);
	ck_assert_msg(cursor != NULL, "no cursor in %s", r);
	free(r);
	r = list(ta, 1, cursor, NULL, "An");
	expect_400(r, "cursor", "invalid cursor");
	free(r);
	r = list(ta, 1, cursor, NULL, "Ana");
	want[0] = ida[1];
	expect_items(r, want, 1);
	free(r);
	free(cursor);
	free(a);
	free(b);
	free(ta);
	free(tb);
}
END_TEST

/* Copies reply with its request_id removed, as compact JSON with sorted keys. */
static char *without_request_id(const char *reply)
{
	json_t *root = json_loads(reply, 0, NULL);
	ck_assert_ptr_nonnull(root);
	json_object_del(root, "request_id");
	char *s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(root);
	return s;
}

START_TEST(get_own_other_and_missing)
{
	char *a = tk_owner("gta"), *b = tk_owner("gtb");
	char *ta = tk_token(a, 3600, NULL), *tb = tk_token(b, 3600, NULL);
	const seed sa[] = {{"Lucía", "Mamani", "Huanca", "G1"}};
	long long id;
	char rid[64], want_id[32], *r;

	create_all(ta, sa, 1, &id, NULL);
	snprintf(want_id, sizeof(want_id), "%lld", id);
	r = get_patient(ta, id, rid);
	tk_assert_json(r, "status", "200");
	tk_assert_json(r, "request_id", rid);
	tk_assert_json(r, "data.id", want_id);
	tk_assert_json(r, "data.owner_id", a);
	tk_assert_json(r, "data.nombre", "Lucía");
	tk_assert_json(r, "data.apellido_paterno", "Mamani");
	tk_assert_json(r, "data.apellido_materno", "Huanca");
	tk_assert_json(r, "data.dni", "G1");
	tk_assert_json(r, "data.fecha_nacimiento", "1990-04-12");
	tk_assert_json(r, "data.sexo", "M");
	free(r);

	char rid_other[64], rid_missing[64];
	char *other = get_patient(tb, id, rid_other);
	char *missing = get_patient(tb, 9223372036854775000LL, rid_missing);
	tk_assert_json(other, "status", "404");
	tk_assert_json(other, "error.code", "not_found");
	tk_assert_json(other, "request_id", rid_other);
	assert_absent(other, "data");
	tk_assert_json(missing, "status", "404");
	tk_assert_json(missing, "request_id", rid_missing);
	/* The same answer whether another owner has the id or nobody does. */
	char *x = without_request_id(other), *y = without_request_id(missing);
	ck_assert_str_eq(x, y);
	free(x);
	free(y);
	free(other);
	free(missing);
	free(a);
	free(b);
	free(ta);
	free(tb);
}
END_TEST

/* One audit row per answered command, keyed by its record; append-only for the worker. */
START_TEST(audit_rows_for_every_answer)
{
	char *o = tk_owner("aud");
	char *tok = tk_token(o, 3600, NULL);
	const seed s[] = {{NULL, NULL, NULL, "AU1"}};
	long long id;
	char rids[3][64], sql[1024], want_ids[32];
	char *r;

	create_all(tok, s, 1, &id, rids);
	r = get_patient(tok, id, rids[1]);
	tk_assert_json(r, "status", "200");
	free(r);
	r = get_patient(tok, 9223372036854775000LL, rids[2]);
	tk_assert_json(r, "status", "404");
	free(r);

	snprintf(sql, sizeof(sql),
	         "SELECT request_id, command_type, status, patient_ids::text, source_topic,"
	         " source_partition, source_offset FROM patient_audit WHERE owner_id = '%s'"
	         " ORDER BY answered_at",
	         o);
	PGresult *res = pg_all(sql);
	ck_assert_int_eq(PQntuples(res), 3);
	snprintf(want_ids, sizeof(want_ids), "{%lld}", id);
	const char *types[3] = {"patient.create", "patient.get", "patient.get"};
	const char *statuses[3] = {"201", "200", "404"};
	const char *ids[3] = {want_ids, want_ids, "{}"};
	const char *topics[3] = {tk_shared.create, tk_shared.query, tk_shared.query};
	for (int i = 0; i < 3; i++) {
		ck_assert_str_eq(PQgetvalue(res, i, 0), rids[i]);
		ck_assert_str_eq(PQgetvalue(res, i, 1), types[i]);
		ck_assert_str_eq(PQgetvalue(res, i, 2), statuses[i]);
		ck_assert_str_eq(PQgetvalue(res, i, 3), ids[i]);
		ck_assert_str_eq(PQgetvalue(res, i, 4), topics[i]);
		ck_assert_int_ge(atoi(PQgetvalue(res, i, 5)), 0);
		ck_assert_int_ge(strtoll(PQgetvalue(res, i, 6), NULL, 10), 0);
		for (int j = 0; j < i; j++)
			ck_assert_msg(strcmp(PQgetvalue(res, i, 4), PQgetvalue(res, j, 4)) != 0 ||
			                  strcmp(PQgetvalue(res, i, 5), PQgetvalue(res, j, 5)) !=
			                      0 ||
			                  strcmp(PQgetvalue(res, i, 6), PQgetvalue(res, j, 6)) != 0,
			              "rows %d and %d share a source record", j, i);
	}
	PQclear(res);

	/* An unauthenticated query is audited with no owner. */
	char rid401[64];
	r = get_patient("not-a-token", id, rid401);
	tk_assert_json(r, "status", "401");
	free(r);
	snprintf(sql, sizeof(sql),
	         "SELECT owner_id IS NULL, status, command_type, source_topic FROM patient_audit"
	         " WHERE request_id = '%s'",
	         rid401);
	res = pg_all(sql);
	ck_assert_int_eq(PQntuples(res), 1);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "t");
	ck_assert_str_eq(PQgetvalue(res, 0, 1), "401");
	ck_assert_str_eq(PQgetvalue(res, 0, 3), tk_shared.query);
	PQclear(res);

	/* A type that is not the contract's is recorded as no type at all (NULL), its 400 with
	 * the owner it came from. */
	char rid_unknown[64];
	r = ask("patient.rename", tok, json_pack("{s:I}", "id", (json_int_t)id), rid_unknown);
	tk_assert_json(r, "status", "400");
	free(r);
	snprintf(sql, sizeof(sql),
	         "SELECT command_type IS NULL, status, owner_id FROM patient_audit"
	         " WHERE request_id = '%s'",
	         rid_unknown);
	res = pg_all(sql);
	ck_assert_int_eq(PQntuples(res), 1);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "t");
	ck_assert_str_eq(PQgetvalue(res, 0, 1), "400");
	ck_assert_str_eq(PQgetvalue(res, 0, 2), o);
	PQclear(res);

	/* The worker's role can neither change nor remove the trail. */
	const char *changes[2] = {"UPDATE patient_audit_tenant SET status = 1",
	                          "DELETE FROM patient_audit_tenant"};
	for (int i = 0; i < 2; i++) {
		snprintf(sql, sizeof(sql),
		         "BEGIN; SET LOCAL ROLE patients_app;"
		         " SET LOCAL app.owner_id = '%s'; %s;",
		         o, changes[i]);
		char *state = pg_sqlstate(sql);
		ck_assert_msg(state != NULL && strcmp(state, "42501") == 0,
		              "%s as patients_app: SQLSTATE %s, want 42501", changes[i],
		              state ? state : "(none: it succeeded)");
		free(state);
	}
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM patient_audit WHERE owner_id = '%s'", o);
	char *n = tk_sql(sql);
	ck_assert_str_eq(n, "4");
	free(n);
	free(tok);
	free(o);
}
END_TEST

/* EXPLAIN of the list statement the worker sends (sql/list.sql through pw_sql, unprepared
 * so planned with its values), as the worker's role with the owner set; fails unless an
 * index condition of the plan holds want. Parameters are found by name, so a reordering cannot fool
 * it. */
static void explain_list(const char *owner, const char *dni, const char *pattern, const char *want)
{
	const pw_sql_stmt *s = &pw_queries_list_stmt;
	char err[256], *text = NULL, sql[8192];
	const char *values[8] = {NULL};
	int found = 0;

	ck_assert_msg(pw_sql_compile(s, &text, err, sizeof(err)) == PW_OK, "%s", err);
	snprintf(sql, sizeof(sql), "EXPLAIN (COSTS OFF) %s", text);
	free(text);
	ck_assert_uint_le(s->nparams, 8);
	for (size_t i = 0; i < s->nparams; i++) {
		const char *n = s->params[i].name;
		values[i] = strcmp(n, "owner") == 0      ? owner
		            : strcmp(n, "after_id") == 0 ? "0"
		            : strcmp(n, "dni") == 0      ? dni
		            : strcmp(n, "pattern") == 0  ? pattern
		            : strcmp(n, "limit") == 0    ? "51"
		                                         : "unknown";
		ck_assert_msg(strcmp(values[i] ? values[i] : "", "unknown") != 0,
		              "list parameter %s not known to the test", n);
	}
	PGconn *c = PQconnectdb(tk_env("DATABASE_URL"));
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
	PQclear(PQexec(c, "BEGIN; SET LOCAL ROLE patients_app"));
	/* As the worker scopes its transactions (a SET LOCAL reaches Citus's workers). */
	char *lit = PQescapeLiteral(c, owner, strlen(owner));
	ck_assert_ptr_nonnull(lit);
	char set[512];
	snprintf(set, sizeof(set), "SET LOCAL app.owner_id = %s", lit);
	PQfreemem(lit);
	PQclear(PQexec(c, set));
	PGresult *r = PQexecParams(c, sql, (int)s->nparams, NULL, values, NULL, NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "EXPLAIN failed: %s",
	              PQerrorMessage(c));
	fprintf(stderr, "worker's list plan (dni %s, q %s):\n", dni ? dni : "-",
	        pattern ? pattern : "-");
	int one_task = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		fprintf(stderr, "  %s\n", PQgetvalue(r, i, 0));
		found |= strstr(PQgetvalue(r, i, 0), "Index Cond: ") != NULL &&
		         strstr(PQgetvalue(r, i, 0), want) != NULL;
		one_task |= strstr(PQgetvalue(r, i, 0), "Task Count: 1") != NULL;
		ck_assert_msg(strstr(PQgetvalue(r, i, 0), "::text IS NULL") == NULL,
		              "an absent filter was not folded away: %s", PQgetvalue(r, i, 0));
		/* On Citus the shard holds the few rows the tests put there: its planner may
		 * read them all; what matters there is that one shard is read. */
		ck_assert_msg(tk_citus() || strstr(PQgetvalue(r, i, 0), "Seq Scan") == NULL,
		              "the worker's list reads the whole table: %s", PQgetvalue(r, i, 0));
	}
	PQclear(r);
	PQclear(PQexec(c, "ROLLBACK"));
	PQfinish(c);
	if (tk_citus())
		ck_assert_msg(one_task, "on Citus the worker's list is not one task on one shard");
	else
		ck_assert_msg(found, "the worker's list plan has no %s", want);
}

/* The list's q predicate is answered from the prefix indexes of migration 003. */
/* A query's transaction (its audit row alone) commits without waiting for its WAL to
 * reach the disk, a create's waits (issue 15): a trigger of this test's own, on both
 * tables and for this owner only, records the synchronous_commit each row was written
 * under. */
START_TEST(query_commit_does_not_wait_for_the_flush)
{
	char *o = tk_owner("flush");
	char *tok = tk_token(o, 3600, NULL);
	const seed s[] = {{NULL, NULL, NULL, "FL1"}};
	long long id;
	char rids[2][64], sql[2048];

	if (tk_citus()) {
		/* The trigger that sees each row's setting cannot go on a distributed table. */
		fprintf(stderr, "query_commit_does_not_wait_for_the_flush: not run on Citus "
		                "(no triggers on distributed tables)\n");
		free(tok);
		free(o);
		return;
	}
	/* All in a schema of the test's own, dropped with its triggers at the end: the
	 * schema's tables are checked elsewhere (integration.isolation). */
	free(tk_sql("DROP SCHEMA IF EXISTS pw_test_flush CASCADE; CREATE SCHEMA pw_test_flush; "
	            "CREATE TABLE pw_test_flush.seen (request_id text, mode text)"));
	free(tk_sql("CREATE FUNCTION pw_test_flush.record() RETURNS trigger LANGUAGE plpgsql "
	            "SECURITY DEFINER SET search_path = pw_test_flush AS $$ BEGIN "
	            "INSERT INTO seen VALUES (NEW.request_id, "
	            "current_setting('synchronous_commit')); RETURN NULL; END $$"));
	const char *tables[] = {"patients", "patient_audit_tenant"};
	for (int i = 0; i < 2; i++) {
		snprintf(sql, sizeof(sql),
		         "CREATE TRIGGER pw_test_flush AFTER INSERT ON %s FOR EACH ROW "
		         "WHEN (NEW.owner_id = '%s') EXECUTE FUNCTION pw_test_flush.record()",
		         tables[i], o);
		free(tk_sql(sql));
	}

	create_all(tok, s, 1, &id, rids);
	char *r = get_patient(tok, id, rids[1]);
	tk_assert_json(r, "status", "200");
	free(r);

	char *modes[2];
	for (int i = 0; i < 2; i++) {
		snprintf(sql, sizeof(sql),
		         "SELECT string_agg(mode, ',') FROM pw_test_flush.seen WHERE request_id = "
		         "'%s'",
		         rids[i]);
		modes[i] = tk_sql(sql);
	}
	/* Cleaned up before asserting, so a failure leaves no trigger behind. */
	free(tk_sql("DROP SCHEMA pw_test_flush CASCADE"));
	ck_assert_msg(modes[0] != NULL && strcmp(modes[0], "on") == 0,
	              "the create's row was written under synchronous_commit '%s', want on",
	              modes[0] ? modes[0] : "(no row)");
	ck_assert_msg(modes[1] != NULL && strcmp(modes[1], "off") == 0,
	              "the get's audit row was written under synchronous_commit '%s', want off",
	              modes[1] ? modes[1] : "(no row)");
	free(modes[0]);
	free(modes[1]);
	free(tok);
	free(o);
}
END_TEST

START_TEST(q_uses_prefix_index)
{
	char *o = tk_owner("idx");
	char sql[2048];

	/* As the admin user: Citus copies an INSERT ... SELECT of many rows through the
	 * coordinator, which row-level security does not allow; the owner is named here. */
	snprintf(sql, sizeof(sql),
	         "INSERT INTO patients (owner_id, nombre, apellido_paterno, dni, fecha_nacimiento)"
	         " SELECT '%s', 'n' || g, 'p' || g, 'd' || g, '1990-01-01'"
	         " FROM generate_series(1, 300) g",
	         o);
	free(tk_sql(sql));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM patients WHERE owner_id = '%s'", o);
	char *n = tk_sql(sql);
	ck_assert_str_eq(n, "300");
	free(n);
	free(tk_sql("ANALYZE patients"));

	snprintf(sql, sizeof(sql),
	         "EXPLAIN (COSTS OFF) SELECT id FROM patients WHERE owner_id = '%s' AND id > 0"
	         " AND (lower(nombre) LIKE lower('n12%%') OR lower(apellido_paterno) LIKE"
	         " lower('n12%%') OR lower(apellido_materno) LIKE lower('n12%%'))"
	         " ORDER BY id LIMIT 51",
	         o);
	PGresult *res = pg_all(sql);
	int found = 0;
	fprintf(stderr, "q plan:\n");
	int one_task = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		fprintf(stderr, "  %s\n", PQgetvalue(res, i, 0));
		found |= strstr(PQgetvalue(res, i, 0), "patients_nombre_prefix") != NULL;
		one_task |= strstr(PQgetvalue(res, i, 0), "Task Count: 1") != NULL;
	}
	PQclear(res);
	if (tk_citus())
		/* On Citus: the query goes to the owner's shard alone (router-planned). Which scan
		 * runs there is the shard's planner's choice over the few rows the test put in it.
		 */
		ck_assert_msg(one_task, "on Citus the q plan is not one task on one shard");
	else
		ck_assert_msg(found, "the plan does not use patients_nombre_prefix");
	/* The worker's own statement, as the worker's role sends it: an index scan of this
	 * owner's rows, the absent filter folded away. Not the prefix ranges above: LIKE is
	 * not leakproof, so row-level security keeps it above its own qual, as a filter over
	 * the owner's rows (README, "Queries"). */
	explain_list(o, NULL, "n12%", "(owner_id = '");
	explain_list(o, "d7", NULL, "(owner_id = '");
	free(o);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("query");
	TCase *tc = tcase_create("contract");
	tk_shared_fixtures(tc);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, list_pages_through_everything);
	tcase_add_test(tc, list_filters);
	tcase_add_test(tc, list_limits);
	tcase_add_test(tc, list_cursor_tampering);
	tcase_add_test(tc, get_own_other_and_missing);
	tcase_add_test(tc, audit_rows_for_every_answer);
	tcase_add_test(tc, query_commit_does_not_wait_for_the_flush);
	tcase_add_test(tc, q_uses_prefix_index);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
