/* The two reads: one patient by id, one page of a list. */
#include "pw_queries.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct get_args {
	const char *owner, *id;
} get_args;

static const pw_sql_param get_params[] = {PW_SQL_PARAM(get_args, owner),
                                          PW_SQL_PARAM(get_args, id)};

const pw_sql_stmt pw_queries_get_stmt = {"pw_get", pw_sql_text_get, get_params, 2};

typedef struct list_args {
	const char *owner, *after_id, *dni, *pattern, *limit;
} list_args;

static const pw_sql_param list_params[] = {
    PW_SQL_PARAM(list_args, owner), PW_SQL_PARAM(list_args, after_id), PW_SQL_PARAM(list_args, dni),
    PW_SQL_PARAM(list_args, pattern), PW_SQL_PARAM(list_args, limit)};

/* Unprepared: planned with its values, see sql/list.sql. */
const pw_sql_stmt pw_queries_list_stmt = {NULL, pw_sql_text_list, list_params, 5};

pw_status pw_queries_get(pw_db *db, const char *owner, int64_t id, pw_patient *out, bool *found,
                         char *errstr, size_t errstr_size)
{
	char id_s[24];
	get_args a = {owner, id_s};
	PGresult *r = NULL;
	pw_status st;

	*found = false;
	snprintf(id_s, sizeof(id_s), "%" PRId64, id);
	st = pw_db_exec(db, &pw_queries_get_stmt, &a, &r, errstr, errstr_size);
	if (st == PW_OK && PQntuples(r) == 1) {
		st = pw_db_patient(r, 0, out);
		*found = st == PW_OK;
	}
	PQclear(r);
	return st;
}

/* The LIKE pattern of a literal prefix: the escape character, % and _ escaped. */
static char *prefix_pattern(const char *q)
{
	char *out = malloc(2 * strlen(q) + 2);
	char *w = out;

	if (out == NULL)
		return NULL;
	for (const char *p = q; *p; p++) {
		if (*p == '\\' || *p == '%' || *p == '_')
			*w++ = '\\';
		*w++ = *p;
	}
	*w++ = '%';
	*w = '\0';
	return out;
}

pw_status pw_queries_list(pw_db *db, const char *owner, const pw_query *q, pw_patient **items,
                          size_t *n, bool *more, char *errstr, size_t errstr_size)
{
	char after[24], limit[16];
	char *pattern = NULL;
	list_args a = {owner, after, q->has_dni ? q->dni : NULL, NULL, limit};
	PGresult *r = NULL;
	pw_patient *page = NULL;
	size_t shown = 0;
	pw_status st = PW_E_NOMEM;

	*items = NULL;
	*n = 0;
	*more = false;
	snprintf(after, sizeof(after), "%" PRId64, q->after_id);
	/* One more row than asked tells whether there is a next page. */
	snprintf(limit, sizeof(limit), "%d", q->limit + 1);
	if (q->q != NULL && (a.pattern = pattern = prefix_pattern(q->q)) == NULL)
		goto out;
	st = pw_db_exec(db, &pw_queries_list_stmt, &a, &r, errstr, errstr_size);
	if (st != PW_OK)
		goto out;
	size_t rows = (size_t)PQntuples(r);
	size_t want = rows > (size_t)q->limit ? (size_t)q->limit : rows;
	st = PW_E_NOMEM;
	if ((page = calloc(want ? want : 1, sizeof(*page))) == NULL)
		goto out;
	for (st = PW_OK; shown < want && st == PW_OK; shown++)
		st = pw_db_patient(r, (int)shown, &page[shown]);
	if (st != PW_OK)
		goto out;
	*items = page;
	*n = shown;
	*more = rows > want;
	page = NULL;
out:
	pw_queries_free_page(page, shown);
	PQclear(r);
	free(pattern);
	return st;
}

void pw_queries_free_page(pw_patient *items, size_t n)
{
	for (size_t i = 0; items != NULL && i < n; i++)
		pw_patient_clear(&items[i]);
	free(items);
}
