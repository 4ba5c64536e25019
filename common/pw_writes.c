/* The write batch: one transaction, owner by owner, each owner's writes in their order. */
#include "pw_writes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pw_changes.h"
#include "pw_creates.h"
#include "pw_creates_routed.h"

const pw_sql_stmt *const pw_writes_statements[] = {&pw_creates_stmt, &pw_creates_prior_stmt,
                                                   &pw_creates_rows_stmt, &pw_changes_stmt,
                                                   &pw_changes_decide_stmt};
const size_t pw_writes_statement_count =
    sizeof(pw_writes_statements) / sizeof(pw_writes_statements[0]);

/* An item's place in the batch, sorted by owner, then arrival: each owner's writes in the
 * order they came, which is all the order one-at-a-time processing gives them (owners
 * never meet). */
typedef struct slot {
	const char *owner;
	size_t idx;
} slot;

static int by_owner(const void *x, const void *y)
{
	const slot *a = x, *b = y;
	int c = strcmp(a->owner, b->owner);

	return c != 0 ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* A run of creates goes in one statement: consecutive creates of the same source topic. */
static size_t create_run(const pw_writes_item *items, const slot *s, size_t n)
{
	size_t k = 1;

	while (k < n && items[s[k].idx].kind == PW_WRITES_CREATE &&
	       strcmp(items[s[k].idx].src_topic, items[s[0].idx].src_topic) == 0)
		k++;
	return k;
}

/* One owner's writes, s[0..n), in order: runs of creates and single changes. */
static pw_status run_owner(pw_db *db, pw_writes_item *items, const slot *s, size_t n, size_t *idx,
                           char *errstr, size_t errstr_size)
{
	pw_status st = pw_db_set_owner(db, s[0].owner, errstr, errstr_size);

	for (size_t at = 0; st == PW_OK && at < n;) {
		pw_writes_item *it = &items[s[at].idx];
		if (it->kind != PW_WRITES_CREATE) {
			st = pw_changes_run(db, it, errstr, errstr_size);
			at++;
			continue;
		}
		size_t k = create_run(items, &s[at], n - at);
		for (size_t m = 0; m < k; m++)
			idx[m] = s[at + m].idx;
		st = pw_creates_run(db, items, idx, k, errstr, errstr_size);
		at += k;
	}
	return st;
}

pw_status pw_writes_run(pw_db *db, pw_writes_item *items, size_t n, char *errstr,
                        size_t errstr_size)
{
	slot *order = calloc(n ? n : 1, sizeof(*order));
	size_t *idx = calloc(n ? n : 1, sizeof(*idx));
	pw_status st = PW_E_NOMEM;

	errstr[0] = '\0';
	pw_writes_clear(items, n);
	if (order == NULL || idx == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		order[i] = (slot){items[i].owner, i};
	qsort(order, n, sizeof(*order), by_owner);
	/* A generic plan for the create statement: its input is arrays, whose values never
	 * make another plan better, while planning it anew for each owner (the default for a
	 * statement whose custom plans look cheaper) costs more than running it. Twice the
	 * creates per second with 100 tenants (tests/bench). Local to this transaction: the
	 * list query wants custom plans (its q prefix picks the indexes). Not on Citus, which
	 * cannot make a distributed plan of a generic one. */
	st = pw_db_exec_text(
	    db, pw_db_citus(db) ? "BEGIN" : "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan",
	    errstr, errstr_size); /* one round trip */
	for (size_t s = 0; st == PW_OK && s < n;) {
		size_t e = s + 1;
		while (e < n && strcmp(order[e].owner, order[s].owner) == 0)
			e++;
		st = run_owner(db, items, &order[s], e - s, idx, errstr, errstr_size);
		s = e;
	}
	if (st == PW_OK)
		st = pw_db_commit(db, errstr, errstr_size);
out:
	if (st != PW_OK) {
		pw_db_rollback(db);
		pw_writes_clear(items, n);
	}
	free(order);
	free(idx);
	return st;
}

void pw_writes_clear(pw_writes_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pw_writes_item *it = &items[i];
		free(it->stored_reply);
		free(it->deleted_at);
		pw_patient_clear(&it->patient);
		it->stored_reply = it->deleted_at = NULL;
		it->result = PW_WRITES_UNDECIDED;
		it->status = 0;
		it->version = 0;
	}
}

/* An outcome's name in a kept detail, and what it means. */
static const struct {
	const char *name;
	pw_writes_result result;
} outcomes[] = {
    {"created", PW_WRITES_CREATED},
    {"updated", PW_WRITES_UPDATED},
    {"deleted", PW_WRITES_DELETED},
    {"not_found", PW_WRITES_NOT_FOUND},
    {"version_conflict", PW_WRITES_VERSION_CONFLICT},
    {"conflict", PW_WRITES_CONFLICT},
    {"idempotency_conflict", PW_WRITES_IDEMPOTENCY_CONFLICT},
};

/* The members an outcome carries, into it. */
static pw_status take_members(pw_writes_item *it, const json_t *d)
{
	json_t *v;

	switch (it->result) {
	case PW_WRITES_CREATED:
	case PW_WRITES_UPDATED:
		return pw_patient_from_json(json_object_get(d, "patient"), &it->patient);
	case PW_WRITES_DELETED:
		v = json_object_get(d, "deleted_at");
		if (!json_is_integer(json_object_get(d, "version")) || !json_is_string(v))
			return PW_E_INVALID;
		it->version = (int64_t)json_integer_value(json_object_get(d, "version"));
		return (it->deleted_at = strdup(json_string_value(v))) ? PW_OK : PW_E_NOMEM;
	case PW_WRITES_VERSION_CONFLICT:
		v = json_object_get(d, "current_version");
		if (!json_is_integer(v))
			return PW_E_INVALID;
		it->version = (int64_t)json_integer_value(v);
		return PW_OK;
	default:
		return PW_OK;
	}
}

pw_status pw_writes_take_detail(pw_writes_item *it, int status, const char *detail)
{
	json_t *d = json_loads(detail, 0, NULL);
	const char *name = json_string_value(json_object_get(d, "outcome"));
	pw_status st = PW_E_INVALID;

	for (size_t i = 0; name != NULL && i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		if (strcmp(name, outcomes[i].name) == 0) {
			it->result = outcomes[i].result;
			it->status = status;
			st = take_members(it, d);
		}
	json_decref(d);
	if (st == PW_E_INVALID)
		it->result = PW_WRITES_UNDECIDED;
	return st == PW_E_INVALID ? PW_E_INTERNAL : st;
}
