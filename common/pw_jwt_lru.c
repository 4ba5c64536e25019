/* A hash table with chained buckets for lookups and a doubly linked recency list for
 * eviction; each entry is one allocation sized to its owner. */
#include "pw_jwt_lru.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
	unsigned char key[PW_JWT_LRU_KEY_LEN];
	struct entry *hnext;       /**< next in the same bucket */
	struct entry *prev, *next; /**< recency list, most recent first */
	pw_jwt_lru_times times;
	bool scope_read, scope_write;
	size_t owner_len; /**< at most PW_JWT_OWNER_MAX */
	char owner[];     /**< owner_len + 1 bytes: a whole pw_jwt_claims would cost 321 */
} entry;

struct pw_jwt_lru {
	size_t cap;   /**< entries at most, at least 1 */
	size_t count; /**< entries held */
	size_t mask;  /**< buckets - 1, a power of two minus one */
	entry **buckets;
	entry *head, *tail; /**< most and least recently used */
};

static size_t bucket_of(const pw_jwt_lru *c, const unsigned char *key)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h)); /* a SHA-256 digest: its bytes are already spread */
	return (size_t)h & c->mask;
}

static void recency_unlink(pw_jwt_lru *c, entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void recency_push_front(pw_jwt_lru *c, entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

/* Not const: what it returns is changed through (moved, forgotten). */
static entry *find(pw_jwt_lru *c, const unsigned char *key)
{
	for (entry *e = c->buckets[bucket_of(c, key)]; e; e = e->hnext)
		if (memcmp(e->key, key, PW_JWT_LRU_KEY_LEN) == 0)
			return e;
	return NULL;
}

static void forget(pw_jwt_lru *c, entry *e)
{
	entry **pp = &c->buckets[bucket_of(c, e->key)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	recency_unlink(c, e);
	free(e);
	c->count--;
}

pw_status pw_jwt_lru_create(size_t cap, pw_jwt_lru **out)
{
	pw_jwt_lru *c = NULL;
	size_t nb = 1;
	pw_status st = PW_E_INVALID;

	*out = NULL;
	if (cap == 0)
		goto out;
	st = PW_E_NOMEM;
	while (nb < cap) { /* load factor at most 1 */
		if (nb > SIZE_MAX / 2 / sizeof(*c->buckets))
			goto out;
		nb <<= 1;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto out;
	c->buckets = calloc(nb, sizeof(*c->buckets));
	if (c->buckets == NULL)
		goto out;
	c->cap = cap;
	c->mask = nb - 1;
	*out = c;
	c = NULL; /* the caller's now */
	st = PW_OK;
out:
	pw_jwt_lru_destroy(c);
	return st;
}

void pw_jwt_lru_destroy(pw_jwt_lru *c)
{
	if (c == NULL)
		return;
	pw_jwt_lru_clear(c);
	free(c->buckets);
	free(c);
}

bool pw_jwt_lru_get(pw_jwt_lru *c, const unsigned char key[PW_JWT_LRU_KEY_LEN],
                    pw_jwt_lru_times *times, pw_jwt_claims *claims)
{
	entry *e = find(c, key);

	if (e == NULL)
		return false;
	recency_unlink(c, e);
	recency_push_front(c, e);
	*times = e->times;
	memcpy(claims->owner, e->owner, e->owner_len + 1);
	claims->scope_read = e->scope_read;
	claims->scope_write = e->scope_write;
	return true;
}

pw_status pw_jwt_lru_put(pw_jwt_lru *c, const unsigned char key[PW_JWT_LRU_KEY_LEN],
                         const pw_jwt_lru_times *times, const pw_jwt_claims *claims)
{
	size_t owner_len = strnlen(claims->owner, sizeof(claims->owner));
	entry *e;

	if (owner_len > PW_JWT_OWNER_MAX)
		return PW_E_INVALID;
	if (find(c, key) != NULL)
		return PW_OK;
	if (c->count >= c->cap)
		forget(c, c->tail);
	e = malloc(sizeof(*e) + owner_len + 1);
	if (e == NULL)
		return PW_E_NOMEM;
	memcpy(e->key, key, PW_JWT_LRU_KEY_LEN);
	e->times = *times;
	e->scope_read = claims->scope_read;
	e->scope_write = claims->scope_write;
	e->owner_len = owner_len;
	memcpy(e->owner, claims->owner, owner_len);
	e->owner[owner_len] = '\0';
	size_t b = bucket_of(c, key);
	e->hnext = c->buckets[b];
	c->buckets[b] = e;
	recency_push_front(c, e);
	c->count++;
	return PW_OK;
}

void pw_jwt_lru_clear(pw_jwt_lru *c)
{
	entry *e = c->head;

	while (e != NULL) {
		entry *next = e->next;
		free(e);
		e = next;
	}
	c->head = c->tail = NULL;
	c->count = 0;
	if (c->buckets != NULL)
		memset(c->buckets, 0, (c->mask + 1) * sizeof(*c->buckets));
}

size_t pw_jwt_lru_count(const pw_jwt_lru *c)
{
	return c->count;
}
