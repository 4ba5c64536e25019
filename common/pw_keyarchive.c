/* The archive's SQL, parameterised, one transaction per sync. */
#include "pw_keyarchive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw_log.h"
#include "pw_util.h"

PGconn *pw_keyarchive_connect(const pw_config *cfg, char *err, size_t err_size)
{
	/* Bounded: the ring holds its fetch lock while it connects, and the reload a token's
	 * unknown kid asked for (a replay's, in the call) waits for that lock. */
	const char *const keys[] = {"dbname", "connect_timeout", NULL};
	const char *const vals[] = {cfg->database_url, "5", NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *r = NULL;
	char *role = NULL;

	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		/* libpq's message names the host, never the password. */
		snprintf(err, err_size, "key archive: %s", c ? PQerrorMessage(c) : "out of memory");
		goto fail;
	}
	role = PQescapeIdentifier(c, cfg->database_role, strlen(cfg->database_role));
	char sql[256];
	snprintf(sql, sizeof(sql), "SET ROLE %s", role ? role : "\"\"");
	r = PQexec(c, sql);
	if (role == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, err_size, "key archive: %s", PQerrorMessage(c));
		goto fail;
	}
	PQclear(r);
	PQfreemem(role);
	return c;
fail:
	PQclear(r);
	PQfreemem(role);
	PQfinish(c);
	return NULL;
}

static bool ok(PGresult *r, ExecStatusType want)
{
	bool good = r != NULL && PQresultStatus(r) == want;
	PQclear(r);
	return good;
}

/* Adds the current keys and retires the ones the set lacks; in the open transaction. */
static bool record_set(PGconn *c, const pw_jwk_set *current, int64_t now_s)
{
	char canon[PW_JWK_CANONICAL_MAX], when[32];
	pw_util_buf tps = {.max = 64 * 1024};
	bool good = pw_util_buf_append(&tps, "{", 1) == PW_OK;

	for (size_t i = 0; good && i < current->n; i++) {
		const pw_jwk *k = &current->keys[i];
		const char *v[4] = {k->thumbprint, k->has_kid ? k->kid : NULL,
		                    pw_jwk_type_alg(k->type), canon};
		good = pw_jwk_canonical(k->pkey, canon, sizeof(canon)) == PW_OK &&
		       ok(PQexecParams(c,
		                       "INSERT INTO jwt_keys (thumbprint, kid, alg, jwk)"
		                       " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING",
		                       4, NULL, v, NULL, NULL, 0),
		          PGRES_COMMAND_OK) &&
		       (i == 0 || pw_util_buf_append(&tps, ",", 1) == PW_OK) &&
		       pw_util_buf_append(&tps, k->thumbprint, strlen(k->thumbprint)) == PW_OK;
	}
	/* Thumbprints are base64url: nothing in them needs quoting in an array literal. */
	good = good && pw_util_buf_append(&tps, "}", 1) == PW_OK;
	snprintf(when, sizeof(when), "%lld", (long long)now_s);
	const char *v[2] = {when, tps.p};
	PGresult *r = good
	                  ? PQexecParams(c,
	                                 "UPDATE jwt_keys SET retired_at = to_timestamp($1::bigint)"
	                                 " WHERE retired_at IS NULL AND thumbprint <> ALL "
	                                 "($2::text[]) RETURNING thumbprint, coalesce(kid, '')",
	                                 2, NULL, v, NULL, NULL, 0)
	                  : NULL;
	good = good && PQresultStatus(r) == PGRES_TUPLES_OK;
	/* Said once, by the worker that saw the key go: it verifies older commands only. */
	for (int i = 0; good && i < PQntuples(r); i++)
		PW_LOG_INFO(
		    NULL,
		    "key archive: key '%s' (%s) left the set: retired at %lld, it verifies only "
		    "commands from before",
		    PQgetvalue(r, i, 1), PQgetvalue(r, i, 0), (long long)now_s);
	PQclear(r);
	pw_util_buf_free(&tps);
	return good;
}

/* An archived key the set lacks, rebuilt from its row: NULL when the row is not usable. */
static bool archived_key(PGresult *r, int row, pw_jwk *k)
{
	json_t *j = json_loads(PQgetvalue(r, row, 3), 0, NULL);
	bool good = false;

	if (j == NULL)
		return false;
	if (!PQgetisnull(r, row, 1))
		json_object_set_new(j, "kid", json_string(PQgetvalue(r, row, 1)));
	json_object_set_new(j, "alg", json_string(PQgetvalue(r, row, 2)));
	good = pw_jwk_from_json(j, k) == NULL && strcmp(k->thumbprint, PQgetvalue(r, row, 0)) == 0;
	if (!good)
		EVP_PKEY_free(k->pkey);
	json_decref(j);
	return good;
}

/* The current keys with their archived retirement, then the archived keys the set lacks. */
static pw_status merge(PGresult *r, const pw_jwk_set *current, pw_jwk_set *out)
{
	int rows = PQntuples(r);
	pw_status st = pw_jwk_set_copy(current, out);

	if (st != PW_OK)
		return st;
	pw_jwk *more = realloc(out->keys, (out->n + (size_t)rows + 1) * sizeof(*more));
	if (more == NULL) {
		pw_jwk_set_clear(out);
		return PW_E_NOMEM;
	}
	out->keys = more;
	for (int i = 0; i < rows; i++) {
		const char *tp = PQgetvalue(r, i, 0);
		int64_t retired = PQgetisnull(r, i, 4) ? 0 : atoll(PQgetvalue(r, i, 4));
		pw_jwk *mine = pw_jwk_set_find(out, tp);
		if (mine != NULL) {
			mine->retired_at = retired;
			continue;
		}
		pw_jwk k;
		if (archived_key(r, i, &k)) {
			k.retired_at = retired;
			out->keys[out->n++] = k;
		}
	}
	return PW_OK;
}

pw_status pw_keyarchive_sync(PGconn *c, const pw_jwk_set *current, int64_t now_s, bool record,
                             pw_jwk_set *out, char *err, size_t err_size)
{
	PGresult *r = NULL;
	pw_status st = PW_E_RETRY;

	*out = (pw_jwk_set){0};
	if (!ok(PQexec(c, "BEGIN"), PGRES_COMMAND_OK))
		goto fail;
	if (record && !record_set(c, current, now_s))
		goto fail;
	r = PQexec(c, "SELECT thumbprint, kid, alg, jwk::text,"
	              " floor(extract(epoch FROM retired_at))::bigint FROM jwt_keys");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || !ok(PQexec(c, "COMMIT"), PGRES_COMMAND_OK))
		goto fail;
	st = merge(r, current, out);
	PQclear(r);
	return st;
fail:
	snprintf(err, err_size, "key archive: %s", PQerrorMessage(c));
	PQclear(r);
	PQclear(PQexec(c, "ROLLBACK"));
	return PW_E_RETRY;
}
