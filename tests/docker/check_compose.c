/* docker/compose.yaml and docker/Dockerfile, checked without a Docker engine (CI has
 * none): the compose file is parsed with libyaml and the Dockerfile line by line, and each
 * rule an operator depends on is asserted. Every checker is also run on copies of the
 * real files with one thing broken (a mutation), and must report it: a checker that
 * passes everything would otherwise pass unnoticed.
 *
 * What this cannot show: that the images build, pull and start. docker/README.md says so. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include <check.h>

#include "pw_check_main.h"
#include "pw_config.h"

#ifndef PW_SOURCE_DIR_DEFAULT
#define PW_SOURCE_DIR_DEFAULT "."
#endif

#define MAX_COPIED 32

/* ---- problem list ------------------------------------------------------------------- */

typedef struct problems {
	char text[16384];
	size_t len;
	int n;
} problems;

static void problem(problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(problems *p, const char *fmt, ...)
{
	va_list ap;

	p->n++;
	if (p->len + 4 >= sizeof(p->text))
		return;
	p->len += (size_t)snprintf(p->text + p->len, sizeof(p->text) - p->len, "- ");
	va_start(ap, fmt);
	int w = vsnprintf(p->text + p->len, sizeof(p->text) - p->len, fmt, ap);
	va_end(ap);
	if (w > 0)
		p->len += (size_t)w;
	if (p->len + 2 < sizeof(p->text)) {
		p->text[p->len++] = '\n';
		p->text[p->len] = '\0';
	} else {
		p->len = sizeof(p->text) - 1;
	}
}

/* ---- files -------------------------------------------------------------------------- */

static const char *source_dir(void)
{
	const char *d = getenv("PW_SOURCE_DIR");
	return d && *d ? d : PW_SOURCE_DIR_DEFAULT;
}

static char *slurp(const char *rel)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", source_dir(), rel);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	char *buf = NULL;
	size_t len = 0, cap = 0, r;
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			ck_assert(buf != NULL);
		}
		r = fread(buf + len, 1, 4096, f);
		len += r;
	} while (r == 4096);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* A copy of text with the first occurrence of from replaced by to; from must occur, so
 * a mutation test cannot quietly test the unmutated file after the file changes. */
static char *mutate(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	ck_assert_msg(at != NULL, "mutation target not found: %s", from);
	size_t head = (size_t)(at - text), fl = strlen(from), tl = strlen(to);
	char *out = malloc(strlen(text) - fl + tl + 1);
	ck_assert(out != NULL);
	memcpy(out, text, head);
	memcpy(out + head, to, tl);
	strcpy(out + head + tl, at + fl);
	return out;
}

/* ---- YAML --------------------------------------------------------------------------- */

typedef struct yml {
	yaml_document_t doc;
	yaml_node_t *root;
	int loaded;
} yml;

static int yml_load(yml *y, const char *text, problems *p)
{
	yaml_parser_t parser;

	memset(y, 0, sizeof(*y));
	if (!yaml_parser_initialize(&parser)) {
		problem(p, "libyaml: cannot initialise a parser");
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
	if (!yaml_parser_load(&parser, &y->doc)) {
		problem(p, "not YAML: %s at line %zu", parser.problem ? parser.problem : "error",
		        parser.problem_mark.line + 1);
		yaml_parser_delete(&parser);
		return -1;
	}
	yaml_parser_delete(&parser);
	y->loaded = 1;
	y->root = yaml_document_get_root_node(&y->doc);
	if (y->root == NULL || y->root->type != YAML_MAPPING_NODE) {
		problem(p, "the document is not a mapping");
		return -1;
	}
	return 0;
}

static void yml_free(yml *y)
{
	if (y->loaded)
		yaml_document_delete(&y->doc);
	y->loaded = 0;
}

static yaml_node_t *at(yml *y, int index)
{
	return yaml_document_get_node(&y->doc, index);
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int is_map(const yaml_node_t *n)
{
	return n && n->type == YAML_MAPPING_NODE;
}

static int is_seq(const yaml_node_t *n)
{
	return n && n->type == YAML_SEQUENCE_NODE;
}

/* The value under key; follows merge keys (<<: *anchor), which libyaml leaves to us. */
static yaml_node_t *get(yml *y, yaml_node_t *map, const char *key)
{
	if (!is_map(map))
		return NULL;
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
	     pr++) {
		const char *k = scalar(at(y, pr->key));
		if (k && strcmp(k, key) == 0)
			return at(y, pr->value);
	}
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
	     pr++) {
		const char *k = scalar(at(y, pr->key));
		yaml_node_t *v = at(y, pr->value);
		yaml_node_t *found = NULL;
		if (k == NULL || strcmp(k, "<<") != 0)
			continue;
		if (is_map(v))
			found = get(y, v, key);
		for (yaml_node_item_t *it = is_seq(v) ? v->data.sequence.items.start : NULL;
		     it && it < v->data.sequence.items.top && !found; it++)
			found = get(y, at(y, *it), key);
		if (found)
			return found;
	}
	return NULL;
}

static const char *get_str(yml *y, yaml_node_t *map, const char *key)
{
	return scalar(get(y, map, key));
}

/* Compose refuses a file with a repeated key; libyaml keeps both silently. */
static void check_duplicate_keys(yml *y, problems *p)
{
	for (yaml_node_t *n = y->doc.nodes.start; n < y->doc.nodes.top; n++) {
		if (n->type != YAML_MAPPING_NODE)
			continue;
		for (yaml_node_pair_t *a = n->data.mapping.pairs.start;
		     a < n->data.mapping.pairs.top; a++)
			for (yaml_node_pair_t *b = a + 1; b < n->data.mapping.pairs.top; b++) {
				const char *ka = scalar(at(y, a->key)), *kb = scalar(at(y, b->key));
				if (ka && kb && strcmp(ka, kb) == 0 && strcmp(ka, "<<") != 0)
					problem(p,
					        "key '%s' appears twice in one mapping (line %zu)",
					        ka, n->start_mark.line + 1);
			}
	}
}

/* ---- compose rules ------------------------------------------------------------------ */

typedef void (*env_fn)(const char *name, const char *value, void *ctx);

/* Calls fn for every variable of a service, in either form compose accepts: a map, or a
 * list of "KEY=value" / "KEY" (the latter passes the caller's value through). */
static void each_env(yml *y, yaml_node_t *svc, env_fn fn, void *ctx)
{
	yaml_node_t *env = get(y, svc, "environment");
	if (is_map(env)) {
		for (yaml_node_pair_t *pr = env->data.mapping.pairs.start;
		     pr < env->data.mapping.pairs.top; pr++) {
			const char *k = scalar(at(y, pr->key));
			if (k == NULL)
				continue;
			if (strcmp(k, "<<") == 0) {
				/* A merged block (<<: *anchor): its variables are set here too. */
				yaml_node_t *v = at(y, pr->value);
				for (yaml_node_pair_t *q = is_map(v) ? v->data.mapping.pairs.start
				                                     : NULL;
				     q && q < v->data.mapping.pairs.top; q++) {
					const char *mk = scalar(at(y, q->key));
					if (mk)
						fn(mk, scalar(at(y, q->value)), ctx);
				}
				continue;
			}
			fn(k, scalar(at(y, pr->value)), ctx);
		}
	} else if (is_seq(env)) {
		for (yaml_node_item_t *it = env->data.sequence.items.start;
		     it < env->data.sequence.items.top; it++) {
			const char *item = scalar(at(y, *it));
			char name[256];
			if (item == NULL)
				continue;
			const char *eq = strchr(item, '=');
			size_t n = eq ? (size_t)(eq - item) : strlen(item);
			if (n >= sizeof(name))
				n = sizeof(name) - 1;
			memcpy(name, item, n);
			name[n] = '\0';
			fn(name, eq ? eq + 1 : NULL, ctx);
		}
	}
}

typedef struct env_ctx {
	problems *p;
	const char *service;
	const char *also; /**< one more name this service's program reads, or NULL */
} env_ctx;

static void env_must_be_setting(const char *name, const char *value, void *c)
{
	env_ctx *ctx = c;
	(void)value;
	if (!pw_config_is_setting(name) && !(ctx->also && strcmp(name, ctx->also) == 0))
		problem(ctx->p, "service %s: %s is not a patient-worker setting", ctx->service,
		        name);
}

/* The value of one variable (NULL when unset or passed through). */
typedef struct env_find {
	const char *name;
	const char *value;
	int found;
} env_find;

static void env_find_fn(const char *name, const char *value, void *c)
{
	env_find *f = c;
	if (strcmp(name, f->name) == 0) {
		f->found = 1;
		f->value = value;
	}
}

static int env_has(yml *y, yaml_node_t *svc, const char *name, const char **value)
{
	env_find f = {name, NULL, 0};
	each_env(y, svc, env_find_fn, &f);
	if (value)
		*value = f.value;
	return f.found;
}

typedef struct env_scan {
	problems *p;
	const char *service;
	const char *needle; /**< reported when a variable name contains it */
} env_scan;

static void env_name_contains(const char *name, const char *value, void *c)
{
	env_scan *s = c;
	(void)value;
	if (strstr(name, s->needle))
		problem(s->p, "service %s: %s (%s mode)", s->service, name, s->needle);
}

static int healthcheck_enabled(yml *y, yaml_node_t *svc)
{
	yaml_node_t *hc = get(y, svc, "healthcheck");
	if (!is_map(hc))
		return 0;
	const char *dis = get_str(y, hc, "disable");
	if (dis && strcmp(dis, "true") == 0)
		return 0;
	yaml_node_t *t = get(y, hc, "test");
	if (scalar(t))
		return *scalar(t) != '\0';
	if (!is_seq(t) || t->data.sequence.items.start == t->data.sequence.items.top)
		return 0;
	const char *first = scalar(at(y, *t->data.sequence.items.start));
	return first && strcmp(first, "NONE") != 0;
}

static int one_shot(yml *y, yaml_node_t *svc)
{
	const char *r = get_str(y, svc, "restart");
	return r && strcmp(r, "no") == 0;
}

/* Every scalar of a command or healthcheck test, joined by spaces (a string form stays
 * as written, newlines included). */
static void joined(yml *y, yaml_node_t *n, char *out, size_t size)
{
	size_t len = 0;
	out[0] = '\0';
	if (scalar(n)) {
		snprintf(out, size, "%s", scalar(n));
		return;
	}
	for (yaml_node_item_t *it = is_seq(n) ? n->data.sequence.items.start : NULL;
	     it && it < n->data.sequence.items.top; it++) {
		const char *s = scalar(at(y, *it));
		int w = snprintf(out + len, size - len, "%s%s", len ? " " : "", s ? s : "");
		if (w < 0 || (size_t)w >= size - len)
			break;
		len += (size_t)w;
	}
}

static const char *depends_condition(yml *y, yaml_node_t *svc, const char *on)
{
	yaml_node_t *d = get(y, svc, "depends_on");
	if (is_seq(d)) {
		/* The short form means service_started. */
		for (yaml_node_item_t *it = d->data.sequence.items.start;
		     it < d->data.sequence.items.top; it++) {
			const char *s = scalar(at(y, *it));
			if (s && strcmp(s, on) == 0)
				return "service_started";
		}
		return NULL;
	}
	yaml_node_t *e = get(y, d, on);
	if (e == NULL)
		return NULL;
	const char *c = get_str(y, e, "condition");
	return c ? c : "service_started";
}

/* The user of a libpq URI (postgresql://user[:password]@host/db) or key=value string. */
static void db_user(const char *url, char *out, size_t size)
{
	out[0] = '\0';
	const char *s = strstr(url, "://");
	if (s) {
		s += 3;
		const char *atp = strchr(s, '@');
		if (atp == NULL)
			return;
		size_t n = strcspn(s, ":@");
		if (n >= size)
			n = size - 1;
		memcpy(out, s, n);
		out[n] = '\0';
		return;
	}
	s = strstr(url, "user=");
	if (s && (s == url || s[-1] == ' ')) {
		s += 5;
		size_t n = strcspn(s, " ");
		if (n >= size)
			n = size - 1;
		memcpy(out, s, n);
		out[n] = '\0';
	}
}

/* "--topic NAME" as a whole word in one line of the script, and that line. */
static const char *topic_line(const char *script, const char *topic, char *line, size_t size)
{
	char needle[128];
	snprintf(needle, sizeof(needle), "--topic %s", topic);
	for (const char *s = strstr(script, needle); s; s = strstr(s + 1, needle)) {
		char after = s[strlen(needle)];
		if (after != ' ' && after != '\n' && after != '\0' && after != '"' && after != '\'')
			continue;
		const char *b = s, *e = s;
		while (b > script && b[-1] != '\n')
			b--;
		while (*e && *e != '\n')
			e++;
		snprintf(line, size, "%.*s", (int)(e - b), b);
		return line;
	}
	return NULL;
}

/* The same ${NAME:-default} everywhere: a password default written twice must agree. */
static void check_defaults_agree(const char *text, problems *p)
{
	struct {
		char name[64];
		char def[256];
	} seen[64];
	int nseen = 0;

	for (const char *s = text; (s = strchr(s, '$')) != NULL;) {
		if (s[1] == '$') { /* $$ is a literal dollar */
			s += 2;
			continue;
		}
		if (s[1] != '{') {
			s++;
			continue;
		}
		const char *name = s + 2, *end = strchr(name, '}');
		if (end == NULL)
			break;
		size_t nl = strcspn(name, ":-?}");
		const char *op = name + nl;
		s = end + 1;
		if (nl == 0 || nl >= sizeof(seen[0].name))
			continue;
		const char *def;
		if (strncmp(op, ":-", 2) == 0)
			def = op + 2;
		else if (*op == '-')
			def = op + 1;
		else
			continue;
		char dv[256];
		snprintf(dv, sizeof(dv), "%.*s", (int)(end - def), def);
		int i;
		for (i = 0; i < nseen; i++)
			if (strlen(seen[i].name) == nl && strncmp(seen[i].name, name, nl) == 0)
				break;
		if (i == nseen) {
			if (nseen == (int)(sizeof(seen) / sizeof(seen[0])))
				continue;
			snprintf(seen[i].name, sizeof(seen[i].name), "%.*s", (int)nl, name);
			snprintf(seen[i].def, sizeof(seen[i].def), "%s", dv);
			nseen++;
		} else if (strcmp(seen[i].def, dv) != 0) {
			problem(p, "${%s} has two defaults: '%s' and '%s'", seen[i].name,
			        seen[i].def, dv);
		}
	}
}

/* The value a ${NAME:-default} gives when NAME is not set, else the text itself. */
static void effective(const char *v, char *out, size_t size)
{
	const char *op;
	size_t n = v ? strlen(v) : 0;
	if (v && n > 3 && v[0] == '$' && v[1] == '{' && v[n - 1] == '}' &&
	    (op = strstr(v, ":-")) != NULL) {
		snprintf(out, size, "%.*s", (int)(v + n - 1 - (op + 2)), op + 2);
		return;
	}
	snprintf(out, size, "%s", v ? v : "");
}

static void check_compose_text(const char *text, problems *p)
{
	yml y;
	char buf[4096];

	if (yml_load(&y, text, p) != 0) {
		yml_free(&y);
		return;
	}
	check_duplicate_keys(&y, p);
	check_defaults_agree(text, p);
	if (get(&y, y.root, "version"))
		problem(p, "top-level 'version' is obsolete in the Compose specification");

	yaml_node_t *services = get(&y, y.root, "services");
	if (!is_map(services)) {
		problem(p, "no services mapping");
		yml_free(&y);
		return;
	}
	yaml_node_t *kafka = get(&y, services, "kafka"), *pg = get(&y, services, "postgres");
	yaml_node_t *migrate = get(&y, services, "migrate"), *worker = get(&y, services, "worker");
	yaml_node_t *topics = get(&y, services, "topics");
	const char *names[] = {"kafka", "postgres", "migrate", "worker", "topics"};
	yaml_node_t *nodes[] = {kafka, pg, migrate, worker, topics};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!is_map(nodes[i]))
			problem(p, "service %s is missing", names[i]);

	/* Kafka in KRaft mode: its own controller, no ZooKeeper anywhere. */
	if (is_map(kafka)) {
		const char *img = get_str(&y, kafka, "image"), *roles = NULL;
		if (img == NULL || strncmp(img, "apache/kafka:", 13) != 0)
			problem(p, "kafka: image is not apache/kafka");
		if (!env_has(&y, kafka, "KAFKA_PROCESS_ROLES", &roles) || roles == NULL ||
		    !strstr(roles, "broker") || !strstr(roles, "controller"))
			problem(p, "kafka: KAFKA_PROCESS_ROLES must be broker,controller (KRaft)");
		if (!env_has(&y, kafka, "KAFKA_CONTROLLER_QUORUM_VOTERS", NULL))
			problem(p, "kafka: KAFKA_CONTROLLER_QUORUM_VOTERS is not set");
	}
	for (yaml_node_pair_t *pr = services->data.mapping.pairs.start;
	     pr < services->data.mapping.pairs.top; pr++) {
		const char *name = scalar(at(&y, pr->key));
		yaml_node_t *svc = at(&y, pr->value);
		const char *img = get_str(&y, svc, "image");
		env_scan s = {p, name ? name : "?", "ZOOKEEPER"};
		if ((name && strstr(name, "zookeeper")) || (img && strstr(img, "zookeeper")))
			problem(p, "service %s: ZooKeeper has no place in a KRaft setup",
			        s.service);
		each_env(&y, svc, env_name_contains, &s);
	}

	if (is_map(pg)) {
		const char *img = get_str(&y, pg, "image");
		if (img == NULL ||
		    (strcmp(img, "postgres:15") != 0 && strncmp(img, "postgres:15-", 12) != 0 &&
		     strncmp(img, "postgres:15.", 12) != 0))
			problem(p, "postgres: image is not PostgreSQL 15 (%s)", img ? img : "none");
	}

	/* Which image is the worker's: every service running it gets the settings check. */
	const char *worker_image = is_map(worker) ? get_str(&y, worker, "image") : NULL;
	if (is_map(worker)) {
		if (!get(&y, worker, "build"))
			problem(p,
			        "worker: no build section, so `up --build` cannot make the image");
		if (worker_image == NULL)
			problem(p, "worker: no image name for the other services to reuse");
		yaml_node_t *deploy = get(&y, worker, "deploy");
		const char *replicas = get_str(&y, deploy, "replicas");
		if (replicas == NULL || strcmp(replicas, "2") != 0)
			problem(p, "worker: deploy.replicas is %s, not 2",
			        replicas ? replicas : "unset");
		joined(&y, get(&y, get(&y, worker, "healthcheck"), "test"), buf, sizeof(buf));
		if (!strstr(buf, "patient-worker") || !strstr(buf, "healthcheck"))
			problem(p, "worker: healthcheck is not `patient-worker healthcheck`");
		struct {
			const char *on, *cond;
		} deps[] = {{"migrate", "service_completed_successfully"},
		            {"topics", "service_completed_successfully"},
		            {"kafka", "service_healthy"},
		            {"postgres", "service_healthy"}};
		for (size_t i = 0; i < sizeof(deps) / sizeof(deps[0]); i++) {
			const char *c = depends_condition(&y, worker, deps[i].on);
			if (c == NULL || strcmp(c, deps[i].cond) != 0)
				problem(p, "worker: must depend on %s with %s (has %s)", deps[i].on,
				        deps[i].cond, c ? c : "nothing");
		}
		const char *url = NULL, *http = NULL, *cursor = NULL, *secret = NULL;
		char user[128], su[128], eff[512];
		if (!env_has(&y, worker, "DATABASE_URL", &url) || url == NULL) {
			problem(p, "worker: DATABASE_URL is not set");
		} else {
			/* A superuser login can RESET ROLE out of patients_app. */
			const char *pgu = NULL;
			if (!is_map(pg) || !env_has(&y, pg, "POSTGRES_USER", &pgu) || pgu == NULL)
				pgu = "postgres";
			snprintf(su, sizeof(su), "%s", pgu);
			db_user(url, user, sizeof(user));
			if (user[0] == '\0' || strcmp(user, su) == 0)
				problem(p, "worker: DATABASE_URL logs in as the superuser '%s'",
				        user[0] ? user : "(default)");
		}
		if (!env_has(&y, worker, "HTTP_ADDR", &http) || http == NULL ||
		    strncmp(http, "127.", 4) == 0 || strncmp(http, "localhost:", 10) == 0)
			problem(p, "worker: HTTP_ADDR must listen beyond loopback");
		if (!env_has(&y, worker, "CURSOR_SECRET", &cursor) || cursor == NULL)
			problem(p, "worker: CURSOR_SECRET unset: each replica would refuse the "
			           "others' cursors");
		if (!env_has(&y, worker, "JWT_SECRET", &secret) || secret == NULL) {
			problem(p, "worker: JWT_SECRET is not set");
		} else {
			effective(secret, eff, sizeof(eff));
			if (strlen(eff) < 32)
				problem(p, "worker: JWT_SECRET (or its default) is shorter than "
				           "the 32 bytes the worker requires");
		}
	}

	if (is_map(migrate)) {
		joined(&y, get(&y, migrate, "command"), buf, sizeof(buf));
		if (strcmp(buf, "migrate") != 0)
			problem(p, "migrate: command is '%s', not migrate", buf);
		const char *img = get_str(&y, migrate, "image");
		if (worker_image && (img == NULL || strcmp(img, worker_image) != 0))
			problem(p, "migrate: does not run the worker image %s", worker_image);
		const char *c = depends_condition(&y, migrate, "postgres");
		if (c == NULL || strcmp(c, "service_healthy") != 0)
			problem(p, "migrate: must wait for postgres to be healthy");
	}

	/* The command topics must stamp LogAppendTime (the contract's time of a command). */
	if (is_map(topics)) {
		char line[1024];
		joined(&y, get(&y, topics, "command"), buf, sizeof(buf));
		/* A rerun (compose up again, or after a restart) must not fail on topics
		 * that exist. */
		if (!strstr(buf, "--if-not-exists"))
			problem(p, "topics: created without --if-not-exists");
		const char *all[] = {"patients.create", "patients.query", "patients.replies",
		                     "patients.dlq"};
		for (size_t i = 0; i < 4; i++) {
			const char *l = topic_line(buf, all[i], line, sizeof(line));
			if (l == NULL)
				problem(p, "topics: does not create %s", all[i]);
			else if (i < 2 && !strstr(l, "message.timestamp.type=LogAppendTime"))
				problem(p, "topics: %s is created without LogAppendTime", all[i]);
		}
	}

	/* Every service: watched by a healthcheck, or a one-shot; and every dependency
	 * condition must be one its target can ever meet. */
	for (yaml_node_pair_t *pr = services->data.mapping.pairs.start;
	     pr < services->data.mapping.pairs.top; pr++) {
		const char *name = scalar(at(&y, pr->key));
		yaml_node_t *svc = at(&y, pr->value);
		name = name ? name : "?";
		if (!healthcheck_enabled(&y, svc) && !one_shot(&y, svc))
			problem(p, "service %s: neither a healthcheck nor restart \"no\"", name);
		yaml_node_t *d = get(&y, svc, "depends_on");
		for (yaml_node_pair_t *q = is_map(d) ? d->data.mapping.pairs.start : NULL;
		     q && q < d->data.mapping.pairs.top; q++) {
			const char *on = scalar(at(&y, q->key));
			const char *c = get_str(&y, at(&y, q->value), "condition");
			yaml_node_t *target = on ? get(&y, services, on) : NULL;
			if (!is_map(target)) {
				problem(p, "service %s: depends on unknown service %s", name,
				        on ? on : "?");
				continue;
			}
			if (c && strcmp(c, "service_healthy") == 0 &&
			    !healthcheck_enabled(&y, target))
				problem(p,
				        "service %s: waits for %s to be healthy, which has no "
				        "healthcheck",
				        name, on);
			if (c && strcmp(c, "service_completed_successfully") == 0 &&
			    !one_shot(&y, target))
				problem(p, "service %s: waits for %s to complete, which restarts",
				        name, on);
		}

		/* The worker image reads only its settings: a name it does not know is a typo
		 * that would silently leave a default in force. */
		const char *img = get_str(&y, svc, "image");
		if (get(&y, svc, "build") ||
		    (worker_image && img && strcmp(img, worker_image) == 0)) {
			/* patientctl reads the settings too, and its own PW_TOKEN. */
			char entry[256];
			joined(&y, get(&y, svc, "entrypoint"), entry, sizeof(entry));
			env_ctx ctx = {p, name, strstr(entry, "patientctl") ? "PW_TOKEN" : NULL};
			each_env(&y, svc, env_must_be_setting, &ctx);
			if (get(&y, svc, "env_file"))
				problem(p, "service %s: env_file cannot be checked here", name);
		}
	}
	yml_free(&y);
}

/* ---- Dockerfile --------------------------------------------------------------------- */

typedef struct instr {
	char op[16];
	char *args;
	int line;
} instr;

/* Instructions with continuation lines joined and comments dropped (the default escape
 * character only). Returns the count; fills out (caller frees each args). */
static int dockerfile_parse(const char *text, instr *out, int max)
{
	int n = 0, lineno = 0;
	const char *s = text;
	char *cur = NULL;
	size_t len = 0;
	int start = 0;

	while (*s) {
		const char *e = strchr(s, '\n');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		lineno++;
		const char *t = s;
		while (t < s + l && (*t == ' ' || *t == '\t'))
			t++;
		int comment = t < s + l && *t == '#';
		/* Blank and comment lines end nothing, even inside a continuation. */
		if (!comment && t < s + l) {
			size_t ll = (size_t)(s + l - t);
			while (ll && (t[ll - 1] == ' ' || t[ll - 1] == '\t' || t[ll - 1] == '\r'))
				ll--;
			int cont = ll && t[ll - 1] == '\\';
			if (cont)
				ll--;
			if (cur == NULL)
				start = lineno;
			cur = realloc(cur, len + ll + 2);
			ck_assert(cur != NULL);
			memcpy(cur + len, t, ll);
			len += ll;
			cur[len++] = ' ';
			cur[len] = '\0';
			if (!cont) {
				if (len > 1 && n < max) {
					size_t ol = strcspn(cur, " \t");
					snprintf(out[n].op, sizeof(out[n].op), "%.*s", (int)ol,
					         cur);
					for (char *c = out[n].op; *c; c++)
						if (*c >= 'a' && *c <= 'z')
							*c = (char)(*c - 'a' + 'A');
					const char *a = cur + ol;
					while (*a == ' ' || *a == '\t')
						a++;
					out[n].args = strdup(a);
					out[n].line = start;
					n++;
				}
				free(cur);
				cur = NULL;
				len = 0;
			}
		}
		s = e ? e + 1 : s + l;
	}
	free(cur); /* a continuation at the end of the file ends nothing */
	return n;
}

/* Whitespace-separated words, honouring double quotes; returns the count. */
static int words(const char *s, char out[][512], int max)
{
	int n = 0;
	while (*s && n < max) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		size_t l = 0;
		int q = 0;
		while (*s && (q || (*s != ' ' && *s != '\t'))) {
			if (*s == '"')
				q = !q;
			if (l + 1 < sizeof(out[0]))
				out[n][l++] = *s;
			s++;
		}
		out[n][l] = '\0';
		n++;
	}
	return n;
}

typedef struct copied {
	char names[MAX_COPIED][256]; /**< first path component of each build-context source */
	int n;
} copied;

static void check_dockerfile_text(const char *text, const char *srcdir, copied *cp, problems *p)
{
	instr ins[256];
	int n = dockerfile_parse(text, ins, 256), last_from = -1, froms = 0;
	char w[64][512];

	if (cp)
		cp->n = 0;
	for (int i = 0; i < n; i++)
		if (strcmp(ins[i].op, "FROM") == 0) {
			froms++;
			last_from = i;
		}
	if (froms < 2)
		problem(p, "Dockerfile: %d FROM, not a multi-stage build", froms);
	if (last_from >= 0) {
		int nw = words(ins[last_from].args, w, 64), k = 0;
		while (k < nw && strncmp(w[k], "--", 2) == 0)
			k++;
		/* debian:12-slim, debian:bookworm-slim, or a pinned form of either
		 * (debian:12.11-slim, debian:bookworm-20250811-slim, @sha256:...). */
		char img[512] = "";
		if (k < nw)
			snprintf(img, sizeof(img), "%.*s", (int)strcspn(w[k], "@"), w[k]);
		size_t il = strlen(img);
		if ((strncmp(img, "debian:12", 9) != 0 &&
		     strncmp(img, "debian:bookworm", 15) != 0) ||
		    il < 5 || strcmp(img + il - 5, "-slim") != 0)
			problem(p, "Dockerfile: the runtime stage is not debian:12-slim (%s)",
			        img[0] ? img : "none");
	}

	const char *user = NULL;
	int healthcheck = 0, entry = 0, expose = 0, tests_off = 0;
	for (int i = 0; i < n; i++) {
		const char *op = ins[i].op, *a = ins[i].args;
		int runtime = i > last_from;
		if (strcmp(op, "RUN") == 0 && strstr(a, "-DPW_TESTS=OFF"))
			tests_off = 1;
		if (!runtime && strcmp(op, "COPY") == 0 && cp) {
			int nw = words(a, w, 64), k = 0, from = 0;
			for (; k < nw && strncmp(w[k], "--", 2) == 0; k++)
				if (strncmp(w[k], "--from", 6) == 0)
					from = 1;
			if (from || (k < nw && w[k][0] == '['))
				continue;
			for (int j = k; j < nw - 1; j++) { /* the last word is the destination */
				char path[4096];
				struct stat st;
				snprintf(path, sizeof(path), "%s/%s", srcdir, w[j]);
				if (stat(path, &st) != 0)
					problem(p,
					        "Dockerfile line %d: COPY source %s does not exist",
					        ins[i].line, w[j]);
				if (cp->n < MAX_COPIED) {
					size_t cl = strcspn(w[j], "/");
					snprintf(cp->names[cp->n++], sizeof(cp->names[0]), "%.*s",
					         (int)cl, w[j]);
				}
			}
		}
		if (!runtime)
			continue;
		if (strcmp(op, "USER") == 0)
			user = a;
		if (strcmp(op, "HEALTHCHECK") == 0)
			healthcheck = strncmp(a, "NONE", 4) != 0;
		if (strcmp(op, "ENTRYPOINT") == 0)
			entry = strstr(a, "patient-worker") != NULL;
		if (strcmp(op, "EXPOSE") == 0 && strstr(a, "9464"))
			expose = 1;
		if (strcmp(op, "RUN") == 0 && strstr(a, "apt-get install")) {
			if (!strstr(a, "--no-install-recommends"))
				problem(p,
				        "Dockerfile line %d: runtime apt-get install without "
				        "--no-install-recommends",
				        ins[i].line);
			if (!strstr(a, "rm -rf /var/lib/apt/lists"))
				problem(p,
				        "Dockerfile line %d: apt lists left in the runtime image",
				        ins[i].line);
		}
		if (strcmp(op, "ENV") == 0) {
			int nw = words(a, w, 64);
			for (int j = 0; j < nw; j++) {
				char name[256];
				size_t kl = strcspn(w[j], "=");
				if (w[j][kl] != '=' && j > 0)
					break; /* legacy "ENV KEY value": one key only */
				snprintf(name, sizeof(name), "%.*s", (int)kl, w[j]);
				if (!pw_config_is_setting(name))
					problem(p,
					        "Dockerfile line %d: ENV %s is not a "
					        "patient-worker setting",
					        ins[i].line, name);
				if (w[j][kl] != '=')
					break;
			}
		}
	}
	if (user == NULL) {
		problem(p, "Dockerfile: no USER in the runtime stage (it would run as root)");
	} else {
		char u[128];
		snprintf(u, sizeof(u), "%.*s", (int)strcspn(user, ": \t"), user);
		if (strcmp(u, "root") == 0 || strcmp(u, "0") == 0)
			problem(p, "Dockerfile: the runtime stage runs as %s", u);
	}
	if (!healthcheck)
		problem(p, "Dockerfile: no HEALTHCHECK in the runtime stage");
	if (!entry)
		problem(p, "Dockerfile: ENTRYPOINT is not patient-worker");
	if (!expose)
		problem(p, "Dockerfile: the metrics port 9464 is not exposed");
	if (cp) {
		int tests = 0;
		for (int i = 0; i < cp->n; i++)
			tests |= strcmp(cp->names[i], "tests") == 0;
		if (!tests && !tests_off)
			problem(
			    p,
			    "Dockerfile: tests/ is not copied, so the build needs -DPW_TESTS=OFF");
	}
	for (int i = 0; i < n; i++)
		free(ins[i].args);
}

/* Whatever the top CMakeLists.txt reads outside if(PW_TESTS) must be COPYed into the
 * build stage: a new top-level folder would otherwise break only the image build. */
static void check_build_inputs(const char *cmake, const copied *cp, const char *srcdir, problems *p)
{
	int depth = 0, skip_at = -1;
	const char *s = cmake;

	while (*s) {
		const char *e = strchr(s, '\n');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		char line[1024];
		snprintf(line, sizeof(line), "%.*s",
		         (int)(l < sizeof(line) - 1 ? l : sizeof(line) - 1), s);
		s = e ? e + 1 : s + l;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		const char *t = line;
		while (*t == ' ' || *t == '\t')
			t++;
		if (strncmp(t, "if(", 3) == 0 || strncmp(t, "if (", 4) == 0) {
			if (skip_at < 0 && strstr(t, "PW_TESTS"))
				skip_at = depth;
			depth++;
			continue;
		}
		if (strncmp(t, "endif", 5) == 0) {
			depth--;
			if (depth == skip_at)
				skip_at = -1;
			continue;
		}
		if (skip_at >= 0)
			continue;
		char w[64][512];
		char *c;
		for (c = line; *c; c++)
			if (*c == '(' || *c == ')' || *c == '"')
				*c = ' ';
		int nw = words(line, w, 64), sub = 0;
		for (int i = 0; i < nw; i++) {
			const char *tok = w[i], *prefixes[] = {"${CMAKE_SOURCE_DIR}/",
			                                       "${CMAKE_CURRENT_SOURCE_DIR}/"};
			int stripped = 0;
			if (strcmp(tok, "add_subdirectory") == 0) {
				sub = 1;
				continue;
			}
			for (size_t k = 0; k < 2; k++)
				if (strncmp(tok, prefixes[k], strlen(prefixes[k])) == 0) {
					tok += strlen(prefixes[k]);
					stripped = 1;
				}
			if (!stripped && !sub &&
			    (!strchr(tok, '/') || tok[0] == '$' || tok[0] == '-'))
				continue;
			if (tok[0] == '$' || tok[0] == '-' || tok[0] == '\0')
				continue;
			char comp[256], path[4096];
			struct stat st;
			snprintf(comp, sizeof(comp), "%.*s", (int)strcspn(tok, "/"), tok);
			snprintf(path, sizeof(path), "%s/%s", srcdir, comp);
			if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
				continue;
			int found = 0;
			for (int k = 0; k < cp->n; k++)
				found |= strcmp(cp->names[k], comp) == 0;
			if (!found)
				problem(
				    p,
				    "CMakeLists.txt reads %s/ but the Dockerfile does not COPY it",
				    comp);
			sub = 0;
		}
	}
}

/* BuildKit drops from the context whatever docker/Dockerfile.dockerignore does not let
 * through, and a COPY of a dropped path fails only when an engine builds the image. */
static void check_dockerignore(const char *text, const copied *cp, problems *p)
{
	char allowed[64][256];
	int n = 0, deny_all = 0;

	for (const char *s = text; *s;) {
		const char *e = strchr(s, '\n');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		char line[256];
		snprintf(line, sizeof(line), "%.*s", (int)(l < 255 ? l : 255), s);
		s = e ? e + 1 : s + l;
		size_t ll = strlen(line);
		while (ll && (line[ll - 1] == ' ' || line[ll - 1] == '/' || line[ll - 1] == '\r'))
			line[--ll] = '\0';
		if (ll == 0 || line[0] == '#')
			continue;
		if (strcmp(line, "*") == 0)
			deny_all = 1;
		else if (line[0] == '!' && n < 64)
			snprintf(allowed[n++], sizeof(allowed[0]), "%s", line + 1);
	}
	if (!deny_all)
		problem(p, "Dockerfile.dockerignore: not an allowlist (no '*' line)");
	for (int i = 0; i < cp->n; i++) {
		int ok = 0;
		for (int k = 0; k < n; k++)
			ok |= strcmp(allowed[k], cp->names[i]) == 0;
		if (!ok)
			problem(p,
			        "Dockerfile.dockerignore: keeps %s out of the context, but the "
			        "Dockerfile COPYs it",
			        cp->names[i]);
	}
}

/* ---- tests -------------------------------------------------------------------------- */

static void expect_clean_compose(const char *text)
{
	problems p = {.n = 0};
	check_compose_text(text, &p);
	ck_assert_msg(p.n == 0, "compose.yaml:\n%s", p.text);
}

/* The checker must report the mutation, naming what is wrong. */
static void expect_compose_problem(const char *text, const char *expected)
{
	problems p = {.n = 0};
	check_compose_text(text, &p);
	ck_assert_msg(p.n > 0 && strstr(p.text, expected),
	              "expected a problem mentioning '%s', got:\n%s", expected,
	              p.n ? p.text : "(none)\n");
}

static void compose_mutation(const char *from, const char *to, const char *expected)
{
	char *text = slurp("docker/compose.yaml");
	char *bad = mutate(text, from, to);
	expect_compose_problem(bad, expected);
	free(bad);
	free(text);
}

START_TEST(compose_passes)
{
	char *text = slurp("docker/compose.yaml");
	expect_clean_compose(text);
	free(text);
}
END_TEST

START_TEST(compose_not_yaml)
{
	expect_compose_problem("services: [unclosed\n  kafka: {", "not YAML");
	expect_compose_problem("- just\n- a list\n", "not a mapping");
}
END_TEST

/* The settings check on both environment forms, in a small file of its own. */
START_TEST(env_checker_catches_unknown_names)
{
	const char *head = "services:\n"
	                   "  worker:\n"
	                   "    build: .\n"
	                   "    image: pw:test\n";
	const char *map_form = "    environment:\n"
	                       "      KAFKA_BROKERS: kafka:9092\n"
	                       "      DATABSE_URL: postgresql://x@db/p\n";
	const char *list_form = "    environment:\n"
	                        "      - KAFKA_BROKERS=kafka:9092\n"
	                        "      - JWT_SECRT=abc\n"
	                        "      - LOG_LEVEL\n";
	const char *list_good = "    environment:\n"
	                        "      - KAFKA_BROKERS=kafka:9092\n"
	                        "      - HTTP_ADDR=0.0.0.0:9464\n"
	                        "      - LOG_LEVEL\n";
	const char *other = "  migrate:\n"
	                    "    image: pw:test\n"
	                    "    environment: {DATABASE_URL: x, PGPASSWORD: y}\n"
	                    "  unrelated:\n"
	                    "    image: redis:7\n"
	                    "    environment: {NOT_OURS: 1}\n";
	char doc[2048];
	problems p = {.n = 0};

	snprintf(doc, sizeof(doc), "%s%s%s", head, map_form, other);
	check_compose_text(doc, &p);
	ck_assert_msg(strstr(p.text, "service worker: DATABSE_URL is not"), "%s", p.text);
	ck_assert_msg(strstr(p.text, "service migrate: PGPASSWORD is not"), "%s", p.text);
	ck_assert_msg(!strstr(p.text, "KAFKA_BROKERS is not"), "%s", p.text);
	ck_assert_msg(!strstr(p.text, "NOT_OURS"), "another image's variables: %s", p.text);

	memset(&p, 0, sizeof(p));
	snprintf(doc, sizeof(doc), "%s%s", head, list_form);
	check_compose_text(doc, &p);
	ck_assert_msg(strstr(p.text, "service worker: JWT_SECRT is not"), "%s", p.text);
	ck_assert_msg(!strstr(p.text, "LOG_LEVEL is not"), "%s", p.text);

	memset(&p, 0, sizeof(p));
	snprintf(doc, sizeof(doc), "%s%s", head, list_good);
	check_compose_text(doc, &p);
	ck_assert_msg(!strstr(p.text, "is not a patient-worker setting"), "%s", p.text);

	/* patientctl's own variable is allowed where patientctl runs, and only there. */
	const char *ctl = "  ctl:\n"
	                  "    image: pw:test\n"
	                  "    entrypoint: [\"patientctl\"]\n"
	                  "    environment: [PW_TOKEN=t, PW_TOKN=t]\n";
	memset(&p, 0, sizeof(p));
	snprintf(doc, sizeof(doc), "%s%s%s", head, list_good, ctl);
	check_compose_text(doc, &p);
	ck_assert_msg(strstr(p.text, "service ctl: PW_TOKN is not"), "%s", p.text);
	ck_assert_msg(!strstr(p.text, "PW_TOKEN is not"), "%s", p.text);
	memset(&p, 0, sizeof(p));
	snprintf(doc, sizeof(doc), "%s    environment: [PW_TOKEN=t]\n", head);
	check_compose_text(doc, &p);
	ck_assert_msg(strstr(p.text, "service worker: PW_TOKEN is not"), "%s", p.text);

	/* And in the real file. */
	compose_mutation("      LOG_LEVEL: info\n    expose:", "      LOG_LEVL: info\n    expose:",
	                 "service worker: LOG_LEVL is not a patient-worker setting");
	compose_mutation("      LOG_LEVEL: info\n    depends_on:",
	                 "      LOG_LEVEL: info\n      PGSSLMODE: require\n    depends_on:",
	                 "service migrate: PGSSLMODE is not a patient-worker setting");
}
END_TEST

START_TEST(compose_mutations_are_caught)
{
	compose_mutation("KAFKA_PROCESS_ROLES: broker,controller", "KAFKA_BROKER_ID: 1",
	                 "KAFKA_PROCESS_ROLES must be broker,controller");
	compose_mutation("KAFKA_CONTROLLER_QUORUM_VOTERS: 1@kafka:9093",
	                 "KAFKA_ZOOKEEPER_CONNECT: zookeeper:2181", "(ZOOKEEPER mode)");
	compose_mutation("services:\n", "services:\n  zookeeper:\n    image: zookeeper:3.8\n",
	                 "ZooKeeper has no place");
	compose_mutation("image: postgres:15-bookworm", "image: postgres:16", "not PostgreSQL 15");
	compose_mutation("replicas: 2", "replicas: 1", "deploy.replicas is 1");
	compose_mutation("command: [\"migrate\"]", "command: [\"run\"]", "not migrate");
	compose_mutation("      migrate:\n        condition: service_completed_successfully",
	                 "      migrate:\n        condition: service_started",
	                 "must depend on migrate with service_completed_successfully");
	compose_mutation("      topics:\n        condition: service_completed_successfully\n", "",
	                 "must depend on topics");
	compose_mutation("test: [\"CMD\", \"patient-worker\", \"healthcheck\"]",
	                 "test: [\"CMD\", \"true\"]", "healthcheck is not `patient-worker");
	/* The worker without a healthcheck is then neither watched nor a one-shot. */
	compose_mutation("test: [\"CMD\", \"patient-worker\", \"healthcheck\"]", "disable: true",
	                 "service worker: neither a healthcheck nor");
	compose_mutation("      test: [\"CMD\", \"pg_isready\",", "      disable: true\n      x: [",
	                 "waits for postgres to be healthy, which has no healthcheck");
	compose_mutation("  migrate:\n    image: patient-worker:dev\n    command: [\"migrate\"]\n",
	                 "  migrate:\n    image: patient-worker:dev\n    command: [\"migrate\"]\n"
	                 "    restart: on-failure\n",
	                 "key 'restart' appears twice");
	compose_mutation("--partitions 4 --config message.timestamp.type=LogAppendTime\n"
	                 "        topic --topic patients.query --partitions 4 --config "
	                 "message.timestamp.type=LogAppendTime",
	                 "--partitions 4 --config message.timestamp.type=LogAppendTime\n"
	                 "        topic --topic patients.query --partitions 4",
	                 "patients.query is created without LogAppendTime");
	compose_mutation("--create --if-not-exists", "--create", "without --if-not-exists");
	compose_mutation("patients.dlq --partitions 1", "patients.dead --partitions 1",
	                 "does not create patients.dlq");
	compose_mutation("postgresql://patient_worker:", "postgresql://postgres:",
	                 "logs in as the superuser 'postgres'");
	compose_mutation("HTTP_ADDR: 0.0.0.0:9464", "HTTP_ADDR: 127.0.0.1:9464",
	                 "HTTP_ADDR must listen beyond loopback");
	compose_mutation("      CURSOR_SECRET:", "      X_CURSOR_SECRET:", "CURSOR_SECRET unset");
	compose_mutation("JWT_SECRET: ${JWT_SECRET:-dev-only-jwt-secret-replace-me-0123456789}",
	                 "JWT_SECRET: ${JWT_SECRET:-short}", "${JWT_SECRET} has two defaults");
	compose_mutation("${WORKER_DB_PASSWORD:-dev-only-worker-password}@",
	                 "${WORKER_DB_PASSWORD:-another}@",
	                 "${WORKER_DB_PASSWORD} has two defaults");
	compose_mutation("services:\n", "version: \"3.9\"\nservices:\n", "'version' is obsolete");
	compose_mutation("  migrate:\n    image: patient-worker:dev",
	                 "  migrate:\n    image: someone-else:1",
	                 "migrate: does not run the worker image");
}
END_TEST

START_TEST(defaults_must_agree)
{
	problems p = {.n = 0};
	check_defaults_agree("a: ${X:-one} $${X:-literal} ${X:-one} ${Y-two} ${Y:-two} ${Z}", &p);
	ck_assert_msg(p.n == 0, "%s", p.text);
	check_defaults_agree("a: ${X:-one}\nb: ${X-other}\n", &p);
	ck_assert_msg(p.n == 1 && strstr(p.text, "${X} has two defaults"), "%s", p.text);
}
END_TEST

static void expect_clean_dockerfile(const char *text, copied *cp)
{
	problems p = {.n = 0};
	check_dockerfile_text(text, source_dir(), cp, &p);
	ck_assert_msg(p.n == 0, "Dockerfile:\n%s", p.text);
}

static void dockerfile_mutation(const char *from, const char *to, const char *expected)
{
	char *text = slurp("docker/Dockerfile");
	char *bad = mutate(text, from, to);
	problems p = {.n = 0};
	copied cp;
	check_dockerfile_text(bad, source_dir(), &cp, &p);
	ck_assert_msg(p.n > 0 && strstr(p.text, expected),
	              "expected a problem mentioning '%s', got:\n%s", expected,
	              p.n ? p.text : "(none)\n");
	free(bad);
	free(text);
}

START_TEST(dockerfile_passes)
{
	char *text = slurp("docker/Dockerfile");
	copied cp;
	expect_clean_dockerfile(text, &cp);
	ck_assert_msg(cp.n >= 5, "only %d COPY sources found", cp.n);

	/* Pinned forms of the same base are fine too. */
	const char *pinned[] = {"FROM --platform=linux/amd64 debian:12.11-slim",
	                        "FROM debian:bookworm-20250811-slim@sha256:0123abcd",
	                        "from debian:bookworm-slim"};
	for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) {
		char *v = mutate(text, "FROM debian:12-slim", pinned[i]);
		expect_clean_dockerfile(v, &cp);
		free(v);
	}
	free(text);
}
END_TEST

START_TEST(dockerfile_mutations_are_caught)
{
	dockerfile_mutation("FROM debian:12-slim", "FROM debian:12", "not debian:12-slim");
	dockerfile_mutation("FROM debian:12-slim", "FROM debian:11-slim", "not debian:12-slim");
	dockerfile_mutation("USER 10001:10001", "USER root", "runs as root");
	dockerfile_mutation("USER 10001:10001", "USER 0:0", "runs as 0");
	dockerfile_mutation("USER 10001:10001", "LABEL user=none", "no USER in the runtime stage");
	dockerfile_mutation("HEALTHCHECK --interval", "LABEL interval", "no HEALTHCHECK");
	dockerfile_mutation("ENV HTTP_ADDR=", "ENV HTTP_ADR=", "ENV HTTP_ADR is not");
	dockerfile_mutation("COPY cli/ cli/", "COPY clients/ cli/",
	                    "COPY source clients/ does not exist");
	dockerfile_mutation("-DPW_TESTS=OFF", "-DPW_TESTS=ON", "needs -DPW_TESTS=OFF");
	dockerfile_mutation("\t\tca-certificates \\\n\t&& rm -rf /var/lib/apt/lists/*",
	                    "\t\tca-certificates", "apt lists left in the runtime image");
	dockerfile_mutation("ENTRYPOINT [\"patient-worker\"]", "ENTRYPOINT [\"sh\"]",
	                    "ENTRYPOINT is not patient-worker");
	/* One stage only: the user and healthcheck of the build stage count as runtime. */
	char *text = slurp("docker/Dockerfile");
	char *one = strdup(text);
	char *second = strstr(one, "FROM debian:12-slim");
	ck_assert(second != NULL);
	*second = '\0';
	problems p = {.n = 0};
	check_dockerfile_text(one, source_dir(), NULL, &p);
	ck_assert_msg(strstr(p.text, "1 FROM, not a multi-stage build"), "%s", p.text);
	free(one);
	free(text);
}
END_TEST

START_TEST(dockerfile_copies_what_cmake_reads)
{
	char *df = slurp("docker/Dockerfile"), *cmake = slurp("CMakeLists.txt");
	copied cp;
	problems p = {.n = 0};

	check_dockerfile_text(df, source_dir(), &cp, &p);
	check_build_inputs(cmake, &cp, source_dir(), &p);
	ck_assert_msg(p.n == 0, "%s", p.text);

	/* A folder the build starts reading, and one the Dockerfile stops copying. */
	char *more = mutate(cmake, "add_subdirectory(cli)",
	                    "add_subdirectory(cli)\n"
	                    "add_subdirectory(schemas)");
	memset(&p, 0, sizeof(p));
	check_build_inputs(more, &cp, source_dir(), &p);
	ck_assert_msg(strstr(p.text, "reads schemas/"), "%s", p.text);
	free(more);

	char *fewer = mutate(df, "COPY migrations/ migrations/\n", "");
	memset(&p, 0, sizeof(p));
	check_dockerfile_text(fewer, source_dir(), &cp, &p);
	check_build_inputs(cmake, &cp, source_dir(), &p);
	ck_assert_msg(strstr(p.text, "reads migrations/"), "%s", p.text);
	free(fewer);

	/* What only the tests read needs no COPY. */
	ck_assert_msg(!strstr(p.text, "reads tests/"), "%s", p.text);

	/* The context filter must let through every path the Dockerfile copies. */
	char *ignore = slurp("docker/Dockerfile.dockerignore");
	check_dockerfile_text(df, source_dir(), &cp, &p);
	memset(&p, 0, sizeof(p));
	check_dockerignore(ignore, &cp, &p);
	ck_assert_msg(p.n == 0, "%s", p.text);
	char *narrower = mutate(ignore, "!migrations/\n", "");
	check_dockerignore(narrower, &cp, &p);
	ck_assert_msg(strstr(p.text, "keeps migrations out"), "%s", p.text);
	free(narrower);
	char *open_ended = mutate(ignore, "\n*\n", "\n");
	memset(&p, 0, sizeof(p));
	check_dockerignore(open_ended, &cp, &p);
	ck_assert_msg(strstr(p.text, "not an allowlist"), "%s", p.text);
	free(open_ended);
	free(ignore);
	free(df);
	free(cmake);
}
END_TEST

static Suite *docker_suite(void)
{
	Suite *s = suite_create("docker");
	TCase *tc = tcase_create("static");
	tcase_add_test(tc, compose_passes);
	tcase_add_test(tc, compose_not_yaml);
	tcase_add_test(tc, env_checker_catches_unknown_names);
	tcase_add_test(tc, compose_mutations_are_caught);
	tcase_add_test(tc, defaults_must_agree);
	tcase_add_test(tc, dockerfile_passes);
	tcase_add_test(tc, dockerfile_mutations_are_caught);
	tcase_add_test(tc, dockerfile_copies_what_cmake_reads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return pw_check_run(docker_suite());
}
