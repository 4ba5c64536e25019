/* Structured logging: one JSON object per line on stderr, filtered before formatting. */
#ifndef PW_LOG_H
#define PW_LOG_H

#include <stdint.h>

#include "pw_status.h"

typedef enum pw_log_level {
	PW_LOG_DEBUG = 0,
	PW_LOG_INFO,
	PW_LOG_WARN,
	PW_LOG_ERROR,
} pw_log_level;

/* Per-record context; every field is optional (NULL / negative means absent).
 * Only ids go here: never a token, a secret or a patient field. */
typedef struct pw_log_ctx {
	const char *request_id;
	const char *owner;
	const char *topic;
	int32_t partition; /**< -1 when absent */
	int64_t offset;    /**< -1 when absent */
	int status;        /**< reply status, 0 when absent */
	double ms;         /**< duration, < 0 when absent */
} pw_log_ctx;

#define PW_LOG_CTX_INIT                                                                            \
	{                                                                                          \
		NULL, NULL, NULL, -1, -1, 0, -1.0                                                  \
	}

extern pw_log_level pw_log_min_level;

/* Parses "debug|info|warn|error" into *level; PW_E_INVALID for anything else. */
PW_MUST_CHECK pw_status pw_log_parse_level(const char *s, pw_log_level *level);

/* Writes one line. ctx may be NULL. Safe from any thread (one write(2) per line). */
void pw_log_write(pw_log_level level, const pw_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define PW_LOG(level, ctx, ...)                                                                    \
	do {                                                                                       \
		if ((level) >= pw_log_min_level)                                                   \
			pw_log_write((level), (ctx), __VA_ARGS__);                                 \
	} while (0)
#define PW_LOG_DEBUG(ctx, ...) PW_LOG(PW_LOG_DEBUG, ctx, __VA_ARGS__)
#define PW_LOG_INFO(ctx, ...)  PW_LOG(PW_LOG_INFO, ctx, __VA_ARGS__)
#define PW_LOG_WARN(ctx, ...)  PW_LOG(PW_LOG_WARN, ctx, __VA_ARGS__)
#define PW_LOG_ERROR(ctx, ...) PW_LOG(PW_LOG_ERROR, ctx, __VA_ARGS__)

#endif
