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

#include <jansson.h>

#include "pw_fetch.h"
#include "pw_keyarchive.h"
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
	const char *source;       /**< the file, URL or issuer, for the log */
	pthread_mutex_t fetch_mu; /**< one refresh at a time; never held with mu waiting on it */
	pthread_mutex_t mu;       /**< the set, the counters, the timing */
	pthread_cond_t wake;
	pthread_t thread;
	bool started, stopping;
	pw_jwk_set set;           /**< what tokens are checked with, under mu (and fetch_mu) */
	pw_jwk_set current;       /**< the source's keys as last loaded, under fetch_mu */
	bool archive, record;     /**< join the key archive; write to it (set before the thread) */
	PGconn *db;               /**< the archive's session, under fetch_mu; NULL: not connected */
	bool archive_pending;     /**< the last sync failed: retried every second */
	atomic_bool archive_read; /**< a sync has succeeded: the retired keys are known */
	_Atomic uint64_t gen;     /**< bumped when set changes */
	file_id seen;             /**< the file as last read (JWT_JWKS_FILE) */
	uint64_t text_hash;       /**< of the last text loaded: skipped keys are logged once */
	int64_t next_load_s;      /**< monotonic: when the next periodic refresh is due */
	int64_t last_unknown_s;   /**< monotonic: last unknown-kid refresh; -1: none yet */
	bool kid_wanted;        /**< an unknown kid asked the thread for a refresh, not done yet */
	bool failing;           /**< the last refresh failed: its warning was logged */
	char last_why[256];     /**< why the last refresh failed */
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

static bool live_in(const pw_jwk_set *s, const char *tp)
{
	const pw_jwk *k = pw_jwk_set_find(s, tp);
	return k != NULL && k->retired_at == 0;
}

/* The kids of a's live keys that are not live in b, space-separated ("" for none), for the
 * change log: a key retired into the archive counts as removed. */
static void kids_not_in(const pw_jwk_set *a, const pw_jwk_set *b, char *out, size_t size)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < a->n && o < size; i++) {
		const pw_jwk *k = &a->keys[i];
		if (k->retired_at != 0 || live_in(b, k->thumbprint))
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
	for (size_t i = 0; i < a->n; i++) {
		/* The same key in b, wherever it stands: the order of a set means nothing. */
		const pw_jwk *x = &a->keys[i], *y = pw_jwk_set_find(b, x->thumbprint);
		if (y == NULL || strcmp(x->kid, y->kid) != 0 || strcmp(x->alg, y->alg) != 0 ||
		    x->retired_at != y->retired_at)
			return false;
	}
	return true;
}

static void log_skipped(void *ctx, const char *kid, const char *why)
{
	(void)ctx;
	PW_LOG_WARN(NULL, "key set: key '%s' not used: %s", kid, why);
}

static size_t live_keys(const pw_jwk_set *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		n += s->keys[i].retired_at == 0;
	return n;
}

/* The keys tokens are checked with: the source's, joined with the archive when there is
 * one. When the archive cannot be read, the retired keys known from the last sync are kept
 * and the sync is tried again every second. Under fetch_mu; database I/O. */
static pw_status effective(pw_keyring *k, pw_jwk_set *out)
{
	char err[512] = "";

	if (!k->archive)
		return pw_jwk_set_copy(&k->current, out);
	if (k->db != NULL && PQstatus(k->db) != CONNECTION_OK) {
		PQfinish(k->db);
		k->db = NULL;
	}
	if (k->db == NULL)
		k->db = pw_keyarchive_connect(k->cfg, err, sizeof(err));
	if (k->db != NULL && pw_keyarchive_sync(k->db, &k->current, (int64_t)time(NULL), k->record,
	                                        out, err, sizeof(err)) == PW_OK) {
		if (k->archive_pending)
			PW_LOG_INFO(NULL, "key archive: in step again");
		k->archive_pending = false;
		atomic_store(&k->archive_read, true);
		return PW_OK;
	}
	if (!k->archive_pending)
		PW_LOG_WARN(NULL, "%s; keeping the keys retired before, trying again", err);
	k->archive_pending = true;
	pw_status st = pw_jwk_set_copy(&k->current, out);
	if (st != PW_OK)
		return st;
	pw_jwk *more = realloc(out->keys, (out->n + k->set.n + 1) * sizeof(*more));
	if (more == NULL) {
		pw_jwk_set_clear(out);
		return PW_E_NOMEM;
	}
	out->keys = more;
	for (size_t i = 0; i < k->set.n; i++) {
		const pw_jwk *old = &k->set.keys[i];
		if (old->retired_at == 0 || pw_jwk_set_find(&k->current, old->thumbprint) != NULL ||
		    EVP_PKEY_up_ref(old->pkey) != 1)
			continue;
		out->keys[out->n++] = *old;
	}
	return PW_OK;
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
	PW_LOG_INFO(NULL, "key set changed: %zu keys; added: %s; removed: %s", live_keys(next),
	            added[0] ? added : "none", gone[0] ? gone : "none");
	pw_jwk_set_clear(&k->set);
	k->set = *next;
	*next = (pw_jwk_set){0};
	k->stats.refresh_changed++;
	atomic_fetch_add(&k->gen, 1);
}

/* FNV-1a: enough to tell whether a set's text changed since it was last loaded. */
static uint64_t text_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

/* OpenID Connect discovery (OpenID Connect Discovery 1.0, section 4): the issuer's
 * document must name the same issuer, and its jwks_uri must be one we may fetch. */
static pw_status discover(const pw_config *cfg, char **jwks_uri, char *why, size_t why_size)
{
	const char *iss = cfg->jwt_oidc_issuer;
	size_t n = strlen(iss);
	char url[1024];
	pw_fetch_result r;
	json_t *doc = NULL;
	pw_status st;

	*jwks_uri = NULL;
	snprintf(url, sizeof(url), "%.*s/.well-known/openid-configuration",
	         (int)(n > 0 && iss[n - 1] == '/' ? n - 1 : n), iss);
	st = pw_fetch_get(url, cfg->jwt_jwks_ca_file, 256 * 1024, &r, why, why_size);
	if (st != PW_OK)
		return st;
	st = PW_E_RETRY;
	doc = json_loadb(r.body, r.len, 0, NULL);
	const char *got_iss = json_string_value(json_object_get(doc, "issuer"));
	const char *uri = json_string_value(json_object_get(doc, "jwks_uri"));
	if (got_iss == NULL || uri == NULL)
		snprintf(why, why_size, "%.160s: no issuer or jwks_uri in the discovery document",
		         url);
	else if (strcmp(got_iss, iss) != 0)
		snprintf(why, why_size, "%.160s: the document names another issuer", url);
	else if (!pw_fetch_url_allowed(uri))
		snprintf(why, why_size,
		         "jwks_uri %.160s: only https://, or http:// to a loopback host", uri);
	else if ((*jwks_uri = strdup(uri)) == NULL)
		st = PW_E_NOMEM;
	else
		st = PW_OK;
	json_decref(doc);
	free(r.body);
	return st;
}

/* The set's text from its source; *max_age from the response (-1: none, or a file). */
static pw_status load_text(pw_keyring *k, file_id *id, bool *have_id, char **text, size_t *len,
                           long *max_age, char *why, size_t why_size)
{
	const pw_config *cfg = k->cfg;
	pw_fetch_result r;
	char *uri = NULL;
	pw_status st;

	*max_age = -1;
	*have_id = false;
	if (cfg->jwt_source == PW_KEYS_JWKS_FILE) {
		*have_id = file_stat(cfg->jwt_jwks_file, id);
		st = pw_util_read_file(cfg->jwt_jwks_file, PW_JWK_SET_MAX_BYTES + 1, text, len);
		if (st != PW_OK)
			snprintf(why, why_size, "cannot read it: %s", strerror(errno));
		return st;
	}
	if (cfg->jwt_source == PW_KEYS_OIDC && (st = discover(cfg, &uri, why, why_size)) != PW_OK)
		return st;
	st = pw_fetch_get(uri != NULL ? uri : cfg->jwt_jwks_url, cfg->jwt_jwks_ca_file,
	                  PW_JWK_SET_MAX_BYTES, &r, why, why_size);
	free(uri);
	if (st == PW_OK) {
		*text = r.body;
		*len = r.len;
		*max_age = r.max_age;
	}
	return st;
}

/* When the next periodic refresh is due: JWT_JWKS_REFRESH_S, or the response's max-age
 * when it lies within the same bounds; a failed refresh is tried again within a minute.
 * Under mu. */
static void schedule(pw_keyring *k, bool ok, long max_age)
{
	int64_t period = k->cfg->jwt_jwks_refresh_s;

	if (max_age >= 60 && max_age <= 86400)
		period = max_age;
	if (!ok && period > 60)
		period = 60;
	k->next_load_s = mono_s() + period;
	k->stats.period_s = period;
}

/* Loads the set from its source and installs it, or counts the failure and keeps the
 * last good one. The fetch runs outside mu (it may take seconds over the network), one
 * refresh at a time. */
static void refresh(pw_keyring *k)
{
	char *text = NULL, why[256] = "";
	size_t len = 0;
	long max_age = -1;
	file_id id;
	bool have_id = false;
	pw_jwk_set next = {0};
	pw_status st;

	pthread_mutex_lock(&k->fetch_mu);
	st = load_text(k, &id, &have_id, &text, &len, &max_age, why, sizeof(why));
	uint64_t h = st == PW_OK ? text_hash(text, len) : 0;
	/* Skipped keys are logged when the text changed, not at every periodic reload. */
	if (st == PW_OK)
		st = pw_jwk_set_parse(text, len, &next, h != k->text_hash ? log_skipped : NULL,
		                      NULL, why, sizeof(why));
	free(text);
	pw_jwk_set eff = {0};
	if (st == PW_OK) {
		pw_jwk_set_clear(&k->current);
		k->current = next;
		st = effective(k, &eff);
		if (st != PW_OK)
			snprintf(why, sizeof(why), "out of memory");
	}

	pthread_mutex_lock(&k->mu);
	/* A file that stays broken is not re-read every second: only when it changes again. */
	if (have_id)
		k->seen = id;
	schedule(k, st == PW_OK, max_age);
	if (st == PW_OK) {
		k->text_hash = h;
		install(k, &eff);
		k->stats.refresh_ok++;
		k->stats.keys = live_keys(&k->set);
		k->stats.last_good_s = (int64_t)time(NULL);
		if (k->failing)
			PW_LOG_INFO(NULL, "key set: %s loads again", k->source);
		k->failing = false;
	} else {
		k->stats.refresh_failed++;
		snprintf(k->last_why, sizeof(k->last_why), "%s", why);
		if (!k->failing)
			PW_LOG_WARN(NULL,
			            "key set: refresh of %s failed, keeping the last good set: %s",
			            k->source, why);
		k->failing = true;
	}
	pthread_mutex_unlock(&k->mu);
	pthread_mutex_unlock(&k->fetch_mu);
}

void pw_keyring_refresh(pw_keyring *k)
{
	refresh(k);
}

/* The archive again, the source unchanged (its first sync, or one that failed). */
static void resync(pw_keyring *k)
{
	pw_jwk_set eff;

	pthread_mutex_lock(&k->fetch_mu);
	if (effective(k, &eff) == PW_OK) {
		pthread_mutex_lock(&k->mu);
		install(k, &eff);
		k->stats.keys = live_keys(&k->set);
		pthread_mutex_unlock(&k->mu);
	}
	pthread_mutex_unlock(&k->fetch_mu);
}

bool pw_keyring_use_archive(pw_keyring *k, bool record)
{
	k->archive = true;
	k->record = record;
	resync(k);
	return atomic_load(&k->archive_read);
}

static void *watch(void *arg)
{
	pw_keyring *k = arg;
	bool is_file = k->cfg->jwt_source == PW_KEYS_JWKS_FILE;

	pthread_mutex_lock(&k->mu);
	while (!k->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += WATCH_S;
		pthread_cond_timedwait(&k->wake, &k->mu, &until);
		if (k->stopping)
			break;
		file_id id;
		bool changed =
		    is_file && file_stat(k->cfg->jwt_jwks_file, &id) && !same_file(&id, &k->seen);
		bool due = mono_s() >= k->next_load_s;
		bool pending =
		    k->archive_pending; /* written under fetch_mu: a stale read waits a tick */
		bool wanted = k->kid_wanted;
		if (!changed && !due && !pending && !wanted)
			continue;
		pthread_mutex_unlock(&k->mu);
		if (changed || due || wanted)
			refresh(k);
		else
			resync(k);
		pthread_mutex_lock(&k->mu);
		/* Cleared only now: the lanes holding a token for it take it again once the
		 * refresh is done, whatever it brought. */
		if (wanted)
			k->kid_wanted = false;
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

/* The first set of a key set fetched over the network: tried every 2 s for up to 60 s
 * (the provider may be starting beside us), then given up with the last reason. */
static pw_status first_fetch(pw_keyring *k, int start_s, char *why, size_t why_size)
{
	int64_t deadline = mono_s() + start_s;

	for (;;) {
		refresh(k);
		pthread_mutex_lock(&k->mu);
		bool ok = k->set.n > 0;
		pthread_mutex_unlock(&k->mu);
		if (ok)
			return PW_OK;
		if (mono_s() >= deadline)
			break;
		struct timespec nap = {2, 0};
		nanosleep(&nap, NULL);
	}
	pthread_mutex_lock(&k->mu);
	snprintf(why, why_size, "no usable key set within %d s: %s", start_s, k->last_why);
	pthread_mutex_unlock(&k->mu);
	return PW_E_CONFIG;
}

pw_status pw_keyring_create(const pw_config *cfg, int start_s, pw_keyring **out, char *err,
                            size_t err_size)
{
	pw_keyring *k = NULL;
	const char *var = cfg->jwt_source == PW_KEYS_JWKS_URL ? "JWT_JWKS_URL"
	                  : cfg->jwt_source == PW_KEYS_OIDC   ? "JWT_OIDC_ISSUER"
	                                                      : "JWT_JWKS_FILE";
	char why[320];
	pw_status st = PW_E_CONFIG;

	*out = NULL;
	if (cfg->jwt_source < PW_KEYS_JWKS_FILE ||
	    (cfg->jwt_source == PW_KEYS_JWKS_FILE && cfg->jwt_key == NULL)) {
		snprintf(err, err_size, "%s: not configured", var);
		return PW_E_CONFIG;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL)
		return PW_E_NOMEM;
	k->cfg = cfg;
	k->source = cfg->jwt_source == PW_KEYS_JWKS_URL ? cfg->jwt_jwks_url
	            : cfg->jwt_source == PW_KEYS_OIDC   ? cfg->jwt_oidc_issuer
	                                                : cfg->jwt_jwks_file;
	k->last_unknown_s = -1;
	if (pthread_mutex_init(&k->mu, NULL) != 0) {
		free(k);
		return PW_E_INTERNAL;
	}
	if (pthread_mutex_init(&k->fetch_mu, NULL) != 0 || pthread_cond_init(&k->wake, NULL) != 0) {
		pthread_mutex_destroy(&k->mu);
		free(k);
		return PW_E_INTERNAL;
	}
	if (cfg->jwt_source != PW_KEYS_JWKS_FILE) {
		st = first_fetch(k, start_s, why, sizeof(why));
	} else {
		/* The text pw_config_load read and checked is the first set: the file may have
		 * changed since, and the watch will see that. */
		if (!file_stat(cfg->jwt_jwks_file, &k->seen))
			memset(&k->seen, 0, sizeof(k->seen));
		st = pw_jwk_set_parse((const char *)cfg->jwt_key, cfg->jwt_key_len, &k->set,
		                      log_skipped, NULL, why, sizeof(why));
		if (st == PW_OK)
			st = pw_jwk_set_copy(&k->set, &k->current);
		if (st == PW_OK) {
			k->text_hash = text_hash((const char *)cfg->jwt_key, cfg->jwt_key_len);
			k->stats.refresh_ok = 1;
			k->stats.keys = live_keys(&k->set);
			k->stats.last_good_s = (int64_t)time(NULL);
			schedule(k, true, -1);
			atomic_fetch_add(&k->gen, 1);
		}
	}
	if (st != PW_OK) {
		snprintf(err, err_size, "%s: %s", var, why);
		st = st == PW_E_INVALID ? PW_E_CONFIG : st;
		goto out;
	}
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
	pw_jwk_set_clear(&k->current);
	PQfinish(k->db);
	pthread_cond_destroy(&k->wake);
	pthread_mutex_destroy(&k->fetch_mu);
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

/* Whether a token naming a kid the set lacks should wait, with the thread running: while
 * an unknown-kid refresh is under way, or while the archive was never read (the key may be
 * a retired one, valid for the command's time: the worker may have started with the
 * database down). Under mu. */
static bool kid_waits(pw_keyring *k)
{
	return k->started && (k->kid_wanted || (k->archive && !atomic_load(&k->archive_read)));
}

pw_keyring_kid pw_keyring_unknown_kid(pw_keyring *k)
{
	int64_t now = mono_s();
	bool go = false;
	pw_keyring_kid r = PW_KEYRING_KID_FINAL;

	pthread_mutex_lock(&k->mu);
	/* While the source is failing, a token does not wait for it: the thread keeps trying
	 * (within a minute), and made-up kids cannot stall a partition on a dead provider. */
	if (kid_waits(k)) {
		r = PW_KEYRING_KID_WAIT;
	} else if (!k->failing &&
	           (k->last_unknown_s < 0 || now - k->last_unknown_s >= PW_KEYRING_UNKNOWN_KID_S)) {
		k->last_unknown_s = now;
		k->stats.unknown_kid++;
		go = true;
		if (k->started) {
			k->kid_wanted = true;
			pthread_cond_signal(&k->wake);
			r = PW_KEYRING_KID_WAIT;
		}
	}
	pthread_mutex_unlock(&k->mu);
	/* No thread (a replay, a test): nothing waits on this caller, so it refreshes itself. */
	if (go && r == PW_KEYRING_KID_FINAL)
		refresh(k);
	return r;
}

bool pw_keyring_kid_waits(pw_keyring *k)
{
	pthread_mutex_lock(&k->mu);
	bool w = kid_waits(k);
	pthread_mutex_unlock(&k->mu);
	return w;
}

void pw_keyring_get_stats(pw_keyring *k, pw_keyring_stats *s)
{
	pthread_mutex_lock(&k->mu);
	*s = k->stats;
	pthread_mutex_unlock(&k->mu);
}
