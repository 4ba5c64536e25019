/* The patient: the patient.create, patient.update and patient.delete payloads (validation
 * and the canonical form their idempotency hash covers) and a stored patient as replies
 * show it. */
#ifndef PW_PATIENT_H
#define PW_PATIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "pw_status.h"

#define PW_NAME_MAX_CHARS 100
#define PW_DNI_MAX        20

typedef struct pw_patient_input {
	char *nombre;           /**< owned, trimmed */
	char *apellido_paterno; /**< owned, trimmed */
	char *apellido_materno; /**< owned, trimmed, or NULL */
	char dni[PW_DNI_MAX + 1];
	char fecha_nacimiento[11]; /**< YYYY-MM-DD */
	char sexo[2];              /**< "M", "F" or "X" */
	char payload_hash[65];     /**< hex SHA-256 of the canonical payload */
} pw_patient_input;

/* Validates a create payload as of now_s (Unix seconds, the command's time: a birth
 * date may not lie after that day, UTC). On PW_OK fills *in (free with
 * pw_patient_input_clear). On PW_E_INVALID sets *fields to a new object mapping each
 * bad field to a reason (the caller owns it). PW_E_NOMEM on allocation failure. */
PW_MUST_CHECK pw_status pw_patient_validate(const json_t *payload, int64_t now_s,
                                            pw_patient_input *in, json_t **fields);

void pw_patient_input_clear(pw_patient_input *in);

/* The fields an update may set, as bits. */
typedef enum pw_patient_field {
	PW_PATIENT_NOMBRE = 1 << 0,
	PW_PATIENT_APELLIDO_PATERNO = 1 << 1,
	PW_PATIENT_APELLIDO_MATERNO = 1 << 2,
	PW_PATIENT_DNI = 1 << 3,
	PW_PATIENT_FECHA_NACIMIENTO = 1 << 4,
	PW_PATIENT_SEXO = 1 << 5,
} pw_patient_field;

#define PW_PATIENT_FIELDS 6

/* A field's name in payloads and replies: "nombre", ... */
const char *pw_patient_field_name(pw_patient_field f);

typedef struct pw_patient_update {
	int64_t id;
	int64_t version;         /**< the version the caller last saw */
	unsigned fields;         /**< pw_patient_field bits: what the update sets */
	pw_patient_input values; /**< those fields' values, by the create's rules; the others
	                              unset. apellido_materno NULL with its bit set: cleared.
	                              values.payload_hash is not used */
	char payload_hash[65];   /**< hex SHA-256 of the type, id, version and fields set */
} pw_patient_update;

/* Validates a patient.update payload as of now_s (see pw_patient_validate): id and version
 * required, every other field optional and, when present, by the create's rules (null
 * clears apellido_materno and is refused for the others), at least one of them; owner_id
 * ignored and not counted; an unknown field refused. On PW_OK fills *out (free with
 * pw_patient_update_clear). On PW_E_INVALID *fields maps each bad field to a reason ("payload"
 * when nothing would change). PW_E_NOMEM. */
PW_MUST_CHECK pw_status pw_patient_validate_update(const json_t *payload, int64_t now_s,
                                                   pw_patient_update *out, json_t **fields);

void pw_patient_update_clear(pw_patient_update *u);

typedef struct pw_patient_delete {
	int64_t id;
	int64_t version;       /**< the version the caller last saw */
	char payload_hash[65]; /**< hex SHA-256 of the type, id and version */
} pw_patient_delete;

/* Validates a patient.delete payload: id and version required, owner_id ignored, anything
 * else refused. Results as pw_patient_validate_update; nothing to free. */
PW_MUST_CHECK pw_status pw_patient_validate_delete(const json_t *payload, pw_patient_delete *out,
                                                   json_t **fields);

/* A stored patient, the contract's `data` of a create or get (one item of a list). */
typedef struct pw_patient {
	int64_t id;
	char *nombre; /**< owned, like every string here */
	char *apellido_paterno;
	char *apellido_materno; /**< NULL when the patient has none */
	char *dni;
	char *fecha_nacimiento; /**< YYYY-MM-DD */
	char *sexo;
	char *owner_id;
	int64_t version;  /**< 1 when created, one more with every update or delete */
	char *created_at; /**< ISO 8601 UTC with milliseconds */
	char *updated_at; /**< the same form; created_at until the first update */
} pw_patient;

/* A patient from its object as replies show it (a snapshot the database kept), into *out
 * (free with pw_patient_clear). PW_E_INVALID when a member is missing or of another type. */
PW_MUST_CHECK pw_status pw_patient_from_json(const json_t *o, pw_patient *out);

/* Frees the strings; p is left zeroed. NULL is fine. */
void pw_patient_clear(pw_patient *p);

/* The dni rule (1-20 ASCII letters, digits and '-', not trimmed), for creates and for the
 * list filter alike: NULL and the value copied into out, or the reason it is refused. */
const char *pw_patient_check_dni(const json_t *v, char out[PW_DNI_MAX + 1]);

/* The id and version rule (an integer >= 1; a real like 1.0 is refused): NULL and the
 * value in *out, or the reason it is refused. */
const char *pw_patient_check_positive(const json_t *v, int64_t *out);

/* True when y-m-d is a real calendar date. */
bool pw_patient_date_valid(int y, int m, int d);

#endif
