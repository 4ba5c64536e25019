/* Named parameters to libpq's positional ones, and binding them from a struct. */
#include "pw_sql.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw_util.h"

/* Where a literal, a quoted identifier or a comment that starts at p ends (the first
 * character after it), or p itself when none starts there. Placeholders inside them are
 * text, not parameters. */
static const char *skip_quoted(const char *p)
{
	if (*p == '\'' || *p == '"') {
		char q = *p++;
		while (*p != '\0') {
			if (*p == q && p[1] == q) { /* '' or "" stands for the character */
				p += 2;
				continue;
			}
			if (*p++ == q)
				break;
		}
		return p;
	}
	if (p[0] == '-' && p[1] == '-')
		return p + strcspn(p, "\n");
	if (p[0] == '/' && p[1] == '*') {
		const char *e = strstr(p + 2, "*/");
		return e ? e + 2 : p + strlen(p);
	}
	return p;
}

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* The parameter called name (len bytes), or -1. */
static int find_param(const pw_sql_stmt *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->nparams; i++)
		if (strlen(s->params[i].name) == len && strncmp(s->params[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

pw_status pw_sql_compile(const pw_sql_stmt *s, char **out, char *errstr, size_t errstr_size)
{
	pw_util_buf b = {0};
	bool *used = calloc(s->nparams ? s->nparams : 1, sizeof(*used));
	pw_status st = PW_E_NOMEM;
	const char *p = s->text;

	*out = NULL;
	if (used == NULL)
		goto out;
	while (*p != '\0') {
		const char *q = skip_quoted(p);
		if (q != p) {
			if (pw_util_buf_append(&b, p, (size_t)(q - p)) != PW_OK)
				goto out;
			p = q;
			continue;
		}
		if (*p == '$') {
			snprintf(errstr, errstr_size,
			         "%s: a positional parameter in a named statement",
			         s->name ? s->name : "statement");
			st = PW_E_INVALID;
			goto out;
		}
		if (p[0] == ':' && p[1] == ':') { /* a cast */
			if (pw_util_buf_append(&b, p, 2) != PW_OK)
				goto out;
			p += 2;
			continue;
		}
		if (p[0] == ':' && (isalpha((unsigned char)p[1]) || p[1] == '_')) {
			size_t len = 1;
			while (name_char(p[1 + len]))
				len++;
			int i = find_param(s, p + 1, len);
			if (i < 0) {
				snprintf(errstr, errstr_size, "%s: :%.*s is not a parameter",
				         s->name ? s->name : "statement", (int)len, p + 1);
				st = PW_E_INVALID;
				goto out;
			}
			char ref[16];
			int n = snprintf(ref, sizeof(ref), "$%d", i + 1);
			if (pw_util_buf_append(&b, ref, (size_t)n) != PW_OK)
				goto out;
			used[i] = true;
			p += 1 + len;
			continue;
		}
		if (pw_util_buf_append(&b, p, 1) != PW_OK)
			goto out;
		p++;
	}
	for (size_t i = 0; i < s->nparams; i++)
		if (!used[i]) {
			snprintf(errstr, errstr_size, "%s: parameter :%s is never used",
			         s->name ? s->name : "statement", s->params[i].name);
			st = PW_E_INVALID;
			goto out;
		}
	st = pw_util_buf_take(&b, out);
out:
	pw_util_buf_free(&b);
	free(used);
	return st;
}

void pw_sql_bind(const pw_sql_stmt *s, const void *args, const char **values)
{
	for (size_t i = 0; i < s->nparams; i++)
		memcpy(&values[i], (const char *)args + s->params[i].offset, sizeof(values[i]));
}
