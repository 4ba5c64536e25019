/* Development keys and patientctl's own JWK Set; see ctl_jwk.h. */
#include "ctl_jwk.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "pw_util.h"

/* RS256 keys patientctl makes; RFC 7518 3.3 asks for 2048 bits at least. */
#define RSA_BITS 2048
/* A P-256 coordinate, and an ES256 signature's r and s, are 32 bytes (RFC 7518 3.4, 6.2.1). */
#define P256_BYTES 32
/* An Ed25519 public key (RFC 8037 2). */
#define ED25519_BYTES 32

static const char *const alg_names[] = {
    [CTL_JWK_RS256] = "RS256",
    [CTL_JWK_ES256] = "ES256",
    [CTL_JWK_EDDSA] = "EdDSA",
};

pw_status ctl_jwk_alg_parse(const char *name, ctl_jwk_alg *out)
{
	for (size_t i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++) {
		/* Exact case: a token's alg is compared byte for byte (RFC 7515 4.1.1). */
		if (strcmp(name, alg_names[i]) == 0) {
			*out = (ctl_jwk_alg)i;
			return PW_OK;
		}
	}
	return PW_E_INVALID;
}

const char *ctl_jwk_alg_name(ctl_jwk_alg alg)
{
	return alg_names[alg];
}

/* Puts "what: OpenSSL's reason" on errstr, empties OpenSSL's error queue (so the next
 * failure does not report this one) and returns st. */
static pw_status ossl_fail(char *errstr, size_t errstr_size, pw_status st, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;

	snprintf(errstr, errstr_size, "%s: %s", what, why ? why : "OpenSSL failed");
	ERR_clear_error();
	return st;
}

pw_status ctl_jwk_generate(ctl_jwk_alg alg, EVP_PKEY **out, char *errstr, size_t errstr_size)
{
	EVP_PKEY *key = NULL;

	switch (alg) {
	case CTL_JWK_RS256:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)RSA_BITS);
		break;
	case CTL_JWK_ES256:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case CTL_JWK_EDDSA:
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	}
	if (key == NULL)
		return ossl_fail(errstr, errstr_size, PW_E_INTERNAL, "cannot generate a key");
	*out = key;
	return PW_OK;
}

/* OpenSSL would otherwise ask for an encrypted key's passphrase on the terminal, which a
 * test or a script cannot answer: an encrypted key is refused instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* The curve of an EC key, as a NID; NID_undef when it has none we know. */
static int ec_curve(const EVP_PKEY *key)
{
	char name[64];
	size_t len = 0;
	int nid;

	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
	                                   &len) != 1)
		return NID_undef;
	/* OpenSSL says "prime256v1"; a provider may use the NIST name "P-256". */
	nid = OBJ_sn2nid(name);
	return nid != NID_undef ? nid : EC_curve_nist2nid(name);
}

pw_status ctl_jwk_fits(const EVP_PKEY *key, ctl_jwk_alg alg, char *errstr, size_t errstr_size)
{
	const char *type = EVP_PKEY_get0_type_name(key);
	bool ok = false;

	switch (alg) {
	case CTL_JWK_RS256:
		/* The worker refuses smaller RSA keys, so a token signed with one would be 401. */
		ok = EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) >= RSA_BITS;
		break;
	case CTL_JWK_ES256:
		ok = EVP_PKEY_is_a(key, "EC") && ec_curve(key) == NID_X9_62_prime256v1;
		break;
	case CTL_JWK_EDDSA:
		ok = EVP_PKEY_is_a(key, "ED25519");
		break;
	}
	if (ok)
		return PW_OK;
	snprintf(errstr, errstr_size, "%s needs %s; the key is %s of %d bits", alg_names[alg],
	         alg == CTL_JWK_RS256   ? "an RSA key of 2048 bits or more"
	         : alg == CTL_JWK_ES256 ? "an EC key on P-256"
	                                : "an Ed25519 key",
	         type ? type : "of an unknown type", EVP_PKEY_get_bits(key));
	return PW_E_INVALID;
}

pw_status ctl_jwk_read_private(const char *path, ctl_jwk_alg alg, EVP_PKEY **out, char *errstr,
                               size_t errstr_size)
{
	pw_status st = PW_E_INVALID;
	FILE *f = NULL;
	EVP_PKEY *key = NULL;

	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	if (key == NULL) {
		ERR_clear_error();
		snprintf(
		    errstr, errstr_size,
		    "%s holds no PEM private key (a public key or an encrypted one is refused)",
		    path);
		goto out;
	}
	st = ctl_jwk_fits(key, alg, errstr, errstr_size);
	if (st != PW_OK)
		goto out;
	*out = key;
	key = NULL; /* the caller's now */
out:
	EVP_PKEY_free(key);
	if (f != NULL)
		fclose(f); /* read only: nothing to lose on close */
	return st;
}

/* Fills a file being written; 0 on success. */
typedef int (*fill_fn)(FILE *f, const void *arg);

/* Writes path through fill into a temporary file beside it (same folder, so the rename is
 * atomic), with mode, synced before the rename: a reader sees the old file or the whole new
 * one, never a part. */
static pw_status write_atomic(const char *path, mode_t mode, fill_fn fill, const void *arg,
                              char *errstr, size_t errstr_size)
{
	pw_status st = PW_E_INVALID;
	size_t plen = strlen(path);
	char *tmp = NULL;
	bool created = false;
	int fd = -1;
	FILE *f = NULL;
	int rc;

	tmp = malloc(plen + sizeof(".XXXXXX"));
	if (tmp == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		st = PW_E_NOMEM;
		goto out;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".XXXXXX", sizeof(".XXXXXX"));
	/* mkstemp creates the file 0600, so a private key is never readable by others, not
	 * even for a moment. */
	fd = mkstemp(tmp);
	if (fd < 0) {
		snprintf(errstr, errstr_size, "cannot create a file beside %s: %s", path,
		         strerror(errno));
		goto out;
	}
	created = true;
	if (fchmod(fd, mode) != 0) {
		snprintf(errstr, errstr_size, "cannot set the mode of %s: %s", tmp,
		         strerror(errno));
		goto out;
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		snprintf(errstr, errstr_size, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1; /* f owns it now */
	if (fill(f, arg) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(errstr, errstr_size, "cannot write %s: %s", tmp,
		         errno ? strerror(errno) : "encoding failed");
		goto out;
	}
	rc = fclose(f);
	f = NULL;
	if (rc != 0) {
		snprintf(errstr, errstr_size, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, path) != 0) {
		snprintf(errstr, errstr_size, "cannot rename %s to %s: %s", tmp, path,
		         strerror(errno));
		goto out;
	}
	created = false; /* it is path now */
	st = PW_OK;
out:
	if (f != NULL)
		fclose(f); /* already failing; the file is removed below */
	if (fd >= 0)
		close(fd);
	if (created && unlink(tmp) != 0)
		fprintf(stderr, "patientctl: cannot remove %s: %s\n", tmp, strerror(errno));
	free(tmp);
	return st;
}

static int fill_private(FILE *f, const void *arg)
{
	/* PEM_write_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY"); no cipher: a development
	 * key, protected by its file mode. The API takes a non-const key. */
	EVP_PKEY *key = (EVP_PKEY *)arg;

	errno = 0;
	if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

pw_status ctl_jwk_write_private(const char *path, EVP_PKEY *key, char *errstr, size_t errstr_size)
{
	return write_atomic(path, 0600, fill_private, key, errstr, errstr_size);
}

/* A JSON string of the n bytes at p in base64url; NULL when memory runs out. */
static json_t *b64_string(const unsigned char *p, size_t n)
{
	size_t size = pw_util_b64url_encoded_len(n) + 1;
	char *text = malloc(size);
	json_t *s = NULL;

	if (text == NULL)
		return NULL;
	if (pw_util_b64url_encode(p, n, text, size) == PW_OK)
		s = json_string(text);
	free(text);
	return s;
}

/* A BIGNUM in base64url: minimal big-endian (RFC 7518 6.3.1: no leading zero octets), or
 * padded to pad bytes when pad > 0 (EC coordinates have a fixed length, RFC 7518 6.2.1.2). */
static json_t *bn_string(const BIGNUM *bn, int pad)
{
	int n = pad > 0 ? pad : BN_num_bytes(bn);
	unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
	json_t *s = NULL;

	if (buf == NULL)
		return NULL;
	if ((pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf)) == n)
		s = b64_string(buf, (size_t)n);
	free(buf);
	return s;
}

/* Sets name in o to bn's text; false when either failed (json_object_set_new takes the
 * reference even then). */
static bool set_bn(json_t *o, const char *name, const EVP_PKEY *key, const char *param, int pad)
{
	BIGNUM *bn = NULL;
	bool ok = false;

	if (EVP_PKEY_get_bn_param(key, param, &bn) != 1)
		goto out;
	ok = json_object_set_new(o, name, bn_string(bn, pad)) == 0;
out:
	BN_free(bn);
	return ok;
}

pw_status ctl_jwk_public(const EVP_PKEY *key, ctl_jwk_alg alg, json_t **out, char *errstr,
                         size_t errstr_size)
{
	pw_status st = PW_E_INTERNAL;
	json_t *jwk = json_object();
	unsigned char raw[ED25519_BYTES];
	size_t raw_len = sizeof(raw);
	bool ok = false;

	if (jwk == NULL)
		goto out;
	switch (alg) {
	case CTL_JWK_RS256:
		ok = json_object_set_new(jwk, "kty", json_string("RSA")) == 0 &&
		     set_bn(jwk, "n", key, OSSL_PKEY_PARAM_RSA_N, 0) &&
		     set_bn(jwk, "e", key, OSSL_PKEY_PARAM_RSA_E, 0);
		break;
	case CTL_JWK_ES256:
		ok = json_object_set_new(jwk, "kty", json_string("EC")) == 0 &&
		     json_object_set_new(jwk, "crv", json_string("P-256")) == 0 &&
		     set_bn(jwk, "x", key, OSSL_PKEY_PARAM_EC_PUB_X, P256_BYTES) &&
		     set_bn(jwk, "y", key, OSSL_PKEY_PARAM_EC_PUB_Y, P256_BYTES);
		break;
	case CTL_JWK_EDDSA:
		ok = EVP_PKEY_get_raw_public_key(key, raw, &raw_len) == 1 &&
		     raw_len == ED25519_BYTES &&
		     json_object_set_new(jwk, "kty", json_string("OKP")) == 0 &&
		     json_object_set_new(jwk, "crv", json_string("Ed25519")) == 0 &&
		     json_object_set_new(jwk, "x", b64_string(raw, raw_len)) == 0;
		break;
	}
	if (!ok)
		goto out;
	*out = jwk;
	jwk = NULL; /* the caller's now */
	st = PW_OK;
out:
	if (st != PW_OK)
		ossl_fail(errstr, errstr_size, st, "cannot build the public JWK");
	json_decref(jwk);
	return st;
}

pw_status ctl_jwk_thumbprint(const json_t *jwk, char *out, size_t out_size)
{
	/* RFC 7638 3.2: the required members of each kty, already in lexicographic order. */
	static const char *const rsa[] = {"e", "kty", "n", NULL};
	static const char *const ec[] = {"crv", "kty", "x", "y", NULL};
	static const char *const okp[] = {"crv", "kty", "x", NULL};
	pw_status st = PW_E_INVALID;
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *const *names = NULL;
	json_t *canon = NULL;
	char *text = NULL;
	unsigned char digest[32];
	unsigned int dlen = 0;

	if (kty == NULL)
		goto out;
	if (strcmp(kty, "RSA") == 0)
		names = rsa;
	else if (strcmp(kty, "EC") == 0)
		names = ec;
	else if (strcmp(kty, "OKP") == 0)
		names = okp;
	else
		goto out;
	canon = json_object();
	if (canon == NULL)
		goto out;
	for (size_t i = 0; names[i] != NULL; i++) {
		const char *v = json_string_value(json_object_get(jwk, names[i]));
		if (v == NULL || json_object_set_new(canon, names[i], json_string(v)) != 0)
			goto out;
	}
	/* Compact and sorted is exactly RFC 7638's form for these members: jansson puts no
	 * whitespace with JSON_COMPACT, and escapes neither '/' nor non-ASCII by default. */
	text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		goto out;
	if (EVP_Digest(text, strlen(text), digest, &dlen, EVP_sha256(), NULL) != 1 ||
	    dlen != sizeof(digest)) {
		ERR_clear_error();
		st = PW_E_INTERNAL;
		goto out;
	}
	st = pw_util_b64url_encode(digest, dlen, out, out_size);
out:
	free(text);
	json_decref(canon);
	return st;
}

/* The set at path, or a new empty one when there is no file; NULL after errstr. */
static json_t *load_set(const char *path, char *errstr, size_t errstr_size)
{
	FILE *f = fopen(path, "r");
	json_t *set = NULL, *keys;
	json_error_t jerr;

	if (f == NULL) {
		if (errno == ENOENT)
			return json_pack("{s:[]}", "keys");
		snprintf(errstr, errstr_size, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	set = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	fclose(f); /* read only */
	if (set == NULL) {
		snprintf(errstr, errstr_size, "%s is not JSON (line %d: %s)", path, jerr.line,
		         jerr.text);
		return NULL;
	}
	keys = json_object_get(set, "keys");
	if (!json_is_array(keys))
		goto not_a_set;
	for (size_t i = 0; i < json_array_size(keys); i++)
		if (!json_is_object(json_array_get(keys, i)))
			goto not_a_set;
	return set;
not_a_set:
	/* Refused rather than overwritten: the file may be something else by mistake. */
	snprintf(errstr, errstr_size,
	         "%s is not a JWK Set (an object whose \"keys\" is an array "
	         "of objects)",
	         path);
	json_decref(set);
	return NULL;
}

static int fill_set(FILE *f, const void *arg)
{
	errno = 0;
	if (json_dumpf((const json_t *)arg, f, JSON_INDENT(2)) != 0)
		return -1;
	return fputc('\n', f) == EOF ? -1 : 0;
}

pw_status ctl_jwk_set_put(const char *path, const json_t *jwk, char *errstr, size_t errstr_size)
{
	pw_status st = PW_E_INVALID;
	json_t *set = NULL, *keys;
	const char *kid = json_string_value(json_object_get(jwk, "kid"));

	set = load_set(path, errstr, errstr_size);
	if (set == NULL)
		goto out;
	keys = json_object_get(set, "keys");
	/* A key of the same kid is replaced: the worker would not know which of two to use. */
	for (size_t i = json_array_size(keys); kid != NULL && i-- > 0;) {
		const char *other =
		    json_string_value(json_object_get(json_array_get(keys, i), "kid"));
		if (other != NULL && strcmp(other, kid) == 0 && json_array_remove(keys, i) != 0)
			goto nomem;
	}
	/* A copy: jwk is the caller's and const. */
	if (json_array_append_new(keys, json_deep_copy(jwk)) != 0)
		goto nomem;
	/* 0644: a key set is public, and the worker may run as another user. */
	st = write_atomic(path, 0644, fill_set, set, errstr, errstr_size);
	goto out;
nomem:
	snprintf(errstr, errstr_size, "out of memory");
	st = PW_E_NOMEM;
out:
	json_decref(set);
	return st;
}

/* An ECDSA signature in DER (OpenSSL's form) into JWS's fixed r||s (RFC 7518 3.4). */
static bool der_to_raw(const unsigned char *der, size_t len, unsigned char *raw)
{
	const unsigned char *p = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
	bool ok = false;

	if (es == NULL)
		return false;
	ok = BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, P256_BYTES) == P256_BYTES &&
	     BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + P256_BYTES, P256_BYTES) == P256_BYTES;
	ECDSA_SIG_free(es);
	return ok;
}

pw_status ctl_jwk_sign(EVP_PKEY *key, ctl_jwk_alg alg, const void *msg, size_t n,
                       unsigned char *sig, size_t sig_size, size_t *sig_len, char *errstr,
                       size_t errstr_size)
{
	pw_status st = PW_E_INTERNAL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	/* Ed25519 hashes inside the signature (PureEdDSA): no digest may be named. */
	const EVP_MD *md = alg == CTL_JWK_EDDSA ? NULL : EVP_sha256();
	unsigned char *buf = NULL;
	size_t len = 0;

	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, md, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, NULL, &len, msg, n) != 1) {
		ossl_fail(errstr, errstr_size, st, "cannot sign");
		goto out;
	}
	buf = malloc(len);
	if (buf == NULL) {
		snprintf(errstr, errstr_size, "out of memory");
		st = PW_E_NOMEM;
		goto out;
	}
	if (EVP_DigestSign(ctx, buf, &len, msg, n) != 1) {
		ossl_fail(errstr, errstr_size, st, "cannot sign");
		goto out;
	}
	if (alg == CTL_JWK_ES256) {
		if (sig_size < 2 * P256_BYTES || !der_to_raw(buf, len, sig)) {
			ossl_fail(errstr, errstr_size, st, "cannot convert the ECDSA signature");
			goto out;
		}
		*sig_len = 2 * P256_BYTES;
	} else {
		if (len > sig_size) {
			snprintf(errstr, errstr_size, "the signature has %zu bytes, too many", len);
			goto out;
		}
		memcpy(sig, buf, len);
		*sig_len = len;
	}
	st = PW_OK;
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	return st;
}
