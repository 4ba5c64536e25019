/* A load's journal; see ctl_journal.h. The entries read at open are kept sorted (16 bytes
 * each) and searched; entries added during the run are only written, since the run never
 * meets the same line twice. */
#include "ctl_journal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pw_util.h"

#define HEADER "# patientctl load journal: LINE HASH for each row answered 2xx\n"

typedef struct entry {
	uint64_t line;
	uint64_t hash;
} entry;

struct ctl_journal {
	FILE *f;
	entry *v;
	size_t n, cap;
};

static int cmp_entry(const void *a, const void *b)
{
	const entry *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : 0;
}

/* "LINE HASH" with HASH 16 hex digits; 0, or -1 for anything else. */
static int parse_entry(const char *s, entry *e)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long line = strtoull(s, &end, 10);
	if (errno != 0 || *end != ' ')
		return -1;
	s = end + 1;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
	}
	if (s[16] != '\n')
		return -1;
	e->line = line;
	e->hash = strtoull(s, NULL, 16);
	return 0;
}

/* Reads every entry of f, sorted for ctl_journal_has; the file, not a limit of ours, bounds
 * the memory (16 bytes an entry). 0, or -1 (errno). */
static int load(ctl_journal *j, FILE *f)
{
	char buf[128];

	while (fgets(buf, sizeof(buf), f) != NULL) {
		entry e;
		if (parse_entry(buf, &e) != 0)
			continue;
		void *v = j->v;
		if (pw_util_grow(&v, &j->cap, j->n + 1, sizeof(*j->v), SIZE_MAX / sizeof(*j->v)) !=
		    PW_OK) {
			errno = ENOMEM;
			return -1;
		}
		j->v = v;
		j->v[j->n++] = e;
	}
	if (ferror(f))
		return -1;
	qsort(j->v, j->n, sizeof(*j->v), cmp_entry);
	return 0;
}

ctl_exit ctl_journal_open(ctl_journal **out, const char *path, FILE *err)
{
	ctl_journal *j = calloc(1, sizeof(*j));
	FILE *r = NULL;
	ctl_exit rc = CTL_EXIT_USAGE;

	*out = NULL;
	if (j == NULL) {
		fprintf(err, "%s: out of memory\n", path);
		return rc;
	}
	r = fopen(path, "r");
	if (r == NULL && errno != ENOENT) {
		fprintf(err, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	if (r != NULL && load(j, r) != 0) {
		fprintf(err, "%s: cannot read the journal: %s\n", path,
		        strerror(errno ? errno : ENOMEM));
		goto out;
	}
	j->f = fopen(path, "a");
	if (j->f == NULL) {
		fprintf(err, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	struct stat st;
	if (fstat(fileno(j->f), &st) != 0 ||
	    (st.st_size == 0 && (fputs(HEADER, j->f) == EOF || fflush(j->f) != 0))) {
		fprintf(err, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	*out = j;
	j = NULL;
	rc = CTL_EXIT_OK;
out:
	if (r != NULL)
		fclose(r);
	if (j != NULL) {
		if (j->f != NULL)
			fclose(j->f);
		free(j->v);
		free(j);
	}
	return rc;
}

bool ctl_journal_has(const ctl_journal *j, unsigned long line, uint64_t hash)
{
	entry key = {line, hash};

	return j->n > 0 && bsearch(&key, j->v, j->n, sizeof(*j->v), cmp_entry) != NULL;
}

size_t ctl_journal_count(const ctl_journal *j)
{
	return j->n;
}

pw_status ctl_journal_add(ctl_journal *j, unsigned long line, uint64_t hash)
{
	return fprintf(j->f, "%lu %016" PRIx64 "\n", line, hash) < 0 ? PW_E_INTERNAL : PW_OK;
}

pw_status ctl_journal_flush(ctl_journal *j, bool sync)
{
	if (fflush(j->f) != 0 || (sync && fsync(fileno(j->f)) != 0))
		return PW_E_INTERNAL;
	return PW_OK;
}

pw_status ctl_journal_close(ctl_journal *j)
{
	pw_status rc;

	if (j == NULL)
		return PW_OK;
	rc = ctl_journal_flush(j, true);
	if (fclose(j->f) != 0)
		rc = PW_E_INTERNAL;
	free(j->v);
	free(j);
	return rc;
}
