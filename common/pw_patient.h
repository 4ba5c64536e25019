/* The patient: the patient.create payload (validation and the canonical form its idempotency
 * hash covers) and a stored patient as replies show it. */
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
	char *created_at; /**< ISO 8601 UTC with milliseconds */
} pw_patient;

/* Frees the strings; p is left zeroed. NULL is fine. */
void pw_patient_clear(pw_patient *p);

/* The dni rule (1-20 ASCII letters, digits and '-', not trimmed), for creates and for the
 * list filter alike: NULL and the value copied into out, or the reason it is refused. */
const char *pw_patient_check_dni(const json_t *v, char out[PW_DNI_MAX + 1]);

/* True when y-m-d is a real calendar date. */
bool pw_patient_date_valid(int y, int m, int d);

#endif
