-- Every public key the workers have seen in their key set (issue 12), so that a command is
-- judged by the keys of its own time: a token verifies with a key only when the command's
-- time (the broker's append time) is before the key's retired_at, or retired_at is empty.
-- A replay after a rotation therefore answers as the first run did, and a retired key that
-- leaks cannot sign anything new. Keys are by RFC 7638 thumbprint; jwk holds the canonical
-- public members the thumbprint is computed over, enough to rebuild the key. retired_at is
-- the time of the first successful refresh whose set lacked the key, by the worker's clock;
-- it is set once and never cleared by the worker (an operator who wants a key back clears
-- it by hand: UPDATE jwt_keys SET retired_at = NULL WHERE thumbprint = '...').
--
-- Not tenant data (public keys of the identity provider, shared by every owner), so no
-- row-level security; the worker may add keys and mark them retired, nothing else. HS256
-- secrets never come here.
CREATE TABLE jwt_keys (
  thumbprint text PRIMARY KEY CHECK (thumbprint ~ '^[A-Za-z0-9_-]{43}$'),
  kid        text,
  alg        text NOT NULL CHECK (alg IN ('RS256', 'ES256', 'EdDSA')),
  jwk        jsonb NOT NULL,
  first_seen timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);

GRANT SELECT, INSERT ON jwt_keys TO patients_app;
GRANT UPDATE (retired_at) ON jwt_keys TO patients_app;
