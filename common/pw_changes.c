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
