/* Cursors: base64url(id as 8 big-endian bytes || HMAC-SHA256(key, "v1" owner dni q id)).
 * The MAC covers the owner and the filters, so a cursor neither moves one owner into
 * another's rows nor changes the question mid-way; the id alone would leak nothing,
 * but an edited one is refused all the same. */
#include "pw_cursor.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "pw_util.h"

pw_status pw_cursor_key_init(pw_cursor_key *key, const char *secret, int *generated)
{
	unsigned int n = 0;

	*generated = 0;
	if (secret == NULL) {
		*generated = 1;
		return RAND_bytes(key->bytes, PW_CURSOR_KEY_LEN) == 1 ? PW_OK : PW_E_INTERNAL;
	}
	if (EVP_Digest(secret, strlen(secret), key->bytes, &n, EVP_sha256(), NULL) != 1 ||
	    n != PW_CURSOR_KEY_LEN)
		return PW_E_INTERNAL;
	return PW_OK;
}

/* Each field is length-prefixed so ("ab", "c") and ("a", "bc") differ. */
static int mac(const pw_cursor_key *key, const char *owner, const char *dni, const char *q,
               const unsigned char id[8], unsigned char out[32])
{
	const char *parts[3] = {owner, dni ? dni : "", q ? q : ""};
	unsigned char flags = (unsigned char)((dni != NULL) | ((q != NULL) << 1));
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
	                       OSSL_PARAM_construct_end()};
	size_t outl = 0;
	int ok = 0;

	if (c == NULL || EVP_MAC_init(c, key->bytes, PW_CURSOR_KEY_LEN, params) != 1)
		goto out;
	if (EVP_MAC_update(c, (const unsigned char *)"v1", 2) != 1 ||
	    EVP_MAC_update(c, &flags, 1) != 1)
		goto out;
	for (int i = 0; i < 3; i++) {
		uint32_t len = (uint32_t)strlen(parts[i]);
		unsigned char l[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
		                      (unsigned char)(len >> 8), (unsigned char)len};
		if (EVP_MAC_update(c, l, 4) != 1 ||
		    EVP_MAC_update(c, (const unsigned char *)parts[i], len) != 1)
			goto out;
	}
	if (EVP_MAC_update(c, id, 8) != 1 || EVP_MAC_final(c, out, &outl, 32) != 1 || outl != 32)
		goto out;
	ok = 1;
out:
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	return ok;
}

pw_status pw_cursor_encode(const pw_cursor_key *key, const char *owner, const char *dni,
                           const char *q, int64_t last_id, char *out, size_t out_size)
{
	unsigned char raw[40];

	if (out_size < PW_CURSOR_LEN + 1 || last_id < 0)
		return PW_E_INVALID;
	for (int i = 0; i < 8; i++)
		raw[i] = (unsigned char)((uint64_t)last_id >> (56 - 8 * i));
	if (!mac(key, owner, dni, q, raw, raw + 8))
		return PW_E_INTERNAL;
	if (pw_util_b64url_encode(raw, sizeof(raw), out, out_size) != PW_OK ||
	    strlen(out) != PW_CURSOR_LEN)
		return PW_E_INTERNAL;
	return PW_OK;
}

pw_status pw_cursor_decode(const pw_cursor_key *key, const char *owner, const char *dni,
                           const char *q, const char *cursor, int64_t *last_id)
{
	unsigned char raw[48];
	unsigned char want[32];
	char canonical[PW_CURSOR_LEN + 1];
	uint64_t id = 0;
	size_t n;

	if (strlen(cursor) != PW_CURSOR_LEN ||
	    pw_util_b64url_decode(cursor, PW_CURSOR_LEN, raw, sizeof(raw), &n) != PW_OK || n != 40)
		return PW_E_INVALID;
	/* The last character carries 4 spare bits; a canonical cursor has them zero, so no
	 * two strings decode to the same cursor: the bytes must encode back to the text. */
	if (pw_util_b64url_encode(raw, n, canonical, sizeof(canonical)) != PW_OK ||
	    strcmp(canonical, cursor) != 0)
		return PW_E_INVALID;
	if (!mac(key, owner, dni, q, raw, want))
		return PW_E_INTERNAL;
	if (CRYPTO_memcmp(want, raw + 8, 32) != 0)
		return PW_E_INVALID;
	for (int i = 0; i < 8; i++)
		id = (id << 8) | raw[i];
	if (id > INT64_MAX)
		return PW_E_INVALID;
	*last_id = (int64_t)id;
	return PW_OK;
}
