/* A stand-in identity provider for tests: an HTTP server on a loopback port (libmicrohttpd,
 * in the test's process) that serves OpenID Connect discovery and a JWK Set the test changes
 * while the worker runs, can answer 500 or stop listening, and counts the set's fetches. */
#ifndef PW_TESTIDP_H
#define PW_TESTIDP_H

#include <stdbool.h>

typedef struct tk_idp tk_idp;

/* A loopback port nobody listens on right now (the kernel's pick for an ephemeral bind). */
int tk_free_port(void);

/* Starts on a free loopback port, serving set_json (copied) at /jwks. Fails the test when
 * it cannot. */
tk_idp *tk_idp_start(const char *set_json);

/* The same over HTTPS with the PEM certificate and key given (the base URL is then
 * https://127.0.0.1:PORT). */
tk_idp *tk_idp_start_tls(const char *set_json, const char *cert_pem, const char *key_pem);

/* Stops listening (the port refuses connections) and frees. NULL is fine. */
void tk_idp_stop(tk_idp *p);

/* "http://127.0.0.1:PORT": the issuer the discovery document names, unless overridden. */
const char *tk_idp_base(const tk_idp *p);

void tk_idp_set_keys(tk_idp *p, const char *set_json);

/* Answer every request with 500 (failing = true) or as normal. */
void tk_idp_set_failing(tk_idp *p, bool failing);

/* The issuer the discovery document claims (NULL: the base URL). */
void tk_idp_set_issuer(tk_idp *p, const char *issuer);

/* A Cache-Control: max-age=N header on the set (-1: none). */
void tk_idp_set_max_age(tk_idp *p, long max_age);

/* Requests of /jwks answered so far (whatever their status). */
unsigned long tk_idp_fetches(tk_idp *p);

/* While hold is set, requests of /jwks wait (up to 30 s) before they are answered;
 * tk_idp_held says how many wait now. */
void tk_idp_hold(tk_idp *p, bool hold);
int tk_idp_held(tk_idp *p);

/* Stops listening but keeps the state; tk_idp_resume listens again on the same port. */
void tk_idp_pause(tk_idp *p);
void tk_idp_resume(tk_idp *p);

#endif
