/* Structured JSON log lines on stderr. */
#include "pw_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

pw_log_level pw_log_min_level = PW_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

pw_status pw_log_parse_level(const char *s, pw_log_level *level)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*level = (pw_log_level)i;
			return PW_OK;
		}
	return PW_E_INVALID;
}

void pw_log_write(pw_log_level level, const pw_log_ctx *ctx, const char *fmt, ...)
{
	char msg[1024];
	char ts[96];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	json_t *o;
	char *line;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (int)(tv.tv_usec / 1000));

	o = json_object();
	if (o == NULL)
		return;
	json_object_set_new(o, "ts", json_string(ts));
	json_object_set_new(o, "level", json_string(level_names[level]));
	/* A message may carry bytes from librdkafka or libpq; jansson refuses
	 * invalid UTF-8, so fall back to a marker rather than drop the line. */
	json_t *m = json_string(msg);
	json_object_set_new(o, "msg", m ? m : json_string("(message not valid UTF-8)"));
	if (ctx != NULL) {
		if (ctx->request_id)
			json_object_set_new(o, "request_id", json_string(ctx->request_id));
		if (ctx->owner)
			json_object_set_new(o, "owner", json_string(ctx->owner));
		if (ctx->topic)
			json_object_set_new(o, "topic", json_string(ctx->topic));
		if (ctx->partition >= 0)
			json_object_set_new(o, "partition", json_integer(ctx->partition));
		if (ctx->offset >= 0)
			json_object_set_new(o, "offset", json_integer(ctx->offset));
		if (ctx->status > 0)
			json_object_set_new(o, "status", json_integer(ctx->status));
		if (ctx->ms >= 0)
			json_object_set_new(o, "ms", json_real(ctx->ms));
	}
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (line == NULL)
		return;
	size_t n = strlen(line);
	line[n] = '\n'; /* json_dumps leaves room for the NUL we overwrite; we write n+1 */
	ssize_t w = write(STDERR_FILENO, line, n + 1);
	(void)w;
	free(line);
}
