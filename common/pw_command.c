/* Commands through the database: which transaction each goes in, and its reply. */
#include "pw_command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw_audit.h"
#include "pw_log.h"
#include "pw_queries.h"
#include "pw_reply.h"
#include "pw_writes.h"

pw_status pw_command_db(const pw_config *cfg, pw_db **out, char *errstr, size_t errstr_size)
{
	enum { ROOM = 12 };
	const pw_sql_stmt *stmts[ROOM] = {&pw_queries_get_stmt, &pw_queries_list_stmt,
	                                  &pw_audit_stmt, &pw_audit_refused_stmt};
	size_t n = 4;

	if (n + pw_writes_statement_count > ROOM) { /* a statement added without room: a bug */
		snprintf(errstr, errstr_size, "pw_command_db: room for %d statements", ROOM);
		return PW_E_INTERNAL;
	}
	for (size_t i = 0; i < pw_writes_statement_count; i++)
		stmts[n++] = pw_writes_statements[i];
	return pw_db_create(cfg, stmts, n, out, errstr, errstr_size);
}

/* 500 for one command whose own transaction failed for a reason retrying cannot fix. */
static pw_status answer_internal(pw_command *c, const char *why)
{
	pw_log_ctx ctx = PW_LOG_CTX_INIT;

	ctx.request_id = c->request_id;
	ctx.owner = c->owner[0] ? c->owner : NULL;
	PW_LOG_ERROR(&ctx, "%s failed: %s", c->command_type ? c->command_type : "command", why);
	/* Answered without an audit row: the transaction that would have held it failed.
	 * The log line above is the trace. */
	free(c->reply);
	c->reply = pw_reply_internal(c->request_id);
	c->status = 500;
	if (c->reply == NULL)
		return PW_E_NOMEM;
	c->done = true;
	return PW_OK;
}

/* ---- writes: creates, updates, deletes ----------------------------------------------------- */

static bool is_write(const pw_command *c)
{
	return c->kind == PW_COMMAND_CREATE || c->kind == PW_COMMAND_UPDATE ||
	       c->kind == PW_COMMAND_DELETE;
}

/* The reply the write batch decided for a write. */
static pw_status write_reply(pw_command *c, const pw_writes_item *it)
{
	const char *rid = c->request_id;

	c->status = it->status;
	switch (it->result) {
	case PW_WRITES_CREATED:
	case PW_WRITES_UPDATED:
		c->reply = pw_reply_patient(rid, it->status, &it->patient);
		break;
	case PW_WRITES_STORED: /* an earlier design's reply, byte for byte */
		c->reply = strdup(it->stored_reply);
		break;
	case PW_WRITES_DELETED:
		c->reply = pw_reply_deleted(rid, c->del->id, it->version, it->deleted_at);
		break;
	case PW_WRITES_NOT_FOUND:
		c->reply = pw_reply_not_found(rid);
		break;
	case PW_WRITES_VERSION_CONFLICT:
		c->reply = pw_reply_version_conflict(rid, it->version);
		break;
	case PW_WRITES_CONFLICT:
		c->reply = pw_reply_conflict(rid);
		break;
	case PW_WRITES_IDEMPOTENCY_CONFLICT:
		c->reply = pw_reply_idempotency_conflict(rid);
		break;
	case PW_WRITES_UNDECIDED:
		return PW_E_INTERNAL;
	}
	if (c->reply == NULL)
		return PW_E_NOMEM;
	c->done = true;
	return PW_OK;
}

/* One write batch over the commands cmds[idx[0..k)]. */
static pw_status writes_once(pw_db *db, pw_command *cmds, const size_t *idx, size_t k, char *errstr,
                             size_t errstr_size)
{
	static const pw_writes_kind kinds[] = {[PW_COMMAND_CREATE] = PW_WRITES_CREATE,
	                                       [PW_COMMAND_UPDATE] = PW_WRITES_UPDATE,
	                                       [PW_COMMAND_DELETE] = PW_WRITES_DELETE};
	pw_writes_item *items = calloc(k, sizeof(*items));
	pw_status st = PW_E_NOMEM;

	if (items == NULL)
		return st;
	for (size_t j = 0; j < k; j++) {
		const pw_command *c = &cmds[idx[j]];
		items[j] = (pw_writes_item){
		    .kind = kinds[c->kind],
		    .owner = c->owner,
		    .request_id = c->request_id,
		    .src_topic = c->src_topic,
		    .src_partition = c->src_partition,
		    .src_offset = c->src_offset,
		    .command_time = c->command_time,
		    .create = c->in,
		    .update = c->update,
		    .del = c->del,
		};
	}
	st = pw_writes_run(db, items, k, errstr, errstr_size);
	for (size_t j = 0; st == PW_OK && j < k; j++)
		st = write_reply(&cmds[idx[j]], &items[j]);
	pw_writes_clear(items, k);
	free(items);
	return st;
}

/* The writes not done yet, in one batch. When the database refuses the batch for a
 * reason other than an outage, it is run again one write at a time, in order, so that
 * only the write at fault is answered 500 and every other gets the answer it would have
 * had. */
static pw_status run_writes(pw_db *db, pw_command *cmds, size_t n, char *errstr, size_t errstr_size)
{
	size_t *idx = calloc(n ? n : 1, sizeof(*idx));
	size_t k = 0;
	pw_status st = PW_E_NOMEM;

	if (idx == NULL)
		return st;
	for (size_t i = 0; i < n; i++)
		if (!cmds[i].done && is_write(&cmds[i]))
			idx[k++] = i;
	st = k == 0 ? PW_OK : writes_once(db, cmds, idx, k, errstr, errstr_size);
	if (st == PW_E_INTERNAL && k == 1)
		st = answer_internal(&cmds[idx[0]], errstr);
	else if (st == PW_E_INTERNAL)
		for (size_t j = 0; j < k; j++) {
			st = writes_once(db, cmds, &idx[j], 1, errstr, errstr_size);
			if (st == PW_E_INTERNAL)
				st = answer_internal(&cmds[idx[j]], errstr);
			if (st != PW_OK)
				break;
		}
	free(idx);
	return st;
}

/* ---- everything else: one transaction a command -------------------------------------------- */

/* What a query found: its reply and the patients it showed, for the audit row. */
typedef struct answer {
	int status;
	char *reply;
	pw_util_buf ids; /**< PostgreSQL array literal of patient ids */
} answer;

static pw_status add_id(answer *a, int64_t id)
{
	char s[24];

	snprintf(s, sizeof(s), "%lld", (long long)id);
	return pw_db_array_add(&a->ids, s);
}

static pw_status do_get(pw_db *db, const pw_command *c, answer *a, char *errstr, size_t errstr_size)
{
	pw_patient p;
	bool found;
	pw_status st = pw_queries_get(db, c->owner, c->query->id, &p, &found, errstr, errstr_size);

	if (st != PW_OK)
		return st;
	a->status = found ? 200 : 404;
	a->reply =
	    found ? pw_reply_patient(c->request_id, 200, &p) : pw_reply_not_found(c->request_id);
	st = a->reply == NULL ? PW_E_NOMEM : found ? add_id(a, p.id) : PW_OK;
	if (found)
		pw_patient_clear(&p);
	return st;
}

static pw_status do_list(pw_db *db, const pw_cursor_key *key, const pw_command *c, answer *a,
                         char *errstr, size_t errstr_size)
{
	const pw_query *q = c->query;
	pw_patient *items = NULL;
	size_t n = 0;
	bool more = false;
	char cursor[PW_CURSOR_LEN + 1];
	pw_status st = pw_queries_list(db, c->owner, q, &items, &n, &more, errstr, errstr_size);

	if (st != PW_OK)
		return st;
	if (more)
		st = pw_cursor_encode(key, c->owner, q->has_dni ? q->dni : NULL, q->q,
		                      items[n - 1].id, cursor, sizeof(cursor));
	for (size_t i = 0; st == PW_OK && i < n; i++)
		st = add_id(a, items[i].id);
	if (st == PW_OK) {
		a->status = 200;
		a->reply = pw_reply_list(c->request_id, items, n, more ? cursor : NULL);
		st = a->reply ? PW_OK : PW_E_NOMEM;
	}
	pw_queries_free_page(items, n);
	return st;
}

/* One command in its own transaction with its audit row. On PW_OK the command is done.
 * It changes no patient, so its commit does not wait for the WAL flush: under a create
 * flood that wait, behind the batches' WAL, was most of a query's time in the database. */
static pw_status run_one(pw_db *db, const pw_cursor_key *key, pw_command *c, char *errstr,
                         size_t errstr_size)
{
	answer a = {c->status, NULL, {0}};
	pw_status st = pw_db_begin_unflushed(db, errstr, errstr_size);

	if (st == PW_OK)
		st = pw_db_set_owner(db, c->owner, errstr, errstr_size);
	if (st == PW_OK && c->kind == PW_COMMAND_GET)
		st = do_get(db, c, &a, errstr, errstr_size);
	else if (st == PW_OK && c->kind == PW_COMMAND_LIST)
		st = do_list(db, key, c, &a, errstr, errstr_size);
	if (st == PW_OK)
		st = pw_db_array_close(&a.ids);
	if (st == PW_OK) {
		pw_audit_row row = {c->owner,         c->request_id, c->command_type,
		                    a.status,         a.ids.p,       c->src_topic,
		                    c->src_partition, c->src_offset, c->command_time};
		st = pw_audit_insert(db, &row, errstr, errstr_size);
	}
	if (st == PW_OK)
		st = pw_db_commit(db, errstr, errstr_size);
	if (st != PW_OK) {
		pw_db_rollback(db);
		goto out;
	}
	if (c->kind != PW_COMMAND_REFUSED) {
		c->status = a.status;
		c->reply = a.reply;
		a.reply = NULL;
	}
	c->done = true;
out:
	free(a.reply);
	pw_util_buf_free(&a.ids);
	return st;
}

pw_status pw_command_run(pw_db *db, const pw_cursor_key *cursor_key, pw_command *cmds, size_t n,
                         char *errstr, size_t errstr_size)
{
	pw_status st;

	if (!pw_db_connected(db)) {
		snprintf(errstr, errstr_size, "not connected");
		return PW_E_RETRY;
	}
	st = run_writes(db, cmds, n, errstr, errstr_size);
	for (size_t i = 0; st == PW_OK && i < n; i++) {
		if (cmds[i].done || is_write(&cmds[i]))
			continue;
		st = run_one(db, cursor_key, &cmds[i], errstr, errstr_size);
		if (st == PW_E_INTERNAL)
			st = answer_internal(&cmds[i], errstr);
	}
	return st;
}

void pw_command_clear(pw_command *cmds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(cmds[i].reply);
		cmds[i].reply = NULL;
		cmds[i].status = 0;
		cmds[i].done = false;
	}
}
