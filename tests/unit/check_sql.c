/* Unit tests of pw_sql: named parameters become positional ones, casts, literals and
 * comments are left alone, mistakes are refused; every statement the worker runs
 * compiles, and binding reads the fields by name. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "pw_audit.h"
#include "pw_changes.h"
#include "pw_check_main.h"
#include "pw_creates.h"
#include "pw_queries.h"
#include "pw_sql.h"

typedef struct args {
	const char *owner, *id, *unused;
} args;

static const pw_sql_param two[] = {PW_SQL_PARAM(args, owner), PW_SQL_PARAM(args, id)};

static char *compiled(const char *text, pw_status want)
{
	pw_sql_stmt s = {"t", text, two, 2};
	char err[256] = "", *out = NULL;
	pw_status st = pw_sql_compile(&s, &out, err, sizeof(err));

	ck_assert_msg(st == want, "'%s': status %d, want %d (%s)", text, st, want, err);
	if (st != PW_OK)
		ck_assert_msg(err[0] != '\0' && out == NULL, "'%s': refused without a reason",
		              text);
	return out;
}

START_TEST(names_become_positions)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
	    {"SELECT :owner, :id", "SELECT $1, $2"},
	    {"WHERE id = :id AND owner_id = :owner OR x = :owner",
	     "WHERE id = $2 AND owner_id = $1 OR x = $1"},
	    {"SELECT :id::bigint, :owner::text[]", "SELECT $2::bigint, $1::text[]"},
	    {"SELECT ':id', \":owner\", :id, :owner", "SELECT ':id', \":owner\", $2, $1"},
	    {"SELECT 'it''s :id', :id, :owner", "SELECT 'it''s :id', $2, $1"},
	    {"SELECT to_char(t, 'HH24:MI:SS'), :id, :owner",
	     "SELECT to_char(t, 'HH24:MI:SS'), $2, $1"},
	    {"-- :nothing here\nSELECT :id, :owner", "-- :nothing here\nSELECT $2, $1"},
	    {"/* :no */ SELECT :id,:owner", "/* :no */ SELECT $2,$1"},
	    {"SELECT a[1:2], :id, :owner", "SELECT a[1:2], $2, $1"},
	    {"SELECT :owner_id_x", NULL}, /* a longer name is another name */
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *out = compiled(rows[i].in, rows[i].out ? PW_OK : PW_E_INVALID);
		if (rows[i].out != NULL)
			ck_assert_str_eq(out, rows[i].out);
		free(out);
	}
}
END_TEST

START_TEST(mistakes_are_refused)
{
	/* An unknown name, a parameter never used, a positional parameter. */
	free(compiled("SELECT :owner, :id, :nope", PW_E_INVALID));
	free(compiled("SELECT :owner", PW_E_INVALID));
	free(compiled("SELECT $1, :owner, :id", PW_E_INVALID));
	/* A quote left open swallows the rest: the placeholders in it are not seen. */
	free(compiled("SELECT :owner, ':id", PW_E_INVALID));
}
END_TEST

START_TEST(binding_reads_fields_by_name)
{
	pw_sql_stmt s = {"t", "SELECT :id, :owner", two, 2};
	args a = {"alice@example.com", "17", "x"};
	const char *values[2] = {NULL, NULL};

	pw_sql_bind(&s, &a, values);
	ck_assert_str_eq(values[0], "alice@example.com");
	ck_assert_str_eq(values[1], "17");
	a.owner = NULL; /* SQL NULL */
	pw_sql_bind(&s, &a, values);
	ck_assert_ptr_null(values[0]);
}
END_TEST

/* The statements in sql/ against the structs that bind them: every placeholder is a
 * field, every field is used, and no positional parameter slipped in. */
START_TEST(every_statement_compiles)
{
	const pw_sql_stmt *all[] = {&pw_creates_stmt, &pw_queries_get_stmt,   &pw_queries_list_stmt,
	                            &pw_audit_stmt,   &pw_audit_refused_stmt, &pw_changes_stmt};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		char err[256] = "", *out = NULL;
		ck_assert_msg(pw_sql_compile(all[i], &out, err, sizeof(err)) == PW_OK, "%s: %s",
		              all[i]->name ? all[i]->name : "list", err);
		char last[8];
		snprintf(last, sizeof(last), "$%zu", all[i]->nparams);
		ck_assert_msg(strstr(out, last) != NULL, "%s: no %s", all[i]->name, last);
		free(out);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sql");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, names_become_positions);
	tcase_add_test(tc, mistakes_are_refused);
	tcase_add_test(tc, binding_reads_fields_by_name);
	tcase_add_test(tc, every_statement_compiles);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(suite());
}
