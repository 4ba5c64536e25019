/* The shared key set and its refresh thread. One mutex guards the set and the counters;
 * verifiers only take it when the generation they hold is stale, so a token costs an atomic
 * load, not a lock. */
#include "pw_keyring.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pw_log.h"
#include "pw_util.h"

/* How often the thread looks at the file (a stat: nothing is read when it did not change). */
#define WATCH_S 1

/* What says a file changed: a rename over it (new inode), a write (size, mtime). */
typedef struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
} file_id;

struct pw_keyring {
	const pw_config *cfg;
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_t thread;
	bool started, stopping;
	pw_jwk_set set;         /**< the current set, under mu */
	_Atomic uint64_t gen;   /**< bumped when set changes */
	file_id seen;           /**< the file the set was read from */
	int64_t last_load_s;    /**< monotonic: last refresh attempt (periodic reload) */
	int64_t last_unknown_s; /**< monotonic: last unknown-kid refresh; -1: none yet */
	bool failing;           /**< the last refresh failed: its warning was logged */
	pw_keyring_stats stats; /**< under mu */
};

static int64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static bool file_stat(const char *path, file_id *id)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return false;
	*id = (file_id){st.st_dev, st.st_ino, st.st_size, st.st_mtim};
	return true;
}

static bool same_file(const file_id *a, const file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static bool has_thumbprint(const pw_jwk_set *s, const char *tp)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->keys[i].thumbprint, tp) == 0)
			return true;
	return false;
}

/* The kids of a's keys that b lacks, space-separated ("" for none), for the change log. */
static void kids_not_in(const pw_jwk_set *a, const pw_jwk_set *b, char *out, size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < a->n && o < size; i++) {
		const pw_jwk *k = &a->keys[i];
		if (has_thumbprint(b, k->thumbprint))
			continue;
		int n = snprintf(out + o, size - o, "%s%s", o ? " " : "",
		                 k->has_kid ? k->kid : k->thumbprint);
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

static bool same_keys(const pw_jwk_set *a, const pw_jwk_set *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!has_thumbprint(b, a->keys[i].thumbprint) ||
		    strcmp(a->keys[i].kid, b->keys[i].kid) != 0 ||
		    strcmp(a->keys[i].alg, b->keys[i].alg) != 0)
			return false;
	return true;
}

static void log_skipped(void *ctx, const char *kid, const char *why)
{
	(void)ctx;
	PW_LOG_WARN(NULL, "key set: key '%s' not used: %s", kid, why);
}

/* Puts next in place of the current set when it differs; under mu. */
static void install(pw_keyring *k, pw_jwk_set *next)
{
	char added[512], gone[512];

	if (same_keys(&k->set, next)) {
		pw_jwk_set_clear(next);
		return;
	}
	kids_not_in(next, &k->set, added, sizeof(added));
	kids_not_in(&k->set, next, gone, sizeof(gone));
	PW_LOG_INFO(NULL, "key set changed: %zu keys; added: %s; removed: %s", next->n,
	            added[0] ? added : "none", gone[0] ? gone : "none");
	pw_jwk_set_clear(&k->set);
	k->set = *next;
	*next = (pw_jwk_set){0};
	k->stats.refresh_changed++;
	atomic_fetch_add(&k->gen, 1);
}

/* Reads and parses the file; installs the set, or counts the failure and keeps the last
 * good one. Under mu (a local read: short). */
static void refresh_locked(pw_keyring *k, const file_id *id)
{
	char *text = NULL, why[256];
	size_t len = 0;
	pw_jwk_set next = {0};
	const char *path = k->cfg->jwt_jwks_file;

	k->last_load_s = mono_s();
	if (pw_util_read_file(path, PW_JWK_SET_MAX_BYTES + 1, &text, &len) != PW_OK) {
		snprintf(why, sizeof(why), "cannot read it: %s", strerror(errno));
		goto failed;
	}
	/* Skipped keys are logged only when the file changed, not at every periodic reload. */
	if (pw_jwk_set_parse(text, len, &next, id != NULL ? log_skipped : NULL, NULL, why,
	                     sizeof(why)) != PW_OK)
		goto failed;
	if (id != NULL)
		k->seen = *id;
	install(k, &next);
	k->stats.refresh_ok++;
	k->stats.keys = k->set.n;
	k->stats.last_good_s = (int64_t)time(NULL);
	if (k->failing)
		PW_LOG_INFO(NULL, "key set: %s loads again", path);
	k->failing = false;
	free(text);
	return;
failed:
	k->stats.refresh_failed++;
	if (!k->failing)
		PW_LOG_WARN(NULL, "key set: refresh of %s failed, keeping the last good set: %s",
		            path, why);
	k->failing = true;
	/* A file that stays broken is not re-read every second: only when it changes again. */
	if (id != NULL)
		k->seen = *id;
	free(text);
}

void pw_keyring_refresh(pw_keyring *k)
{
	file_id id;
	bool have = file_stat(k->cfg->jwt_jwks_file, &id);

	pthread_mutex_lock(&k->mu);
	refresh_locked(k, have ? &id : NULL);
	pthread_mutex_unlock(&k->mu);
}

static void *watch(void *arg)
{
	pw_keyring *k = arg;

	pthread_mutex_lock(&k->mu);
	while (!k->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += WATCH_S;
		pthread_cond_timedwait(&k->wake, &k->mu, &until);
		if (k->stopping)
			break;
		file_id id;
		bool have = file_stat(k->cfg->jwt_jwks_file, &id);
		bool changed = have && !same_file(&id, &k->seen);
		bool due = mono_s() - k->last_load_s >= k->cfg->jwt_jwks_refresh_s;
		if (changed || due)
			refresh_locked(k, have ? &id : NULL);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

pw_status pw_keyring_create(const pw_config *cfg, pw_keyring **out, char *err, size_t err_size)
{
	pw_keyring *k = NULL;
	pw_status st = PW_E_CONFIG;

	*out = NULL;
	if (cfg->jwt_source != PW_KEYS_JWKS_FILE || cfg->jwt_key == NULL) {
		snprintf(err, err_size, "JWT_JWKS_FILE: not configured");
		return PW_E_CONFIG;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return PW_E_NOMEM;
	k->cfg = cfg;
	k->last_unknown_s = -1;
	if (pthread_mutex_init(&k->mu, NULL) != 0) {
		free(k);
		return PW_E_INTERNAL;
	}
	if (pthread_cond_init(&k->wake, NULL) != 0) {
		pthread_mutex_destroy(&k->mu);
		free(k);
		return PW_E_INTERNAL;
	}
	/* The text pw_config_load read and checked is the first set: the file may have
	 * changed since, and the watch will see that. */
	if (!file_stat(cfg->jwt_jwks_file, &k->seen))
		memset(&k->seen, 0, sizeof(k->seen));
	char why[256];
	st = pw_jwk_set_parse((const char *)cfg->jwt_key, cfg->jwt_key_len, &k->set, log_skipped,
	                      NULL, why, sizeof(why));
	if (st != PW_OK) {
		snprintf(err, err_size, "JWT_JWKS_FILE: %s", why);
		st = st == PW_E_INVALID ? PW_E_CONFIG : st;
		goto out;
	}
	k->last_load_s = mono_s();
	k->stats.refresh_ok = 1;
	k->stats.keys = k->set.n;
	k->stats.last_good_s = (int64_t)time(NULL);
	atomic_store(&k->gen, 1);
	*out = k;
	k = NULL;
out:
	pw_keyring_destroy(k);
	return st;
}

pw_status pw_keyring_start(pw_keyring *k)
{
	if (pthread_create(&k->thread, NULL, watch, k) != 0)
		return PW_E_INTERNAL;
	k->started = true;
	return PW_OK;
}

void pw_keyring_destroy(pw_keyring *k)
{
	if (k == NULL)
		return;
	if (k->started) {
		pthread_mutex_lock(&k->mu);
		k->stopping = true;
		pthread_cond_signal(&k->wake);
		pthread_mutex_unlock(&k->mu);
		pthread_join(k->thread, NULL);
	}
	pw_jwk_set_clear(&k->set);
	pthread_cond_destroy(&k->wake);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

uint64_t pw_keyring_generation(const pw_keyring *k)
{
	return atomic_load(&((pw_keyring *)k)->gen);
}

pw_status pw_keyring_copy(pw_keyring *k, pw_jwk_set *out, uint64_t *generation)
{
	pw_status st;

	pthread_mutex_lock(&k->mu);
	st = pw_jwk_set_copy(&k->set, out);
	*generation = atomic_load(&k->gen);
	pthread_mutex_unlock(&k->mu);
	return st;
}

bool pw_keyring_unknown_kid(pw_keyring *k)
{
	uint64_t before = atomic_load(&k->gen);
	int64_t now = mono_s();

	pthread_mutex_lock(&k->mu);
	if (k->last_unknown_s < 0 || now - k->last_unknown_s >= PW_KEYRING_UNKNOWN_KID_S) {
		k->last_unknown_s = now;
		k->stats.unknown_kid++;
		file_id id;
		bool have = file_stat(k->cfg->jwt_jwks_file, &id);
		refresh_locked(k, have ? &id : NULL);
	}
	pthread_mutex_unlock(&k->mu);
	return atomic_load(&k->gen) != before;
}

void pw_keyring_get_stats(pw_keyring *k, pw_keyring_stats *s)
{
	pthread_mutex_lock(&k->mu);
	*s = k->stats;
	pthread_mutex_unlock(&k->mu);
}
