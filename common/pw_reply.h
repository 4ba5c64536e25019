/* Reply bodies as the contract writes them: {"request_id", "status", "data"|"error"}. */
#ifndef PW_REPLY_H
#define PW_REPLY_H

#include <jansson.h>

/* Each returns a new NUL-terminated compact JSON text the caller frees, or NULL when
 * memory runs out. request_id may be NULL (not known). */

/* data is borrowed. */
char *pw_reply_data(const char *request_id, int status, json_t *data);

/* fields is borrowed and may be NULL; message must not hold a token, secret or SQL. */
char *pw_reply_error(const char *request_id, int status, const char *code, const char *message,
                     json_t *fields);

/* The error code the contract pairs with a status (400 needs the caller's choice). */
const char *pw_reply_code_for(int status);

#endif
