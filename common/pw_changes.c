/* Updates and deletes, bound by name; their outcome read back as the database kept it. */
#include "pw_changes.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The statement's parameters: the command, then for each field whether it is set and its
 * value (NULL when unset, or apellido_materno cleared); a delete sets none. Booleans are
 * "t" or "f". */
typedef struct change_args {
	const char *command_type, *owner, *request_id, *payload_hash, *id, *version;
	const char *set_nombre, *nombre, *set_apellido_paterno, *apellido_paterno,
	    *set_apellido_materno, *apellido_materno, *set_dni, *dni, *set_fecha_nacimiento,
	    *fecha_nacimiento, *set_sexo, *sexo;
	const char *source_topic, *source_partition, *source_offset, *command_time;
} change_args;

#define P(f) PW_SQL_PARAM(change_args, f)
static const pw_sql_param change_params[] = {P(command_type),
                                             P(owner),
                                             P(request_id),
                                             P(payload_hash),
                                             P(id),
                                             P(version),
                                             P(set_nombre),
                                             P(nombre),
                                             P(set_apellido_paterno),
                                             P(apellido_paterno),
                                             P(set_apellido_materno),
                                             P(apellido_materno),
                                             P(set_dni),
                                             P(dni),
                                             P(set_fecha_nacimiento),
                                             P(fecha_nacimiento),
                                             P(set_sexo),
                                             P(sexo),
                                             P(source_topic),
                                             P(source_partition),
                                             P(source_offset),
                                             P(command_time)};
#undef P

const pw_sql_stmt pw_changes_stmt = {"pw_change", pw_sql_text_change, change_params,
                                     sizeof(change_params) / sizeof(change_params[0])};

/* The deciding statement reads the command, not where it came from: the same arguments less
 * the source (the last four). */
const pw_sql_stmt pw_changes_decide_stmt = {"pw_change_decide", pw_sql_text_change_decide,
                                            change_params,
                                            sizeof(change_params) / sizeof(change_params[0]) - 4};

/* Numbers as text, for the arguments that point at them. */
typedef struct numbers {
	char id[24], version[24], partition[16], offset[24], time[24];
} numbers;

static void common_args(const pw_writes_item *it, int64_t id, int64_t version, numbers *n,
                        change_args *a)
{
	snprintf(n->id, sizeof(n->id), "%" PRId64, id);
	snprintf(n->version, sizeof(n->version), "%" PRId64, version);
	snprintf(n->partition, sizeof(n->partition), "%" PRId32, it->src_partition);
	snprintf(n->offset, sizeof(n->offset), "%" PRId64, it->src_offset);
	snprintf(n->time, sizeof(n->time), "%" PRId64, it->command_time);
	a->owner = it->owner;
	a->request_id = it->request_id;
	a->id = n->id;
	a->version = n->version;
	a->source_topic = it->src_topic;
	a->source_partition = n->partition;
	a->source_offset = n->offset;
	a->command_time = n->time;
}

/* The fields an update sets (none for a delete, u NULL): each one's flag and value. */
static void field_args(const pw_patient_update *u, change_args *a)
{
	static const pw_patient_update none;
	const pw_patient_input *v;

	if (u == NULL)
		u = &none;
	v = &u->values;
	struct {
		pw_patient_field f;
		const char **set, **value, *given;
	} f[] = {
	    {PW_PATIENT_NOMBRE, &a->set_nombre, &a->nombre, v->nombre},
	    {PW_PATIENT_APELLIDO_PATERNO, &a->set_apellido_paterno, &a->apellido_paterno,
	     v->apellido_paterno},
	    {PW_PATIENT_APELLIDO_MATERNO, &a->set_apellido_materno, &a->apellido_materno,
	     v->apellido_materno},
	    {PW_PATIENT_DNI, &a->set_dni, &a->dni, v->dni},
	    {PW_PATIENT_FECHA_NACIMIENTO, &a->set_fecha_nacimiento, &a->fecha_nacimiento,
	     v->fecha_nacimiento},
	    {PW_PATIENT_SEXO, &a->set_sexo, &a->sexo, v->sexo},
	};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		bool set = (u->fields & (unsigned)f[i].f) != 0;
		*f[i].set = set ? "t" : "f";
		*f[i].value = set ? f[i].given : NULL;
	}
}

/* The routed form's writes (run_routed): the patient by its key, the outcome's record
 * (and, on a patient's first change, the state its create's reply showed), the audit row. */
static const char update_sql[] =
    "UPDATE patients SET nombre = $3, apellido_paterno = $4, apellido_materno = $5, dni = $6,"
    " fecha_nacimiento = $7::date, sexo = $8, version = version + 1, updated_at = now()"
    " WHERE owner_id = $1 AND id = $2::bigint";
static const char delete_sql[] =
    "UPDATE patients SET version = version + 1, updated_at = now(), deleted_at = now()"
    " WHERE owner_id = $1 AND id = $2::bigint";
/* What the reply shows of the changed patient; to_char and patient_data cannot be in the
 * UPDATE's RETURNING on Citus (no function that is not immutable there). */
static const char changed_sql[] =
    "SELECT CASE WHEN $3 = 'updated'"
    " THEN jsonb_build_object('outcome', 'updated', 'patient',"
    " patient_data(ROW(p.*)::patients))"
    " ELSE jsonb_build_object('outcome', 'deleted', 'id', p.id, 'version', p.version,"
    " 'deleted_at', to_char(p.deleted_at AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) END::text"
    " FROM patients p WHERE p.owner_id = $1 AND p.id = $2::bigint";
static const char record_sql[] =
    "INSERT INTO patient_requests (owner_id, request_id, payload_hash, status, patient_id,"
    " command_type, detail) VALUES ($1, $2, $3, $4::int, $5::bigint, $6, $7::jsonb)";
static const char record_tail[] = " ON CONFLICT DO NOTHING";
static const char snapshot_row[] = ", ($1, $8, $9, 201, $5::bigint, 'patient.create', $10::jsonb)";
static const char audit_sql[] =
    "INSERT INTO patient_audit_tenant (owner_id, request_id, command_type, status,"
    " patient_ids, changed_fields, source_topic, source_partition, source_offset,"
    " command_time) VALUES ($1, $2, $3, $4::int, $5::bigint[], $6::text[], $7, $8::int,"
    " $9::bigint, to_timestamp($10::float8)) ON CONFLICT DO NOTHING";

/* The change's outcome from routed statements (sql/parts/change_read.sql says what each
 * outcome is). */
static pw_status run_routed(pw_db *db, pw_writes_item *it, const change_args *a, char *errstr,
                            size_t errstr_size)
{
	static const char *const names[] = {
	    "outcome", "prior_status",        "prior_detail",     "cur_version", "fields",
	    "nombre",  "apellido_paterno",    "apellido_materno", "dni",         "fecha_nacimiento",
	    "sexo",    "snapshot_request_id", "snapshot_hash",    "snapshot"};
	enum { OUT, PST, PDET, CVER, FIELDS, NOM, AP, AM, DNI, FECHA, SEXO, SREQ, SHASH, SNAP, N };
	PGresult *d = NULL, *c = NULL;
	int col[N];
	char status[16], detail[96], ids[32];
	const char *det = detail;
	pw_status st;

	st = pw_db_exec(db, &pw_changes_decide_stmt, a, &d, errstr, errstr_size);
	if (st == PW_OK && (PQntuples(d) != 1 || pw_db_columns(d, names, N, col) != PW_OK))
		st = PW_E_INTERNAL;
	if (st != PW_OK)
		goto out;
#define V(k) (PQgetisnull(d, 0, col[k]) ? NULL : PQgetvalue(d, 0, col[k]))
	const char *outcome = PQgetvalue(d, 0, col[OUT]);
	bool changes = strcmp(outcome, "updated") == 0 || strcmp(outcome, "deleted") == 0;
	if (strcmp(outcome, "repeat") == 0) {
		snprintf(status, sizeof(status), "%s", V(PST) ? V(PST) : "0");
		det = V(PDET) ? V(PDET) : "";
	} else {
		snprintf(status, sizeof(status), "%d",
		         strcmp(outcome, "not_found") == 0 ? 404
		         : changes                         ? 200
		                                           : 409);
		if (strcmp(outcome, "version_conflict") == 0)
			snprintf(detail, sizeof(detail),
			         "{\"outcome\": \"version_conflict\", \"current_version\": %s}",
			         V(CVER) ? V(CVER) : "null");
		else
			snprintf(detail, sizeof(detail), "{\"outcome\": \"%s\"}", outcome);
	}
	if (changes) {
		const char *u[] = {a->owner, a->id,  V(NOM),   V(AP),
		                   V(AM),    V(DNI), V(FECHA), V(SEXO)};
		const char *w[] = {a->owner, a->id, outcome};
		if (strcmp(outcome, "updated") == 0)
			st = pw_db_exec_built(db, update_sql, 8, u, NULL, errstr, errstr_size);
		else
			st = pw_db_exec_built(db, delete_sql, 2, u, NULL, errstr, errstr_size);
		if (st == PW_OK)
			st = pw_db_exec_built(db, changed_sql, 3, w, &c, errstr, errstr_size);
		if (st == PW_OK && PQntuples(c) != 1)
			st = PW_E_INTERNAL;
		if (st != PW_OK)
			goto out;
		det = PQgetvalue(c, 0, 0);
	}
	if (strcmp(outcome, "repeat") != 0 && strcmp(outcome, "idempotency_conflict") != 0) {
		/* The first change of a patient keeps what its create's reply showed too. */
		bool snap = changes && V(SNAP) != NULL;
		const char *r[] = {
		    a->owner,        a->request_id, a->payload_hash, status,   a->id,
		    a->command_type, det,           V(SREQ),         V(SHASH), V(SNAP)};
		char sql[sizeof(record_sql) + sizeof(snapshot_row) + sizeof(record_tail)];
		snprintf(sql, sizeof(sql), "%s%s%s", record_sql, snap ? snapshot_row : "",
		         record_tail);
		st = pw_db_exec_built(db, sql, snap ? 10 : 7, r, NULL, errstr, errstr_size);
	}
	if (st == PW_OK) {
		bool touched = changes || strcmp(outcome, "version_conflict") == 0 ||
		               strcmp(outcome, "conflict") == 0;
		snprintf(ids, sizeof(ids), touched ? "{%s}" : "{}", a->id);
		const char *v[] = {a->owner,
		                   a->request_id,
		                   a->command_type,
		                   status,
		                   ids,
		                   strcmp(outcome, "updated") == 0 ? V(FIELDS) : NULL,
		                   a->source_topic,
		                   a->source_partition,
		                   a->source_offset,
		                   a->command_time};
		st = pw_db_exec_built(db, audit_sql, 10, v, NULL, errstr, errstr_size);
	}
	if (st == PW_OK)
		st = pw_writes_take_detail(it, atoi(status), det);
#undef V
out:
	if (st == PW_E_INTERNAL && errstr[0] == '\0')
		snprintf(errstr, errstr_size, "change outcome not understood");
	PQclear(d);
	PQclear(c);
	return st;
}

pw_status pw_changes_run(pw_db *db, pw_writes_item *it, char *errstr, size_t errstr_size)
{
	static const char *const names[] = {"status", "detail"};
	change_args a = {0};
	numbers n;
	PGresult *r = NULL;
	int col[2];
	pw_status st;

	if (it->kind == PW_WRITES_UPDATE) {
		common_args(it, it->update->id, it->update->version, &n, &a);
		field_args(it->update, &a);
		a.command_type = "patient.update";
		a.payload_hash = it->update->payload_hash;
	} else {
		common_args(it, it->del->id, it->del->version, &n, &a);
		field_args(NULL, &a);
		a.command_type = "patient.delete";
		a.payload_hash = it->del->payload_hash;
	}
	errstr[0] = '\0';
	if (pw_db_citus(db))
		return run_routed(db, it, &a, errstr, errstr_size);
	st = pw_db_exec(db, &pw_changes_stmt, &a, &r, errstr, errstr_size);
	if (st == PW_OK && (PQntuples(r) != 1 || pw_db_columns(r, names, 2, col) != PW_OK)) {
		snprintf(errstr, errstr_size, "change outcome not understood");
		st = PW_E_INTERNAL;
	}
	if (st == PW_OK)
		st = pw_writes_take_detail(it, atoi(PQgetvalue(r, 0, col[0])),
		                           PQgetvalue(r, 0, col[1]));
	if (st == PW_E_INTERNAL && errstr[0] == '\0')
		snprintf(errstr, errstr_size, "change outcome not understood");
	PQclear(r);
	return st;
}
