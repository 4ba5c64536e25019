/* Unit tests of pw_handler: a consumed record, built by hand (value, headers, append time,
 * time taken), to its outcome. The contract's check order (dead letter, 401, 403, 400), the
 * time a command is judged at, Spring's request/reply headers, the input a good command
 * carries to the database, the error replies decided here, and the mapping to pw_command.
 * Configurations come from the environment (pw_config_load); tokens are signed here with
 * OpenSSL (HS256 with a known secret, RS256 with tests/fixtures). No broker, no database,
 * no clock: every time is passed in. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "pw_check_main.h"
#include "pw_config.h"
#include "pw_cursor.h"
#include "pw_handler.h"
#include "pw_jwt.h"
#include "pw_log.h"
#include "pw_status.h"

#ifndef PW_FIXTURES_DIR
#define PW_FIXTURES_DIR "tests/fixtures"
#endif

/* The command's time: 2017-07-14T02:40:00Z, long past, so nothing here can lean on the wall
 * clock. Claims below are written relative to it. */
#define NOW      INT64_C(1500000000)
#define DAY      INT64_C(86400)
#define MIDNIGHT INT64_C(1500076800) /* 2017-07-15T00:00:00Z */
#define IAT      "1499999940"        /* NOW - 60 s */
#define EXP      "1500003600"        /* NOW + 1 h */
#define EXP_WEEK "1500604800"        /* NOW + 7 days */
#define OLD_IAT  "1499992800"        /* NOW - 2 h */
#define OLD_EXP  "1499996400"        /* NOW - 1 h */
#define LATER    "1500007200"        /* NOW + 2 h */

#define SECRET        "0123456789abcdef0123456789abcdef-handler-test-secret"
#define OTHER_SECRET  "fedcba9876543210fedcba9876543210-handler-other-secret"
#define CURSOR_SECRET "handler-test-cursor-secret"
#define OWNER         "alice@example.com"
#define REPLIES       "patients.replies"
#define SPRING        "patients.replies.spring-1"
#define BODY_TOPIC    "patients.replies.body"
#define RID           "r-1"
#define MAX_BYTES     65536 /* MAX_MESSAGE_BYTES at its default */

/* ---- record values ---------------------------------------------------------------------- */

/* "$T" in a value template stands for the row's token. */
#define CMD_OPEN(type)     "{\"request_id\":\"" RID "\",\"type\":\"" type "\",\"token\":\"$T\","
#define CMD(type, payload) CMD_OPEN(type) "\"payload\":" payload "}"
#define CREATE_PAYLOAD(fecha)                                                                      \
	"{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"dni\":\"45678912\","                \
	"\"fecha_nacimiento\":\"" fecha "\"}"
#define CREATE          CMD("patient.create", CREATE_PAYLOAD("1990-04-12"))
#define CREATE_TOMORROW CMD("patient.create", CREATE_PAYLOAD("2017-07-15"))
#define GET             CMD("patient.get", "{\"id\":17}")
#define LIST            CMD("patient.list", "{}")
#define GET_REPLY_TO                                                                               \
	CMD_OPEN("patient.get") "\"reply_to\":\"" BODY_TOPIC "\",\"payload\":{\"id\":17}}"
#define GET_REPLY_TO_NUL CMD_OPEN("patient.get") "\"reply_to\":null,\"payload\":{\"id\":17}}"
/* The same commands with the token left to the authorization header. */
#define NO_TOKEN_OPEN(type) "{\"request_id\":\"" RID "\",\"type\":\"" type "\","
#define GET_NO_TOKEN        NO_TOKEN_OPEN("patient.get") "\"payload\":{\"id\":17}}"

/* ---- tokens ----------------------------------------------------------------------------- */

typedef enum tok {
	TOK_GOOD = 0,  /**< sub OWNER, iat NOW - 60, exp NOW + 1 h, no scope */
	TOK_WEEK,      /**< the same, valid for a week */
	TOK_OTHER_KEY, /**< TOK_GOOD's claims under another secret */
	TOK_TAMPERED,  /**< TOK_GOOD's signature over other claims */
	TOK_EXPIRED,   /**< exp NOW - 1 h */
	TOK_NOT_YET,   /**< nbf NOW + 1 h */
	TOK_HS512,     /**< alg HS512, signed with SECRET */
	TOK_ALG_NONE,  /**< alg none, no signature */
	TOK_NO_SUB,    /**< no owner claim */
	TOK_GARBAGE,   /**< not a compact JWS at all */
	TOK_READ,      /**< scope patients:read */
	TOK_WRITE,     /**< scope patients:write */
	TOK_BOTH,      /**< scope patients:read patients:write */
	TOK_LOOKALIKE, /**< scope patients:writer patients:reader */
	TOK_EMAIL,     /**< sub opaque-7, email carol@example.com */
	TOK_RS256,     /**< alg RS256, rsa_private.pem */
	TOK_RSA_PUB,   /**< alg HS256 keyed with the text of rsa_public.pem (key confusion) */
	TOK_COUNT,
} tok;

typedef enum signer {
	SIGN_HS256 = 0,
	SIGN_HS512,
	SIGN_RS256,
	SIGN_NONE,
} signer;

#define H_HS256    "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define C_GOOD     "{\"sub\":\"" OWNER "\",\"iat\":" IAT ",\"exp\":" EXP
#define C_SCOPE(s) C_GOOD ",\"scope\":\"" s "\"}"

static const struct tok_spec {
	const char *header; /**< NULL: claims is the token itself */
	const char *claims;
	signer s;
	const char *secret;   /**< HS256/HS512 */
	const char *key_file; /**< RS256: the private key; HS256: a file whose text is the key */
	const char *tamper;   /**< claims put in after signing */
} tok_specs[TOK_COUNT] = {
    [TOK_GOOD] = {H_HS256, C_GOOD "}", SIGN_HS256, SECRET, NULL, NULL},
    [TOK_WEEK] = {H_HS256, "{\"sub\":\"" OWNER "\",\"iat\":" IAT ",\"exp\":" EXP_WEEK "}",
                  SIGN_HS256, SECRET, NULL, NULL},
    [TOK_OTHER_KEY] = {H_HS256, C_GOOD "}", SIGN_HS256, OTHER_SECRET, NULL, NULL},
    [TOK_TAMPERED] = {H_HS256, C_GOOD "}", SIGN_HS256, SECRET, NULL,
                      "{\"sub\":\"mallory@example.com\",\"iat\":" IAT ",\"exp\":" EXP "}"},
    [TOK_EXPIRED] = {H_HS256, "{\"sub\":\"" OWNER "\",\"iat\":" OLD_IAT ",\"exp\":" OLD_EXP "}",
                     SIGN_HS256, SECRET, NULL, NULL},
    [TOK_NOT_YET] = {H_HS256, "{\"sub\":\"" OWNER "\",\"nbf\":" EXP ",\"exp\":" LATER "}",
                     SIGN_HS256, SECRET, NULL, NULL},
    [TOK_HS512] = {"{\"alg\":\"HS512\",\"typ\":\"JWT\"}", C_GOOD "}", SIGN_HS512, SECRET, NULL,
                   NULL},
    [TOK_ALG_NONE] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}", C_GOOD "}", SIGN_NONE, NULL, NULL,
                      NULL},
    [TOK_NO_SUB] = {H_HS256, "{\"iat\":" IAT ",\"exp\":" EXP "}", SIGN_HS256, SECRET, NULL, NULL},
    [TOK_GARBAGE] = {NULL, "not-a-jwt", SIGN_NONE, NULL, NULL, NULL},
    [TOK_READ] = {H_HS256, C_SCOPE("patients:read"), SIGN_HS256, SECRET, NULL, NULL},
    [TOK_WRITE] = {H_HS256, C_SCOPE("patients:write"), SIGN_HS256, SECRET, NULL, NULL},
    [TOK_BOTH] = {H_HS256, C_SCOPE("patients:read patients:write"), SIGN_HS256, SECRET, NULL, NULL},
    [TOK_LOOKALIKE] = {H_HS256, C_SCOPE("patients:writer patients:reader"), SIGN_HS256, SECRET,
                       NULL, NULL},
    [TOK_EMAIL] = {H_HS256,
                   "{\"sub\":\"opaque-7\",\"email\":\"carol@example.com\",\"iat\":" IAT
                   ",\"exp\":" EXP "}",
                   SIGN_HS256, SECRET, NULL, NULL},
    [TOK_RS256] = {"{\"alg\":\"RS256\",\"typ\":\"JWT\"}", C_GOOD "}", SIGN_RS256, NULL,
                   "rsa_private.pem", NULL},
    [TOK_RSA_PUB] = {H_HS256, C_GOOD "}", SIGN_HS256, NULL, "rsa_public.pem", NULL},
};

static char *toks[TOK_COUNT]; /* made on first use, freed by teardown */

/* A new string, printf-style (asprintf is not POSIX). */
static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	s = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(s);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static char *fixture_path(const char *name)
{
	const char *dir = getenv("PW_FIXTURES");
	return str_printf("%s/%s", dir && *dir ? dir : PW_FIXTURES_DIR, name);
}

static char *read_fixture(const char *name, size_t *len)
{
	char *path = fixture_path(name), *buf = NULL;
	FILE *f = fopen(path, "rb");
	size_t size = 0;

	ck_assert_msg(f != NULL, "cannot open fixture %s", path);
	FILE *out = open_memstream(&buf, &size);
	ck_assert_ptr_nonnull(out);
	for (int c; (c = fgetc(f)) != EOF;)
		fputc(c, out);
	fclose(out);
	fclose(f);
	free(path);
	*len = size;
	return buf;
}

/* base64url without padding, through OpenSSL's base64 (independent of pw_util). */
static char *b64url(const void *in, size_t len)
{
	char *out = malloc(len * 4 / 3 + 8);
	int n;

	ck_assert_ptr_nonnull(out);
	n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	ck_assert_int_ge(n, 0);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return out;
}

static size_t sign(const struct tok_spec *spec, const char *input, unsigned char *sig,
                   size_t sig_size)
{
	size_t key_len = 0, sig_len = sig_size;
	char *key = spec->key_file ? read_fixture(spec->key_file, &key_len) : NULL;

	if (spec->s == SIGN_HS256 || spec->s == SIGN_HS512) {
		const char *k = key ? key : spec->secret;
		unsigned int n = 0;
		ck_assert_ptr_nonnull(HMAC(spec->s == SIGN_HS256 ? EVP_sha256() : EVP_sha512(), k,
		                           (int)strlen(k), (const unsigned char *)input,
		                           strlen(input), sig, &n));
		sig_len = n;
	} else if (spec->s == SIGN_RS256) {
		BIO *bio = BIO_new_mem_buf(key, (int)key_len);
		EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		ck_assert(pkey != NULL && md != NULL);
		ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey), 1);
		ck_assert_int_eq(
		    EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input, strlen(input)),
		    1);
		EVP_MD_CTX_free(md);
		EVP_PKEY_free(pkey);
		BIO_free(bio);
	} else {
		sig_len = 0;
	}
	free(key);
	return sig_len;
}

static const char *token(tok t)
{
	const struct tok_spec *spec = &tok_specs[t];
	unsigned char sig[1024];

	if (toks[t] != NULL)
		return toks[t];
	if (spec->header == NULL) {
		toks[t] = strdup(spec->claims);
		ck_assert_ptr_nonnull(toks[t]);
		return toks[t];
	}
	char *h = b64url(spec->header, strlen(spec->header));
	char *c = b64url(spec->claims, strlen(spec->claims));
	char *input = str_printf("%s.%s", h, c);
	char *s = b64url(sig, sign(spec, input, sig, sizeof(sig)));
	if (spec->tamper != NULL) {
		free(c);
		c = b64url(spec->tamper, strlen(spec->tamper));
	}
	toks[t] = str_printf("%s.%s.%s", h, c, s);
	free(h);
	free(c);
	free(s);
	free(input);
	return toks[t];
}

/* True when text holds the token, or 12 bytes from the middle of any long segment of it. */
static bool quotes_token(const char *text, const char *tk)
{
	if (text == NULL || tk == NULL || *tk == '\0')
		return false;
	if (strstr(text, tk) != NULL)
		return true;
	for (const char *seg = tk; seg != NULL && *seg;) {
		const char *dot = strchr(seg, '.');
		size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
		char piece[13];
		if (n >= sizeof(piece) - 1) {
			memcpy(piece, seg + n / 2 - 6, 12);
			piece[12] = '\0';
			if (strstr(text, piece) != NULL)
				return true;
		}
		seg = dot ? dot + 1 : NULL;
	}
	return false;
}

/* ---- configurations --------------------------------------------------------------------- */

typedef enum cfg_kind {
	CFG_DEFAULT = 0, /**< HS256 with SECRET, every other setting at its default */
	CFG_SCOPE,       /**< JWT_REQUIRE_SCOPE=1 */
	CFG_RS256,       /**< JWT_ALG=RS256 with rsa_public.pem */
	CFG_EMAIL,       /**< JWT_OWNER_CLAIM=email */
	CFG_COUNT,
} cfg_kind;

/* "VAR=value" sets VAR ("@FIX@" stands for the fixture folder); "VAR" alone unsets it. */
static const char *const cfg_env[CFG_COUNT][3] = {
    [CFG_DEFAULT] = {NULL},
    [CFG_SCOPE] = {"JWT_REQUIRE_SCOPE=1", NULL},
    [CFG_RS256] = {"JWT_ALG=RS256", "JWT_SECRET", "JWT_PUBLIC_KEY_FILE=@FIX@rsa_public.pem"},
    [CFG_EMAIL] = {"JWT_OWNER_CLAIM=email", NULL},
};

static const char *const settings[] = {
    "JWT_ALG",       "JWT_SECRET",        "JWT_PUBLIC_KEY_FILE", "JWT_ISSUER",
    "JWT_AUDIENCE",  "JWT_LEEWAY_S",      "JWT_OWNER_CLAIM",     "JWT_REQUIRE_SCOPE",
    "TOPIC_REPLIES", "MAX_MESSAGE_BYTES", "JWT_CACHE_SIZE",      "CURSOR_SECRET",
    "LOG_LEVEL",     "HTTP_ADDR",
};

typedef struct fixture {
	pw_config cfg;
	pw_jwt_verifier *jwt;
	pw_cursor_key key;
	pw_handler h;
} fixture;

static fixture fx[CFG_COUNT];

static void apply_env(const char *spec)
{
	const char *eq = strchr(spec, '=');
	char *name;

	if (eq == NULL) {
		unsetenv(spec);
		return;
	}
	name = strndup(spec, (size_t)(eq - spec));
	ck_assert_ptr_nonnull(name);
	if (strncmp(eq + 1, "@FIX@", 5) == 0) {
		char *path = fixture_path(eq + 6);
		setenv(name, path, 1);
		free(path);
	} else {
		setenv(name, eq + 1, 1);
	}
	free(name);
}

static void fixture_open(fixture *f, const char *const *env, size_t n)
{
	char *err = NULL;
	size_t err_len = 0;
	FILE *errf = open_memstream(&err, &err_len);
	int generated = 0;

	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		unsetenv(settings[i]);
	setenv("JWT_SECRET", SECRET, 1);
	setenv("CURSOR_SECRET", CURSOR_SECRET, 1);
	for (size_t i = 0; i < n && env[i] != NULL; i++)
		apply_env(env[i]);
	ck_assert_ptr_nonnull(errf);
	pw_status st = pw_config_load(&f->cfg, 0, NULL, PW_CFG_NEED_JWT, errf);
	fclose(errf);
	ck_assert_msg(st == PW_OK, "configuration refused: %s", err);
	free(err);
	ck_assert_int_eq(pw_jwt_verifier_create(&f->cfg, &f->jwt), PW_OK);
	ck_assert_int_eq(pw_cursor_key_init(&f->key, f->cfg.cursor_secret, &generated), PW_OK);
	f->h = (pw_handler){&f->cfg, f->jwt, &f->key};
}

static void setup(void)
{
	for (int k = 0; k < CFG_COUNT; k++)
		fixture_open(&fx[k], cfg_env[k], 3);
}

static void teardown(void)
{
	for (int k = 0; k < CFG_COUNT; k++) {
		pw_jwt_verifier_destroy(fx[k].jwt);
		pw_config_free(&fx[k].cfg);
		memset(&fx[k], 0, sizeof(fx[k]));
	}
	for (int t = 0; t < TOK_COUNT; t++) {
		free(toks[t]);
		toks[t] = NULL;
	}
}

/* ---- deciding and checking -------------------------------------------------------------- */

/* A record with no headers, appended at NOW and taken a little later. */
static pw_handler_record rec(void)
{
	pw_handler_record r;

	memset(&r, 0, sizeof(r));
	r.append_time_s = NOW;
	r.taken_at_s = NOW + 5;
	return r;
}

#define HDR_BYTES(p, n)                                                                            \
	{                                                                                          \
		true, p, n                                                                         \
	}
#define HDR(lit) HDR_BYTES(lit, sizeof(lit) - 1)
#define HDR_NULL HDR_BYTES(NULL, 0)
#define HDR_ABSENT                                                                                 \
	{                                                                                          \
		false, NULL, 0                                                                     \
	}

/* Decides r (headers and times as the caller set them) with the value tmpl, "$T" replaced
 * by token t and padded with spaces to pad bytes; a NULL tmpl is a record with no value. */
static void decide(cfg_kind k, pw_topic_kind lane, const char *tmpl, tok t, size_t pad,
                   pw_handler_record r, pw_handler_outcome *o)
{
	char *value = NULL;
	size_t len = 0;

	if (tmpl != NULL) {
		FILE *f = open_memstream(&value, &len);
		ck_assert_ptr_nonnull(f);
		for (const char *p = tmpl; *p; p++) {
			if (p[0] == '$' && p[1] == 'T') {
				fputs(token(t), f);
				p++;
			} else {
				fputc(*p, f);
			}
		}
		while (ftell(f) < (long)pad)
			fputc(' ', f);
		fclose(f);
	}
	r.value = value;
	r.len = len;
	memset(o, 0x5a, sizeof(*o)); /* decide must fill every field */
	ck_assert_int_eq(pw_handler_decide(&fx[k].h, &r, lane, o), PW_OK);
	free(value); /* the outcome borrows nothing from the record */
}

typedef struct want {
	pw_handler_kind kind;
	pw_dlq_reason dlq;   /**< dead letter */
	pw_command_kind cmd; /**< command */
	int status;          /**< refused: 400, 401, 403 */
	const char *code;    /**< refused: error.code */
	const char *field;   /**< validation_failed: a field named in error.fields */
} want;

#define DEAD(r)                                                                                    \
	{                                                                                          \
		PW_HANDLER_DEAD_LETTER, r, PW_COMMAND_REFUSED, 0, NULL, NULL                       \
	}
#define RUNS(c)                                                                                    \
	{                                                                                          \
		PW_HANDLER_COMMAND, PW_DLQ_NONE, c, 0, NULL, NULL                                  \
	}
#define REFUSED(s, c, f)                                                                           \
	{                                                                                          \
		PW_HANDLER_COMMAND, PW_DLQ_NONE, PW_COMMAND_REFUSED, s, c, f                       \
	}
#define E401         REFUSED(401, "unauthorized", NULL)
#define E403         REFUSED(403, "forbidden", NULL)
#define E400         REFUSED(400, "invalid_request", NULL)
#define E400F(field) REFUSED(400, "validation_failed", field)

/* An error reply decided here: JSON with request_id, status and error.code (and the field
 * named under error.fields), never a piece of the token. */
static void check_reply(const char *name, const char *reply, const want *w, const char *tk)
{
	json_error_t e;
	json_t *r = json_loads(reply, 0, &e);
	json_t *err = json_object_get(r, "error");
	json_t *msg = json_object_get(err, "message");
	json_t *fields = json_object_get(err, "fields");

	ck_assert_msg(json_is_object(r), "%s: reply is not a JSON object: %s", name, reply);
	ck_assert_msg(json_is_string(json_object_get(r, "request_id")) &&
	                  strcmp(json_string_value(json_object_get(r, "request_id")), RID) == 0,
	              "%s: reply without request_id " RID ": %s", name, reply);
	ck_assert_msg(json_integer_value(json_object_get(r, "status")) == w->status,
	              "%s: reply status is not %d: %s", name, w->status, reply);
	ck_assert_msg(json_object_get(r, "data") == NULL, "%s: an error reply has data", name);
	ck_assert_msg(json_is_string(json_object_get(err, "code")) &&
	                  strcmp(json_string_value(json_object_get(err, "code")), w->code) == 0,
	              "%s: error.code is not %s: %s", name, w->code, reply);
	ck_assert_msg(json_is_string(msg) && json_string_length(msg) > 0,
	              "%s: error without a message: %s", name, reply);
	if (w->field != NULL)
		ck_assert_msg(json_is_string(json_object_get(fields, w->field)),
		              "%s: error.fields does not name %s: %s", name, w->field, reply);
	else
		ck_assert_msg(fields == NULL, "%s: unexpected error.fields: %s", name, reply);
	ck_assert_msg(!quotes_token(reply, tk), "%s: the reply quotes the token: %s", name, reply);
	json_decref(r);
}

static const char *dlq_name(pw_dlq_reason r)
{
	return r == PW_DLQ_NONE ? "none" : pw_envelope_dlq_code(r);
}

/* The outcome o of the row name is what w says; a command's owner is OWNER (none after a
 * 401), and its request id RID. */
static void check_outcome(const char *name, const pw_handler_outcome *o, const want *w,
                          const char *tk)
{
	ck_assert_msg(o->kind == w->kind, "%s: kind %d (dead letter %s, status %d), want %d", name,
	              o->kind, dlq_name(o->dlq), o->status, w->kind);
	if (w->kind == PW_HANDLER_DEAD_LETTER) {
		ck_assert_msg(o->dlq == w->dlq, "%s: dead letter %s, want %s", name,
		              dlq_name(o->dlq), dlq_name(w->dlq));
		ck_assert_msg(o->request_id == NULL && o->reply_to == NULL && o->reply == NULL &&
		                  o->correlation == NULL,
		              "%s: a dead letter keeps a request id, topic, reply or correlation",
		              name);
		return;
	}
	ck_assert_msg(o->dlq == PW_DLQ_NONE, "%s: a command with dead letter %s", name,
	              dlq_name(o->dlq));
	ck_assert_msg(o->command == w->cmd, "%s: command %d (status %d, reply %s), want %d", name,
	              o->command, o->status, o->reply ? o->reply : "none", w->cmd);
	ck_assert_msg(o->request_id != NULL && strcmp(o->request_id, RID) == 0,
	              "%s: request id '%s'", name, o->request_id ? o->request_id : "(null)");
	ck_assert_msg(o->reply_to != NULL, "%s: no reply topic", name);
	ck_assert_msg(strcmp(o->owner, w->status == 401 ? "" : OWNER) == 0, "%s: owner '%s'", name,
	              o->owner);
	if (w->cmd != PW_COMMAND_REFUSED) {
		ck_assert_msg(o->reply == NULL && o->status == 0,
		              "%s: a good command's reply is decided here: %d %s", name, o->status,
		              o->reply ? o->reply : "");
		return;
	}
	ck_assert_msg(o->status == w->status, "%s: status %d, want %d (%s)", name, o->status,
	              w->status, o->reply ? o->reply : "no reply");
	ck_assert_msg(o->reply != NULL, "%s: refused without a reply", name);
	check_reply(name, o->reply, w, tk);
}

/* decide, then check_outcome against w: the outcome is left for the caller's own checks. */
static void decide_as(const char *name, cfg_kind k, pw_topic_kind lane, const char *tmpl, tok t,
                      pw_handler_record r, const want *w, pw_handler_outcome *o)
{
	decide(k, lane, tmpl, t, 0, r, o);
	check_outcome(name, o, w, token(t));
}

typedef struct row {
	const char *name;
	cfg_kind cfg;
	pw_topic_kind lane;
	const char *tmpl; /**< "$T" stands for the token; NULL: no value at all */
	tok t;
	size_t pad; /**< value padded with spaces to this many bytes */
	want w;
} row;

static void check_rows(const row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pw_handler_outcome o;
		decide(rows[i].cfg, rows[i].lane, rows[i].tmpl, rows[i].t, rows[i].pad, rec(), &o);
		check_outcome(rows[i].name, &o, &rows[i].w, token(rows[i].t));
		pw_handler_outcome_clear(&o);
	}
}

#define ROWS(rows) (rows), sizeof(rows) / sizeof((rows)[0])

/* ---- the contract's check order --------------------------------------------------------- */

#define C PW_TOPIC_CREATE
#define Q PW_TOPIC_QUERY
#define D CFG_DEFAULT

START_TEST(dead_letters_come_first)
{
	static const row rows[] = {
	    {"at the size limit: judged further", D, C, CREATE, TOK_GOOD, MAX_BYTES,
	     RUNS(PW_COMMAND_CREATE)},
	    {"one byte over the size limit", D, C, CREATE, TOK_GOOD, MAX_BYTES + 1,
	     DEAD(PW_DLQ_TOO_LARGE)},
	    {"over the size limit and not JSON", D, C, "{not json", TOK_GOOD, MAX_BYTES + 1,
	     DEAD(PW_DLQ_TOO_LARGE)},
	    {"no value (a tombstone)", D, C, NULL, TOK_GOOD, 0, DEAD(PW_DLQ_MALFORMED_JSON)},
	    {"empty value", D, C, "", TOK_GOOD, 0, DEAD(PW_DLQ_MALFORMED_JSON)},
	    {"not JSON", D, Q, "{not json", TOK_GOOD, 0, DEAD(PW_DLQ_MALFORMED_JSON)},
	    {"token key twice", D, C,
	     "{\"request_id\":\"r-1\",\"token\":\"$T\",\"token\":\"x\",\"type\":\"patient."
	     "create\"}",
	     TOK_GOOD, 0, DEAD(PW_DLQ_MALFORMED_JSON)},
	    {"an array", D, C, "[{\"request_id\":\"r-1\"}]", TOK_GOOD, 0, DEAD(PW_DLQ_NOT_OBJECT)},
	    {"no request_id", D, C, "{\"type\":\"patient.create\",\"token\":\"$T\",\"payload\":{}}",
	     TOK_GOOD, 0, DEAD(PW_DLQ_MISSING_REQUEST_ID)},
	    {"request_id null", D, Q, "{\"request_id\":null,\"token\":\"$T\"}", TOK_GOOD, 0,
	     DEAD(PW_DLQ_MISSING_REQUEST_ID)},
	    {"request_id with a space", D, Q, "{\"request_id\":\"r 1\",\"token\":\"$T\"}", TOK_GOOD,
	     0, DEAD(PW_DLQ_INVALID_REQUEST_ID)},
	    {"request_id a number", D, Q, "{\"request_id\":1,\"token\":\"$T\"}", TOK_GOOD, 0,
	     DEAD(PW_DLQ_INVALID_REQUEST_ID)},
	    {"reply_to outside the prefix", D, Q,
	     CMD_OPEN("patient.get") "\"reply_to\":\"patients.dlq\",\"payload\":{\"id\":1}}",
	     TOK_GOOD, 0, DEAD(PW_DLQ_REPLY_TO_REFUSED)},
	    {"reply_to the prefix and a dot", D, Q,
	     CMD_OPEN("patient.get") "\"reply_to\":\"patients.replies.\",\"payload\":{\"id\":1}}",
	     TOK_GOOD, 0, DEAD(PW_DLQ_REPLY_TO_REFUSED)},
	    {"reply_to a number", D, Q,
	     CMD_OPEN("patient.get") "\"reply_to\":7,\"payload\":{\"id\":1}}", TOK_GOOD, 0,
	     DEAD(PW_DLQ_REPLY_TO_REFUSED)},
	    /* Wrong in two ways: the earlier check answers. */
	    {"bad reply_to and a bad token", D, C,
	     CMD_OPEN("patient.create") "\"reply_to\":\"other\",\"payload\":{}}", TOK_OTHER_KEY, 0,
	     DEAD(PW_DLQ_REPLY_TO_REFUSED)},
	    {"bad request_id, bad reply_to, no token", D, C,
	     "{\"request_id\":\"a/b\",\"reply_to\":\"other\",\"payload\":[]}", TOK_GOOD, 0,
	     DEAD(PW_DLQ_INVALID_REQUEST_ID)},
	};
	check_rows(ROWS(rows));
}
END_TEST

START_TEST(the_token_comes_before_the_payload)
{
	static const row rows[] = {
	    {"no token", D, C, NO_TOKEN_OPEN("patient.create") "\"payload\":{}}", TOK_GOOD, 0,
	     E401},
	    {"token null, no header", D, Q,
	     NO_TOKEN_OPEN("patient.get") "\"token\":null,\"payload\":{\"id\":1}}", TOK_GOOD, 0,
	     E401},
	    {"token a number", D, Q,
	     NO_TOKEN_OPEN("patient.get") "\"token\":42,\"payload\":{\"id\":1}}", TOK_GOOD, 0,
	     E401},
	    {"token an object", D, C,
	     NO_TOKEN_OPEN("patient.create") "\"token\":{},\"payload\":{}}", TOK_GOOD, 0, E401},
	    {"token empty", D, Q, NO_TOKEN_OPEN("patient.get") "\"token\":\"\",\"payload\":{}}",
	     TOK_GOOD, 0, E401},
	    {"token not a JWS", D, Q, GET, TOK_GARBAGE, 0, E401},
	    {"signed with another secret", D, Q, GET, TOK_OTHER_KEY, 0, E401},
	    {"claims changed after signing", D, C, CREATE, TOK_TAMPERED, 0, E401},
	    {"expired at the command's time", D, C, CREATE, TOK_EXPIRED, 0, E401},
	    {"not yet valid at the command's time", D, Q, LIST, TOK_NOT_YET, 0, E401},
	    {"no sub", D, C, CREATE, TOK_NO_SUB, 0, E401},
	    {"HS256 pinned: alg HS512", D, Q, GET, TOK_HS512, 0, E401},
	    {"HS256 pinned: alg none", D, Q, GET, TOK_ALG_NONE, 0, E401},
	    {"HS256 pinned: an RS256 token", D, Q, GET, TOK_RS256, 0, E401},
	    {"RS256 pinned: an RS256 token", CFG_RS256, Q, GET, TOK_RS256, 0, RUNS(PW_COMMAND_GET)},
	    {"RS256 pinned: HS256 keyed with the public key", CFG_RS256, Q, GET, TOK_RSA_PUB, 0,
	     E401},
	    {"RS256 pinned: an HS256 token", CFG_RS256, C, CREATE, TOK_GOOD, 0, E401},
	    /* Wrong in two ways: the earlier check answers. */
	    {"expired token and a bad payload", D, C, CMD("patient.create", "{\"dni\":7}"),
	     TOK_EXPIRED, 0, E401},
	    {"bad token and the type on the wrong lane", D, C, GET, TOK_OTHER_KEY, 0, E401},
	    {"bad token and no type", D, Q, "{\"request_id\":\"" RID "\",\"token\":\"$T\"}",
	     TOK_OTHER_KEY, 0, E401},
	    {"bad token and payload not an object", D, Q, CMD("patient.get", "[]"), TOK_HS512, 0,
	     E401},
	    {"bad token with scope checks on", CFG_SCOPE, C, CREATE, TOK_OTHER_KEY, 0, E401},
	};
	check_rows(ROWS(rows));
}
END_TEST

START_TEST(scope_comes_before_the_payload)
{
	static const row rows[] = {
	    {"create lane, write scope", CFG_SCOPE, C, CREATE, TOK_WRITE, 0,
	     RUNS(PW_COMMAND_CREATE)},
	    {"create lane, both scopes", CFG_SCOPE, C, CREATE, TOK_BOTH, 0,
	     RUNS(PW_COMMAND_CREATE)},
	    {"create lane, read scope", CFG_SCOPE, C, CREATE, TOK_READ, 0, E403},
	    {"create lane, no scope claim", CFG_SCOPE, C, CREATE, TOK_GOOD, 0, E403},
	    {"create lane, patients:writer", CFG_SCOPE, C, CREATE, TOK_LOOKALIKE, 0, E403},
	    {"query lane, read scope (get)", CFG_SCOPE, Q, GET, TOK_READ, 0, RUNS(PW_COMMAND_GET)},
	    {"query lane, read scope (list)", CFG_SCOPE, Q, LIST, TOK_READ, 0,
	     RUNS(PW_COMMAND_LIST)},
	    {"query lane, both scopes", CFG_SCOPE, Q, LIST, TOK_BOTH, 0, RUNS(PW_COMMAND_LIST)},
	    {"query lane, write scope", CFG_SCOPE, Q, GET, TOK_WRITE, 0, E403},
	    {"query lane, no scope claim", CFG_SCOPE, Q, LIST, TOK_GOOD, 0, E403},
	    {"query lane, patients:reader", CFG_SCOPE, Q, GET, TOK_LOOKALIKE, 0, E403},
	    {"scope checks off: no scope claim", D, C, CREATE, TOK_GOOD, 0,
	     RUNS(PW_COMMAND_CREATE)},
	    {"scope checks off: read scope on the create lane", D, C, CREATE, TOK_READ, 0,
	     RUNS(PW_COMMAND_CREATE)},
	    /* The lane decides the scope, before the type and payload are looked at. */
	    {"read scope, bad payload", CFG_SCOPE, C, CMD("patient.create", "{\"dni\":7}"),
	     TOK_READ, 0, E403},
	    {"read scope, a get on the create lane", CFG_SCOPE, C, GET, TOK_READ, 0, E403},
	    {"write scope, no type on the query lane", CFG_SCOPE, Q,
	     "{\"request_id\":\"" RID "\",\"token\":\"$T\",\"payload\":{}}", TOK_WRITE, 0, E403},
	};
	check_rows(ROWS(rows));
}
END_TEST

START_TEST(type_and_payload_come_last)
{
	static const row rows[] = {
	    {"type missing", D, C, "{\"request_id\":\"" RID "\",\"token\":\"$T\",\"payload\":{}}",
	     TOK_GOOD, 0, E400},
	    {"type a number", D, Q,
	     "{\"request_id\":\"" RID "\",\"type\":3,\"token\":\"$T\",\"payload\":{}}", TOK_GOOD, 0,
	     E400},
	    {"type unknown", D, C, CMD("patient.rename", "{}"), TOK_GOOD, 0, E400},
	    {"create on the query lane", D, Q, CREATE, TOK_GOOD, 0, E400},
	    {"get on the create lane", D, C, GET, TOK_GOOD, 0, E400},
	    {"list on the create lane", D, C, LIST, TOK_GOOD, 0, E400},
	    {"payload missing", D, C,
	     "{\"request_id\":\"" RID "\",\"type\":\"patient.create\",\"token\":\"$T\"}", TOK_GOOD,
	     0, E400},
	    {"payload an array", D, Q, CMD("patient.list", "[]"), TOK_GOOD, 0, E400},
	    {"payload null", D, Q, CMD("patient.get", "null"), TOK_GOOD, 0, E400},
	    {"payload a string", D, C, CMD("patient.create", "\"{}\""), TOK_GOOD, 0, E400},
	    {"type on the wrong lane and a bad payload", D, Q, CMD("patient.create", "{\"dni\":7}"),
	     TOK_GOOD, 0, E400},
	    {"create: dni missing", D, C,
	     CMD("patient.create", "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\","
	                           "\"fecha_nacimiento\":\"1990-04-12\"}"),
	     TOK_GOOD, 0, E400F("dni")},
	    {"create: an unknown field", D, C,
	     CMD("patient.create", "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"dni\":"
	                           "\"1\",\"fecha_nacimiento\":\"1990-04-12\",\"color\":\"red\"}"),
	     TOK_GOOD, 0, E400F("color")},
	    {"create: sexo Q", D, C,
	     CMD("patient.create", "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\",\"dni\":"
	                           "\"1\",\"fecha_nacimiento\":\"1990-04-12\",\"sexo\":\"Q\"}"),
	     TOK_GOOD, 0, E400F("sexo")},
	    {"get: id 0", D, Q, CMD("patient.get", "{\"id\":0}"), TOK_GOOD, 0, E400F("id")},
	    {"list: limit 500", D, Q, CMD("patient.list", "{\"limit\":500}"), TOK_GOOD, 0,
	     E400F("limit")},
	    {"list: a forged cursor", D, Q, CMD("patient.list", "{\"cursor\":\"AAAA\"}"), TOK_GOOD,
	     0, E400F("cursor")},
	};
	check_rows(ROWS(rows));
}
END_TEST

/* ---- the time of the command ------------------------------------------------------------ */

START_TEST(the_command_is_judged_at_its_append_time)
{
	static const struct {
		const char *name;
		pw_topic_kind lane;
		const char *tmpl;
		tok t;
		int64_t append, taken; /**< append -1: the record has no append time */
		want w;
		int64_t command_time;
		bool log_append_time;
	} rows[] = {
	    {"appended while valid, taken a day after expiry", Q, GET, TOK_GOOD, NOW, NOW + DAY,
	     RUNS(PW_COMMAND_GET), NOW, true},
	    {"appended a day after expiry, taken while valid", Q, GET, TOK_GOOD, NOW + DAY, NOW,
	     E401, NOW + DAY, true},
	    {"appended a day before iat, taken while valid", Q, GET, TOK_GOOD, NOW - DAY, NOW, E401,
	     NOW - DAY, true},
	    {"appended at exp + leeway", Q, GET, TOK_GOOD, NOW + 3600 + 30, NOW,
	     RUNS(PW_COMMAND_GET), NOW + 3630, true},
	    {"appended at exp + leeway + 1", Q, GET, TOK_GOOD, NOW + 3600 + 31, NOW, E401,
	     NOW + 3631, true},
	    {"appended before nbf, taken after it", Q, LIST, TOK_NOT_YET, NOW, NOW + 3600 + 60,
	     E401, NOW, true},
	    {"no append time, taken while valid", Q, GET, TOK_GOOD, -1, NOW, RUNS(PW_COMMAND_GET),
	     NOW, false},
	    {"no append time, taken a day after expiry", Q, GET, TOK_GOOD, -1, NOW + DAY, E401,
	     NOW + DAY, false},
	    {"no append time, taken after nbf", Q, LIST, TOK_NOT_YET, -1, NOW + 3600 + 60,
	     RUNS(PW_COMMAND_LIST), NOW + 3660, false},
	    /* "Not in the future" for the birth date: the UTC date at the command's time. */
	    {"born tomorrow: appended today, taken in two days", C, CREATE_TOMORROW, TOK_WEEK, NOW,
	     NOW + 2 * DAY, E400F("fecha_nacimiento"), NOW, true},
	    {"born tomorrow: appended tomorrow, taken today", C, CREATE_TOMORROW, TOK_WEEK,
	     NOW + DAY, NOW, RUNS(PW_COMMAND_CREATE), NOW + DAY, true},
	    {"born tomorrow: appended a second before midnight UTC", C, CREATE_TOMORROW, TOK_WEEK,
	     MIDNIGHT - 1, NOW + 2 * DAY, E400F("fecha_nacimiento"), MIDNIGHT - 1, true},
	    {"born tomorrow: appended at midnight UTC", C, CREATE_TOMORROW, TOK_WEEK, MIDNIGHT, NOW,
	     RUNS(PW_COMMAND_CREATE), MIDNIGHT, true},
	    {"born tomorrow: no append time, taken today", C, CREATE_TOMORROW, TOK_WEEK, -1, NOW,
	     E400F("fecha_nacimiento"), NOW, false},
	    {"born tomorrow: no append time, taken tomorrow", C, CREATE_TOMORROW, TOK_WEEK, -1,
	     NOW + DAY, RUNS(PW_COMMAND_CREATE), NOW + DAY, false},
	    {"born today", C, CMD("patient.create", CREATE_PAYLOAD("2017-07-14")), TOK_WEEK, NOW,
	     NOW, RUNS(PW_COMMAND_CREATE), NOW, true},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_handler_record r = rec();
		pw_handler_outcome o;

		r.append_time_s = rows[i].append;
		r.taken_at_s = rows[i].taken;
		decide_as(rows[i].name, D, rows[i].lane, rows[i].tmpl, rows[i].t, r, &rows[i].w,
		          &o);
		ck_assert_msg(o.command_time == rows[i].command_time,
		              "%s: command_time %lld, want %lld", rows[i].name,
		              (long long)o.command_time, (long long)rows[i].command_time);
		ck_assert_msg(o.log_append_time == rows[i].log_append_time,
		              "%s: log_append_time %d", rows[i].name, o.log_append_time);
		pw_handler_outcome_clear(&o);
	}
}
END_TEST

/* The verifier remembers a good token; each record is still judged at its own time. */
START_TEST(a_cached_token_is_judged_again_at_each_command)
{
	static const struct {
		int64_t append;
		want w;
	} rows[] = {
	    {NOW, RUNS(PW_COMMAND_GET)},
	    {NOW + DAY, E401},
	    {NOW + 60, RUNS(PW_COMMAND_GET)},
	    {NOW - DAY, E401},
	};
	unsigned long hits = 0;

	ck_assert_int_gt(fx[D].cfg.jwt_cache_size, 0);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_handler_record r = rec();
		pw_handler_outcome o;
		char name[64];

		r.append_time_s = rows[i].append;
		snprintf(name, sizeof(name), "use %zu of the token", i + 1);
		decide_as(name, D, Q, GET, TOK_GOOD, r, &rows[i].w, &o);
		pw_handler_outcome_clear(&o);
	}
	pw_jwt_cache_stats(fx[D].jwt, &hits, NULL, NULL);
	ck_assert_msg(hits == 3, "the later uses were not answered from the cache (%lu hits)",
	              hits);
}
END_TEST

/* ---- Spring Kafka request/reply --------------------------------------------------------- */

static char long_topic[300]; /* "patients.replies.xxx...", filled by the test */

START_TEST(spring_reply_topic_and_partition)
{
	static const struct {
		const char *name;
		const char *tmpl;
		tok t;
		pw_handler_header topic, partition;
		want w;
		const char *reply_to;  /**< when answered */
		int32_t partition_out; /**< when answered */
	} rows[] = {
	    {"no headers", GET, TOK_GOOD, HDR_ABSENT, HDR_ABSENT, RUNS(PW_COMMAND_GET), REPLIES,
	     RD_KAFKA_PARTITION_UA},
	    {"body reply_to, no headers", GET_REPLY_TO, TOK_GOOD, HDR_ABSENT, HDR_ABSENT,
	     RUNS(PW_COMMAND_GET), BODY_TOPIC, RD_KAFKA_PARTITION_UA},
	    {"replyTopic, no body reply_to", GET, TOK_GOOD, HDR(SPRING), HDR_ABSENT,
	     RUNS(PW_COMMAND_GET), SPRING, RD_KAFKA_PARTITION_UA},
	    {"replyTopic, body reply_to null", GET_REPLY_TO_NUL, TOK_GOOD, HDR(SPRING), HDR_ABSENT,
	     RUNS(PW_COMMAND_GET), SPRING, RD_KAFKA_PARTITION_UA},
	    {"replyTopic the reply topic itself", GET, TOK_GOOD, HDR(REPLIES), HDR_ABSENT,
	     RUNS(PW_COMMAND_GET), REPLIES, RD_KAFKA_PARTITION_UA},
	    {"replyTopic read to its length only", GET, TOK_GOOD,
	     HDR_BYTES(SPRING "GARBAGE", sizeof(SPRING) - 1), HDR_ABSENT, RUNS(PW_COMMAND_GET),
	     SPRING, RD_KAFKA_PARTITION_UA},
	    {"body reply_to wins over replyTopic", GET_REPLY_TO, TOK_GOOD, HDR(SPRING), HDR_ABSENT,
	     RUNS(PW_COMMAND_GET), BODY_TOPIC, RD_KAFKA_PARTITION_UA},
	    {"body reply_to wins: a bad replyTopic is ignored", GET_REPLY_TO, TOK_GOOD,
	     HDR("patients.dlq"), HDR_ABSENT, RUNS(PW_COMMAND_GET), BODY_TOPIC,
	     RD_KAFKA_PARTITION_UA},
	    {"replyTopic on a 401", GET, TOK_OTHER_KEY, HDR(SPRING), HDR_ABSENT, E401, SPRING,
	     RD_KAFKA_PARTITION_UA},
	    {"replyTopic outside the prefix", GET, TOK_GOOD, HDR("patients.dlq"), HDR_ABSENT,
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"replyTopic the prefix without a dot", GET, TOK_GOOD, HDR("patients.repliesX"),
	     HDR_ABSENT, DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"replyTopic the prefix and a dot", GET, TOK_GOOD, HDR("patients.replies."), HDR_ABSENT,
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"replyTopic empty", GET, TOK_GOOD, HDR(""), HDR_ABSENT, DEAD(PW_DLQ_REPLY_TO_REFUSED),
	     NULL, 0},
	    {"replyTopic with a null value", GET, TOK_GOOD, HDR_NULL, HDR_ABSENT,
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"replyTopic with a NUL byte", GET, TOK_GOOD, HDR(REPLIES "\0.x"), HDR_ABSENT,
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"replyTopic of 300 bytes", GET, TOK_GOOD, HDR_BYTES(long_topic, sizeof(long_topic)),
	     HDR_ABSENT, DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"bad replyTopic and a bad token", GET, TOK_OTHER_KEY, HDR("other"), HDR_ABSENT,
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    /* kafka_replyPartition: 4 bytes, big-endian, with kafka_replyTopic only. */
	    {"replyPartition 3", GET, TOK_GOOD, HDR(SPRING), HDR("\x00\x00\x00\x03"),
	     RUNS(PW_COMMAND_GET), SPRING, 3},
	    {"replyPartition 0", GET, TOK_GOOD, HDR(SPRING), HDR("\x00\x00\x00\x00"),
	     RUNS(PW_COMMAND_GET), SPRING, 0},
	    {"replyPartition big-endian", GET, TOK_GOOD, HDR(SPRING), HDR("\x01\x02\x03\x04"),
	     RUNS(PW_COMMAND_GET), SPRING, 0x01020304},
	    {"replyPartition INT32_MAX", GET, TOK_GOOD, HDR(SPRING), HDR("\x7f\xff\xff\xff"),
	     RUNS(PW_COMMAND_GET), SPRING, INT32_MAX},
	    {"replyPartition on a 401", GET, TOK_EXPIRED, HDR(SPRING), HDR("\x00\x00\x00\x05"),
	     E401, SPRING, 5},
	    {"replyPartition without replyTopic is not honoured", GET, TOK_GOOD, HDR_ABSENT,
	     HDR("\x00\x00\x00\x03"), RUNS(PW_COMMAND_GET), REPLIES, RD_KAFKA_PARTITION_UA},
	    {"replyPartition with a body reply_to is not honoured", GET_REPLY_TO, TOK_GOOD,
	     HDR(SPRING), HDR("\x00\x00\x00\x03"), RUNS(PW_COMMAND_GET), BODY_TOPIC,
	     RD_KAFKA_PARTITION_UA},
	    {"replyPartition -1", GET, TOK_GOOD, HDR(SPRING), HDR("\xff\xff\xff\xff"),
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"replyPartition INT32_MIN", GET, TOK_GOOD, HDR(SPRING), HDR("\x80\x00\x00\x00"),
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"replyPartition of 3 bytes", GET, TOK_GOOD, HDR(SPRING), HDR("\x00\x00\x03"),
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"replyPartition of 5 bytes", GET, TOK_GOOD, HDR(SPRING), HDR("\x00\x00\x00\x00\x03"),
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"replyPartition empty", GET, TOK_GOOD, HDR(SPRING), HDR(""),
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"replyPartition with a null value", GET, TOK_GOOD, HDR(SPRING), HDR_NULL,
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"replyPartition decimal text", GET, TOK_GOOD, HDR(SPRING), HDR("3"),
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	    {"bad replyPartition and a bad token", GET, TOK_OTHER_KEY, HDR(SPRING), HDR("\x00\x03"),
	     DEAD(PW_DLQ_REPLY_TO_REFUSED), NULL, 0},
	};

	memset(long_topic, 'x', sizeof(long_topic));
	memcpy(long_topic, REPLIES ".", sizeof(REPLIES));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_handler_record r = rec();
		pw_handler_outcome o;

		r.reply_topic = rows[i].topic;
		r.reply_partition = rows[i].partition;
		decide_as(rows[i].name, D, Q, rows[i].tmpl, rows[i].t, r, &rows[i].w, &o);
		if (o.kind == PW_HANDLER_COMMAND) {
			ck_assert_msg(strcmp(o.reply_to, rows[i].reply_to) == 0,
			              "%s: reply_to '%s', want '%s'", rows[i].name, o.reply_to,
			              rows[i].reply_to);
			ck_assert_msg(o.reply_partition == rows[i].partition_out,
			              "%s: reply partition %d, want %d", rows[i].name,
			              (int)o.reply_partition, (int)rows[i].partition_out);
		}
		pw_handler_outcome_clear(&o);
	}
}
END_TEST

START_TEST(spring_correlation_id_copied_byte_for_byte)
{
	static const char id[] = "\x00id\x00\xff-7\x00"; /* NUL bytes inside and at the end */
	static const struct {
		const char *name;
		const char *tmpl;
		tok t;
		pw_handler_header correlation;
		want w;
		bool copied; /**< the outcome holds the header's bytes */
	} rows[] = {
	    {"on a good command", GET, TOK_GOOD, HDR_BYTES(id, sizeof(id)), RUNS(PW_COMMAND_GET),
	     true},
	    {"on a 401", GET, TOK_OTHER_KEY, HDR_BYTES(id, sizeof(id)), E401, true},
	    {"on a 400", CMD("patient.get", "{\"id\":0}"), TOK_GOOD, HDR_BYTES(id, sizeof(id)),
	     E400F("id"), true},
	    {"empty", LIST, TOK_GOOD, HDR(""), RUNS(PW_COMMAND_LIST), true},
	    {"absent", GET, TOK_GOOD, HDR_ABSENT, RUNS(PW_COMMAND_GET), false},
	    {"with a null value", GET, TOK_GOOD, HDR_NULL, RUNS(PW_COMMAND_GET), false},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_handler_record r = rec();
		pw_handler_outcome o;

		r.correlation = rows[i].correlation;
		decide_as(rows[i].name, D, Q, rows[i].tmpl, rows[i].t, r, &rows[i].w, &o);
		if (rows[i].copied) {
			ck_assert_msg(o.correlation != NULL &&
			                  o.correlation != rows[i].correlation.value,
			              "%s: correlation not copied", rows[i].name);
			ck_assert_msg(o.correlation_len == rows[i].correlation.len &&
			                  memcmp(o.correlation, rows[i].correlation.value,
			                         o.correlation_len) == 0,
			              "%s: correlation changed (%zu bytes)", rows[i].name,
			              o.correlation_len);
		} else {
			ck_assert_msg(o.correlation == NULL && o.correlation_len == 0,
			              "%s: a correlation out of nothing", rows[i].name);
		}
		pw_handler_outcome_clear(&o);
	}

	/* A dead letter carries none: it is no reply. */
	pw_handler_record r = rec();
	pw_handler_outcome o;
	const want dead = DEAD(PW_DLQ_REPLY_TO_REFUSED);
	r.correlation = (pw_handler_header)HDR_BYTES(id, sizeof(id));
	r.reply_topic = (pw_handler_header)HDR("other");
	decide_as("correlation on a dead letter", D, Q, GET, TOK_GOOD, r, &dead, &o);
	pw_handler_outcome_clear(&o);
}
END_TEST

/* ---- good commands ---------------------------------------------------------------------- */

/* A create with untrimmed names, no sexo and an owner_id of someone else. */
#define CREATE_UNTRIMMED                                                                           \
	CMD("patient.create",                                                                      \
	    "{\"nombre\":\"  Ana \\t\",\"apellido_paterno\":\"\\nQuispe \",\"dni\":\"45678912\","  \
	    "\"fecha_nacimiento\":\"1990-04-12\",\"owner_id\":\"mallory@example.com\"}")

/* The same patient as stored: names trimmed, sexo given. */
#define CANONICAL(sexo)                                                                            \
	CMD("patient.create", "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\","               \
	                      "\"dni\":\"45678912\",\"fecha_nacimiento\":\"1990-04-12\","          \
	                      "\"sexo\":\"" sexo "\"}")

static void create_hash(const char *tmpl, char hash[65])
{
	pw_handler_outcome o;
	const want w = RUNS(PW_COMMAND_CREATE);

	decide_as(tmpl, D, C, tmpl, TOK_GOOD, rec(), &w, &o);
	memcpy(hash, o.in.payload_hash, 65);
	pw_handler_outcome_clear(&o);
}

START_TEST(a_create_carries_its_validated_input)
{
	pw_handler_outcome o;
	const want w = RUNS(PW_COMMAND_CREATE);
	char same[65], other[65];

	decide_as("create", D, C, CREATE_UNTRIMMED, TOK_GOOD, rec(), &w, &o);
	ck_assert_str_eq(o.owner, OWNER); /* the token's sub, not the payload's owner_id */
	ck_assert_str_eq(o.in.nombre, "Ana");
	ck_assert_str_eq(o.in.apellido_paterno, "Quispe");
	ck_assert_ptr_null(o.in.apellido_materno);
	ck_assert_str_eq(o.in.dni, "45678912");
	ck_assert_str_eq(o.in.fecha_nacimiento, "1990-04-12");
	ck_assert_str_eq(o.in.sexo, "M");
	ck_assert_uint_eq(strspn(o.in.payload_hash, "0123456789abcdef"), 64);
	ck_assert_str_eq(o.command_type, "patient.create");
	ck_assert_str_eq(o.reply_to, REPLIES);
	ck_assert_int_eq(o.reply_partition, RD_KAFKA_PARTITION_UA);
	ck_assert(o.command_time == NOW && o.log_append_time);

	/* The hash covers the stored values: trimmed, defaulted, without owner_id. */
	create_hash(CANONICAL("M"), same);
	ck_assert_str_eq(same, o.in.payload_hash);
	create_hash(CANONICAL("F"), other);
	ck_assert_str_ne(other, o.in.payload_hash);
	pw_handler_outcome_clear(&o);

	decide_as("create with apellido_materno", D, C,
	          CMD("patient.create", "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\","
	                                "\"apellido_materno\":\" Ruiz \",\"dni\":\"45678912\","
	                                "\"fecha_nacimiento\":\"1990-04-12\",\"sexo\":\"X\"}"),
	          TOK_GOOD, rec(), &w, &o);
	ck_assert_str_eq(o.in.apellido_materno, "Ruiz");
	ck_assert_str_eq(o.in.sexo, "X");
	pw_handler_outcome_clear(&o);
}
END_TEST

START_TEST(the_owner_is_the_token_claim)
{
	static const struct {
		const char *name;
		cfg_kind cfg;
		tok t;
		const char *owner; /**< NULL: 401 */
	} rows[] = {
	    {"sub by default", D, TOK_EMAIL, "opaque-7"},
	    {"JWT_OWNER_CLAIM=email", CFG_EMAIL, TOK_EMAIL, "carol@example.com"},
	    {"JWT_OWNER_CLAIM=email, a token without email", CFG_EMAIL, TOK_GOOD, NULL},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_handler_outcome o;

		decide(rows[i].cfg, C, CREATE_UNTRIMMED, rows[i].t, 0, rec(), &o);
		ck_assert_msg(o.kind == PW_HANDLER_COMMAND, "%s: dead letter", rows[i].name);
		if (rows[i].owner != NULL) {
			ck_assert_msg(o.command == PW_COMMAND_CREATE, "%s: status %d %s",
			              rows[i].name, o.status, o.reply ? o.reply : "");
			ck_assert_msg(strcmp(o.owner, rows[i].owner) == 0, "%s: owner '%s'",
			              rows[i].name, o.owner);
		} else {
			ck_assert_msg(o.command == PW_COMMAND_REFUSED && o.status == 401,
			              "%s: status %d", rows[i].name, o.status);
			ck_assert_msg(o.owner[0] == '\0', "%s: owner '%s' after a 401",
			              rows[i].name, o.owner);
		}
		pw_handler_outcome_clear(&o);
	}
}
END_TEST

START_TEST(a_query_carries_its_validated_query)
{
	char mine[PW_CURSOR_LEN + 1], bobs[PW_CURSOR_LEN + 1], filtered[PW_CURSOR_LEN + 1];
	char *with_cursor[3];

	ck_assert_int_eq(pw_cursor_encode(&fx[D].key, OWNER, NULL, NULL, 99, mine, sizeof(mine)),
	                 PW_OK);
	ck_assert_int_eq(
	    pw_cursor_encode(&fx[D].key, "bob@example.com", NULL, NULL, 99, bobs, sizeof(bobs)),
	    PW_OK);
	ck_assert_int_eq(
	    pw_cursor_encode(&fx[D].key, OWNER, "45678912", NULL, 99, filtered, sizeof(filtered)),
	    PW_OK);
	const char *cursors[3] = {mine, bobs, filtered};
	for (int i = 0; i < 3; i++)
		with_cursor[i] =
		    str_printf(CMD("patient.list", "{\"limit\":5,\"cursor\":\"%s\"}"), cursors[i]);

	const struct {
		const char *name;
		const char *tmpl;
		want w;
		pw_query q; /**< when it runs */
	} rows[] = {
	    {"get", GET, RUNS(PW_COMMAND_GET), {.is_list = 0, .id = 17}},
	    {"get, id 2^53",
	     CMD("patient.get", "{\"id\":9007199254740993}"),
	     RUNS(PW_COMMAND_GET),
	     {.is_list = 0, .id = INT64_C(9007199254740993)}},
	    {"list, defaults", LIST, RUNS(PW_COMMAND_LIST), {.is_list = 1, .limit = 50}},
	    {"list, filters",
	     CMD("patient.list", "{\"limit\":5,\"dni\":\"45678912\",\"q\":\"An\",\"cursor\":null}"),
	     RUNS(PW_COMMAND_LIST),
	     {.is_list = 1, .limit = 5, .has_dni = 1, .dni = "45678912", .q = "An"}},
	    {"list, this owner's cursor",
	     with_cursor[0],
	     RUNS(PW_COMMAND_LIST),
	     {.is_list = 1, .limit = 5, .after_id = 99}},
	    /* The cursor is checked against the token's owner, not anything in the record. */
	    {"list, another owner's cursor", with_cursor[1], E400F("cursor"), {0}},
	    {"list, a cursor made for other filters", with_cursor[2], E400F("cursor"), {0}},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const pw_query *want_q = &rows[i].q;
		pw_handler_outcome o;

		decide_as(rows[i].name, D, Q, rows[i].tmpl, TOK_GOOD, rec(), &rows[i].w, &o);
		if (o.command != PW_COMMAND_REFUSED) {
			const pw_query *q = &o.query;
			ck_assert_msg(
			    q->is_list == want_q->is_list && q->id == want_q->id &&
			        q->limit == want_q->limit && q->after_id == want_q->after_id &&
			        q->has_dni == want_q->has_dni && strcmp(q->dni, want_q->dni) == 0,
			    "%s: query list %d id %lld limit %d after %lld dni %d '%s'",
			    rows[i].name, q->is_list, (long long)q->id, q->limit,
			    (long long)q->after_id, q->has_dni, q->dni);
			ck_assert_msg((q->q == NULL) == (want_q->q == NULL) &&
			                  (q->q == NULL || strcmp(q->q, want_q->q) == 0),
			              "%s: q '%s'", rows[i].name, q->q ? q->q : "(null)");
			ck_assert_str_eq(o.command_type,
			                 q->is_list ? "patient.list" : "patient.get");
		}
		pw_handler_outcome_clear(&o);
	}
	for (int i = 0; i < 3; i++)
		free(with_cursor[i]);
}
END_TEST

START_TEST(the_command_type_for_the_audit_row)
{
	static const struct {
		const char *name;
		pw_topic_kind lane;
		const char *tmpl;
		tok t;
		const char *type;
	} rows[] = {
	    {"create", C, CREATE, TOK_GOOD, "patient.create"},
	    {"get", Q, GET, TOK_GOOD, "patient.get"},
	    {"list", Q, LIST, TOK_GOOD, "patient.list"},
	    {"list on the create lane (400)", C, LIST, TOK_GOOD, "patient.list"},
	    {"create refused with 401", C, CREATE, TOK_EXPIRED, "patient.create"},
	    {"type missing", Q, "{\"request_id\":\"" RID "\",\"token\":\"$T\",\"payload\":{}}",
	     TOK_GOOD, "unknown"},
	    {"type missing, 401", Q, "{\"request_id\":\"" RID "\",\"payload\":{}}", TOK_GOOD,
	     "unknown"},
	    {"type a number", Q,
	     "{\"request_id\":\"" RID "\",\"type\":7,\"token\":\"$T\",\"payload\":{}}", TOK_GOOD,
	     "unknown"},
	    {"type unknown", C, CMD("patient.rename", "{}"), TOK_GOOD, "unknown"},
	    {"type in another case", C, CMD("Patient.Create", "{}"), TOK_GOOD, "unknown"},
	    {"type longer than the field", C,
	     CMD("patient.create.with.a.name.longer.than.thirty-two.bytes", "{}"), TOK_GOOD,
	     "unknown"},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_handler_outcome o;

		decide(D, rows[i].lane, rows[i].tmpl, rows[i].t, 0, rec(), &o);
		ck_assert_msg(o.kind == PW_HANDLER_COMMAND, "%s: dead letter", rows[i].name);
		ck_assert_msg(strcmp(o.command_type, rows[i].type) == 0,
		              "%s: command_type '%s', want '%s'", rows[i].name, o.command_type,
		              rows[i].type);
		pw_handler_outcome_clear(&o);
	}
}
END_TEST

START_TEST(the_authorization_header_stands_in_for_a_body_token)
{
	static const struct {
		const char *name;
		const char *tmpl;
		tok body;           /**< the token in tmpl, when it has one */
		const char *scheme; /**< NULL: no header */
		tok header;
		want w;
	} rows[] = {
	    {"Bearer header, no body token", GET_NO_TOKEN, TOK_GOOD, "Bearer ", TOK_GOOD,
	     RUNS(PW_COMMAND_GET)},
	    {"bearer in lower case", GET_NO_TOKEN, TOK_GOOD, "bearer ", TOK_GOOD,
	     RUNS(PW_COMMAND_GET)},
	    {"body token null, Bearer header", GET_REPLY_TO_NUL, TOK_GOOD, "Bearer ", TOK_GOOD,
	     RUNS(PW_COMMAND_GET)},
	    {"Bearer header, expired token", GET_NO_TOKEN, TOK_GOOD, "Bearer ", TOK_EXPIRED, E401},
	    {"body token wins over the header", GET, TOK_GOOD, "Bearer ", TOK_OTHER_KEY,
	     RUNS(PW_COMMAND_GET)},
	    {"a bad body token is not rescued by the header", GET, TOK_OTHER_KEY, "Bearer ",
	     TOK_GOOD, E401},
	    {"a body token that is not a string",
	     NO_TOKEN_OPEN("patient.get") "\"token\":5,\"payload\":{\"id\":1}}", TOK_GOOD,
	     "Bearer ", TOK_GOOD, E401},
	    {"Basic header", GET_NO_TOKEN, TOK_GOOD, "Basic ", TOK_GOOD, E401},
	    {"Bearer and nothing", GET_NO_TOKEN, TOK_GOOD, "Bearer ", TOK_COUNT, E401},
	    {"no header, no body token", GET_NO_TOKEN, TOK_GOOD, NULL, TOK_GOOD, E401},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_handler_record r = rec();
		pw_handler_outcome o;
		char *hdr = NULL;

		/* The header's bytes are not NUL-terminated: garbage follows them. */
		if (rows[i].scheme != NULL) {
			const char *tk = rows[i].header < TOK_COUNT ? token(rows[i].header) : "";
			hdr = str_printf("%s%sGARBAGE", rows[i].scheme, tk);
			r.authorization =
			    (pw_handler_header)HDR_BYTES(hdr, strlen(hdr) - strlen("GARBAGE"));
		}
		decide(D, Q, rows[i].tmpl, rows[i].body, 0, r, &o);
		check_outcome(rows[i].name, &o, &rows[i].w,
		              token(rows[i].header < TOK_COUNT ? rows[i].header : TOK_GOOD));
		ck_assert_msg(!quotes_token(o.reply, token(rows[i].body)),
		              "%s: the reply quotes the body token", rows[i].name);
		pw_handler_outcome_clear(&o);
		free(hdr);
	}
}
END_TEST

/* ---- what is said to the caller and to the log ------------------------------------------ */

/* Every token this file makes, on both lanes, in the body and in the header, with the log at
 * debug: no reply and no log line quotes a token. */
START_TEST(no_reply_or_log_line_quotes_the_token)
{
	char *log = NULL;
	size_t log_len = 0;
	FILE *cap = tmpfile();
	int saved = dup(STDERR_FILENO);
	int replies = 0;
	pw_log_level level = pw_log_min_level;

	ck_assert(cap != NULL && saved >= 0);
	fflush(stderr);
	ck_assert_int_ge(dup2(fileno(cap), STDERR_FILENO), 0);
	pw_log_min_level = PW_LOG_DEBUG;
	PW_LOG_DEBUG(NULL, "capture-marker"); /* proves the capture sees log lines */
	for (int t = 0; t < TOK_COUNT; t++) {
		for (int k = 0; k < CFG_COUNT; k++) {
			pw_handler_outcome o[3];
			pw_handler_record r = rec();
			char *hdr = str_printf("Bearer %s", token((tok)t));
			r.authorization = (pw_handler_header)HDR_BYTES(hdr, strlen(hdr));
			decide((cfg_kind)k, C, CREATE, (tok)t, 0, rec(), &o[0]);
			decide((cfg_kind)k, Q, CMD("patient.list", "{\"limit\":0}"), (tok)t, 0,
			       rec(), &o[1]);
			decide((cfg_kind)k, Q, GET_NO_TOKEN, (tok)t, 0, r, &o[2]);
			for (int i = 0; i < 3; i++) {
				ck_assert_msg(!quotes_token(o[i].reply, token((tok)t)),
				              "token %d, configuration %d: reply quotes it: %s", t,
				              k, o[i].reply);
				replies += o[i].reply != NULL;
				pw_handler_outcome_clear(&o[i]);
			}
			free(hdr);
		}
	}
	fflush(stderr);
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);
	pw_log_min_level = level;
	rewind(cap);
	FILE *mem = open_memstream(&log, &log_len);
	for (int c; (c = fgetc(cap)) != EOF;)
		fputc(c, mem);
	fclose(mem);
	fclose(cap);

	ck_assert_msg(replies > 2 * TOK_COUNT, "only %d error replies were made", replies);
	ck_assert_msg(strstr(log, "capture-marker") != NULL, "the log was not captured");
	for (int t = 0; t < TOK_COUNT; t++)
		ck_assert_msg(!quotes_token(log, token((tok)t)), "the log quotes token %d: %.300s",
		              t, log);
	free(log);
}
END_TEST

/* ---- to and from pw_command ------------------------------------------------------------- */

START_TEST(to_command_maps_the_outcome)
{
	static const row rows[] = {
	    {"create", D, C, CREATE, TOK_GOOD, 0, RUNS(PW_COMMAND_CREATE)},
	    {"get", D, Q, GET, TOK_GOOD, 0, RUNS(PW_COMMAND_GET)},
	    {"list", D, Q, LIST, TOK_GOOD, 0, RUNS(PW_COMMAND_LIST)},
	    {"401", D, C, CREATE, TOK_EXPIRED, 0, E401},
	    {"400", D, Q, CMD("patient.get", "{}"), TOK_GOOD, 0, E400F("id")},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_handler_record r = rec();
		pw_handler_outcome o;
		pw_command c;

		r.append_time_s = NOW - 7; /* the command's time, not the time taken */
		decide_as(rows[i].name, rows[i].cfg, rows[i].lane, rows[i].tmpl, rows[i].t, r,
		          &rows[i].w, &o);
		char *reply = o.reply;
		memset(&c, 0x5a, sizeof(c));
		pw_handler_to_command(&o, "patients.x", 3, INT64_C(1) << 40, &c);
		ck_assert_msg(c.kind == rows[i].w.cmd && c.status == rows[i].w.status,
		              "%s: kind %d status %d", rows[i].name, c.kind, c.status);
		ck_assert_msg(c.owner == o.owner && c.request_id == o.request_id &&
		                  c.command_type == o.command_type && c.in == &o.in &&
		                  c.query == &o.query,
		              "%s: the command does not borrow from the outcome", rows[i].name);
		ck_assert_str_eq(c.request_id, RID);
		ck_assert_str_eq(c.src_topic, "patients.x");
		ck_assert_int_eq(c.src_partition, 3);
		ck_assert(c.src_offset == INT64_C(1) << 40);
		ck_assert(c.command_time == NOW - 7);
		ck_assert(!c.done);
		/* A refused command's reply moves into the command; any other has none yet. */
		ck_assert_ptr_eq(c.reply, reply);
		ck_assert_ptr_null(o.reply);
		ck_assert_msg((reply != NULL) == (rows[i].w.cmd == PW_COMMAND_REFUSED),
		              "%s: reply %s", rows[i].name, reply ? reply : "none");
		pw_command_clear(&c, 1); /* the command owns the moved reply now */
		pw_handler_outcome_clear(&o);
	}
}
END_TEST

START_TEST(a_refused_reply_moves_into_the_command_and_back)
{
	pw_handler_outcome o;
	pw_command c;
	char *reply;

	decide(D, Q, GET, TOK_OTHER_KEY, 0, rec(), &o);
	reply = o.reply;
	ck_assert_ptr_nonnull(reply);

	/* Not done (the database was down): the same reply comes back for the next try. */
	pw_handler_to_command(&o, "patients.query", 0, 1, &c);
	ck_assert_ptr_eq(c.reply, reply);
	ck_assert_ptr_null(o.reply);
	c.done = false;
	pw_handler_from_command(&o, &c);
	ck_assert_ptr_eq(o.reply, reply);
	ck_assert_int_eq(o.status, 401);
	ck_assert_ptr_null(c.reply);

	/* Done: the reply the command ends with is the outcome's, once. */
	pw_handler_to_command(&o, "patients.query", 0, 1, &c);
	ck_assert_ptr_eq(c.reply, reply);
	c.done = true;
	pw_handler_from_command(&o, &c);
	ck_assert_ptr_eq(o.reply, reply);
	ck_assert_ptr_null(c.reply);
	check_outcome("401 after the round trip", &o, &(want)E401, token(TOK_OTHER_KEY));
	pw_handler_outcome_clear(&o);

	/* A good command: the database's reply and status move into the outcome. */
	decide(D, C, CREATE, TOK_GOOD, 0, rec(), &o);
	pw_handler_to_command(&o, "patients.create", 0, 2, &c);
	ck_assert_ptr_null(c.reply);
	reply = strdup("{\"request_id\":\"r-1\",\"status\":201,\"data\":{}}");
	ck_assert_ptr_nonnull(reply);
	c.reply = reply;
	c.status = 201;
	c.done = true;
	pw_handler_from_command(&o, &c);
	ck_assert_ptr_eq(o.reply, reply);
	ck_assert_int_eq(o.status, 201);
	ck_assert_ptr_null(c.reply);
	pw_handler_outcome_clear(&o);
}
END_TEST

/* Outcomes that own every kind of field, cleared: valgrind and ASan see them go. */
START_TEST(clearing_an_outcome)
{
	static const row rows[] = {
	    {"create", D, C, CREATE, TOK_GOOD, 0, RUNS(PW_COMMAND_CREATE)},
	    {"create with apellido_materno", D, C,
	     CMD("patient.create", "{\"nombre\":\"Ana\",\"apellido_paterno\":\"Quispe\","
	                           "\"apellido_materno\":\"Ruiz\",\"dni\":\"1\","
	                           "\"fecha_nacimiento\":\"1990-04-12\"}"),
	     TOK_GOOD, 0, RUNS(PW_COMMAND_CREATE)},
	    {"list with q", D, Q, CMD("patient.list", "{\"q\":\"An\"}"), TOK_GOOD, 0,
	     RUNS(PW_COMMAND_LIST)},
	    {"400 with fields", D, Q, CMD("patient.list", "{\"q\":\"An\",\"limit\":0}"), TOK_GOOD,
	     0, E400F("limit")},
	};
	static const char id[] = "corr-1";

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		pw_handler_record r = rec();
		pw_handler_outcome o;

		r.correlation = (pw_handler_header)HDR(id);
		r.reply_topic = (pw_handler_header)HDR(SPRING);
		decide_as(rows[i].name, rows[i].cfg, rows[i].lane, rows[i].tmpl, rows[i].t, r,
		          &rows[i].w, &o);
		pw_handler_outcome_clear(&o);
		ck_assert_msg(o.request_id == NULL && o.reply_to == NULL && o.reply == NULL &&
		                  o.correlation == NULL && o.query.q == NULL &&
		                  o.in.nombre == NULL && o.in.apellido_materno == NULL,
		              "%s: a pointer survives the clear", rows[i].name);
		pw_handler_outcome_clear(&o); /* twice is fine */
	}
	pw_handler_outcome_clear(NULL);
}
END_TEST

/* A test case of these tests, each with the configurations and tokens set up afresh. */
static void add_case(Suite *s, const char *name, const TTest *const *tests, size_t n)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	for (size_t i = 0; i < n; i++)
		tcase_add_test(tc, tests[i]);
	suite_add_tcase(s, tc);
}

static Suite *handler_suite(void)
{
	Suite *s = suite_create("handler");
	const TTest *order[] = {dead_letters_come_first, the_token_comes_before_the_payload,
	                        scope_comes_before_the_payload, type_and_payload_come_last};
	const TTest *time[] = {the_command_is_judged_at_its_append_time,
	                       a_cached_token_is_judged_again_at_each_command};
	const TTest *spring[] = {spring_reply_topic_and_partition,
	                         spring_correlation_id_copied_byte_for_byte};
	const TTest *commands[] = {a_create_carries_its_validated_input,
	                           the_owner_is_the_token_claim,
	                           a_query_carries_its_validated_query,
	                           the_command_type_for_the_audit_row,
	                           the_authorization_header_stands_in_for_a_body_token,
	                           no_reply_or_log_line_quotes_the_token};
	const TTest *command[] = {to_command_maps_the_outcome,
	                          a_refused_reply_moves_into_the_command_and_back,
	                          clearing_an_outcome};

	add_case(s, "order", ROWS(order));
	add_case(s, "time", ROWS(time));
	add_case(s, "spring", ROWS(spring));
	add_case(s, "commands", ROWS(commands));
	add_case(s, "command", ROWS(command));
	return s;
}

int main(void)
{
	return pw_check_run(handler_suite());
}
