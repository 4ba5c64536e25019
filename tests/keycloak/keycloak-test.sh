#!/usr/bin/env bash
# Interop test against a real identity provider (issue 12): Keycloak, the version in
# tests/keycloak/pom.xml, fetched from Maven Central and run with `kc.sh start-dev` on
# an in-memory database. Through Keycloak's admin REST API it makes a realm `clinic`, a
# public client `patient-worker` whose access tokens carry `aud: patient-worker`, and a
# user alice; then a worker with JWT_OIDC_ISSUER pointing at the realm must
#   1. accept alice's password-grant token (owner_id = her email),
#   2. accept at once a token signed by a key added during the run (unknown-kid reload),
#   3. drop the old key when Keycloak stops publishing it (the periodic reload, 60 s
#      here) and then refuse the old token with 401, while the new one still passes.
# Shell, curl and jq only. Prints how long each phase took; exits non-zero, with one
# line saying what failed and the log tail that explains it, on any failure.
#
# Needs: the stack's settings in the environment (scripts/test.sh runs this with them;
# by hand: eval "$(scripts/stack.sh env)"), the built binaries in $PW_BUILD_DIR
# (default build/: patient-worker, patientctl, tests/pw_bulk), Java 21+ for Keycloak
# (PW_KEYCLOAK_JAVA_HOME, default the Temurin 25 JDK), mvn, unzip, curl, jq.
# Cache: $PW_BUILD_DIR/keycloak/ keeps the zip and the unzipped tree; the first start
# of a fresh tree adds a one-time rebuild for the dev-mem database (about a minute on
# two cores), which stays in the tree. Logs of the last run: $PW_BUILD_DIR/keycloak/run/.
set -eu
set -o pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${PW_BUILD_DIR:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

POM=$ROOT/tests/keycloak/pom.xml
JAVA_HOME=${PW_KEYCLOAK_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
KC_START_TIMEOUT=240 # s: a cold tree rebuilds (~65 s) before it starts (~35 s)
REFRESH_S=60         # the worker's JWT_JWKS_REFRESH_S (its lowest allowed value)
REMOVE_TIMEOUT=90    # s for the worker to notice the old key is gone (one reload)

WORKER=$BUILD/patient-worker
CTL=$BUILD/patientctl
BULK=$BUILD/tests/pw_bulk

say() { printf 'keycloak-test: %s\n' "$*" >&2; }
fail() {
	printf 'keycloak-test: FAILED: %s\n' "$*" >&2
	exit 1
}

# --- what must be there -------------------------------------------------------
for tool in curl jq mvn unzip setsid ss; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (scripts/install-deps.sh installs it)"
done
[ -x "$JAVA_HOME/bin/java" ] ||
	fail "no Java for Keycloak at $JAVA_HOME (Keycloak needs Java 21+; set PW_KEYCLOAK_JAVA_HOME to a JDK 21+)"
java_major=$("$JAVA_HOME/bin/java" -XshowSettings:properties -version 2>&1 |
	sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p')
[ "${java_major:-0}" -ge 21 ] ||
	fail "$JAVA_HOME is Java ${java_major:-?}; Keycloak needs Java 21+ (set PW_KEYCLOAK_JAVA_HOME)"
for bin in "$WORKER" "$CTL" "$BULK"; do
	[ -x "$bin" ] || fail "$bin not built (cmake --build $BUILD)"
done
[ -n "${KAFKA_BROKERS:-}" ] && [ -n "${DATABASE_URL:-}" ] ||
	fail "KAFKA_BROKERS and DATABASE_URL are not set: run through scripts/test.sh or eval \"\$(scripts/stack.sh env)\""

KC_VERSION=$(sed -n 's:.*<keycloak.version>\(.*\)</keycloak.version>.*:\1:p' "$POM")
[ -n "$KC_VERSION" ] || fail "no keycloak.version in $POM"
CACHE=$BUILD/keycloak
KC_HOME=$CACHE/keycloak-$KC_VERSION
ZIP=$CACHE/dist/keycloak-quarkus-dist-$KC_VERSION.zip
RUN=$CACHE/run
mkdir -p "$CACHE"
rm -rf "$RUN"
mkdir -p "$RUN"
chmod 700 "$RUN" # the admin token and passwords pass through files here

# Phase timing: `phase NAME` closes the running phase and opens the next.
phase_name=""
phase_t0=$SECONDS
test_t0=$SECONDS
phase() {
	[ -z "$phase_name" ] || say "phase $phase_name: $((SECONDS - phase_t0)) s"
	phase_name=$1
	phase_t0=$SECONDS
}

# --- clean-up: Keycloak and the worker always stop ------------------------------
kc_pid=""
worker_pid=""
own_db=""
ADMIN_DB_URL=$DATABASE_URL
# stop_pid PID WHAT: SIGTERM, up to 30 s, then SIGKILL to its process group (each
# was started as the leader of its own with setsid, so kc.sh's java goes too).
stop_pid() {
	local pid=$1 what=$2 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	say "$what (pid $pid) did not stop in 30 s; killing it"
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$?
	[ -z "$worker_pid" ] || stop_pid "$worker_pid" worker
	[ -z "$kc_pid" ] || stop_pid "$kc_pid" Keycloak
	[ -z "$own_db" ] || psql "$ADMIN_DB_URL" -qAtX -c "DROP DATABASE IF EXISTS \"$own_db\" WITH (FORCE)" \
		>/dev/null 2>&1 || say "could not drop database $own_db"
	rm -f "$RUN/auth"
	if [ $rc -eq 0 ]; then
		say "passed in $((SECONDS - test_t0)) s (Keycloak $KC_VERSION)"
	else
		say "logs: $RUN"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tail_log() { # FILE WHAT
	say "--- last 30 lines of $2 ($1) ---"
	tail -30 "$1" >&2 2>/dev/null || true
}

# await WHAT PID LOG SECONDS NAP DESCRIPTION COMMAND...: runs COMMAND every NAP seconds
# until it succeeds; fails the test with the end of LOG when PID exits first or SECONDS
# pass. (stop_pid, at the exit, skips a PID that is gone.)
await() {
	local what=$1 pid=$2 log=$3 limit=$4 nap=$5 desc=$6 deadline
	shift 6
	deadline=$((SECONDS + limit))
	until "$@"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail_log "$log" "$what"
			fail "$what exited while waiting for $desc"
		fi
		if [ $SECONDS -ge $deadline ]; then
			tail_log "$log" "$what"
			fail "$desc: not within $limit s"
		fi
		sleep "$nap"
	done
}

# --- 1. the distribution, cached under the build folder -------------------------
phase fetch
if [ ! -f "$KC_HOME/.pw-complete" ]; then
	if [ ! -f "$ZIP" ]; then
		say "fetching Keycloak $KC_VERSION from Maven Central (~177 MB, once; cached in $CACHE)"
		rm -rf "$CACHE/dist.tmp"
		timeout 900 mvn -B -q -f "$POM" dependency:copy-dependencies \
			-DoutputDirectory="$CACHE/dist.tmp" >"$RUN/mvn.log" 2>&1 ||
			{
				tail_log "$RUN/mvn.log" Maven
				fail "could not fetch org.keycloak:keycloak-quarkus-dist:$KC_VERSION:zip"
			}
		mkdir -p "$CACHE/dist"
		mv "$CACHE/dist.tmp/keycloak-quarkus-dist-$KC_VERSION.zip" "$ZIP"
		rm -rf "$CACHE/dist.tmp"
	fi
	# Unzipped beside, then moved in whole: a killed run never leaves half a tree.
	rm -rf "$CACHE/tree.tmp" "$KC_HOME"
	unzip -q "$ZIP" -d "$CACHE/tree.tmp" || fail "cannot unzip $ZIP"
	mv "$CACHE/tree.tmp/keycloak-$KC_VERSION" "$KC_HOME"
	rm -rf "$CACHE/tree.tmp"
	date -u +%FT%TZ >"$KC_HOME/.pw-complete"
fi

# --- 2. Keycloak -----------------------------------------------------------------
# A free port below the ephemeral range, as scripts/stack.sh picks its own.
free_port() {
	local port i
	for i in $(seq 1 200); do
		port=$((15000 + RANDOM % 17000))
		[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] || {
			echo "$port"
			return 0
		}
	done
	fail "no free TCP port after 200 tries"
}
rand() { head -c 18 /dev/urandom | base64 | tr -d '+/='; }

phase keycloak-start
KC_PORT=$(free_port)
KC=http://127.0.0.1:$KC_PORT
ISSUER=$KC/realms/clinic
ADMIN_PW=$(rand)
ALICE_PW=$(rand)
# -XX:TieredStopAtLevel=1: C1 only, a faster start on two cores for a short run.
# --hostname fixes the issuer to what the worker is given.
JAVA_HOME=$JAVA_HOME JAVA_OPTS_APPEND=-XX:TieredStopAtLevel=1 \
	KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=$ADMIN_PW \
	setsid "$KC_HOME/bin/kc.sh" start-dev --db dev-mem --http-host 127.0.0.1 \
	--http-port "$KC_PORT" --hostname "$KC" </dev/null >"$RUN/keycloak.log" 2>&1 &
kc_pid=$!
say "Keycloak $KC_VERSION starting on $KC (pid $kc_pid, log $RUN/keycloak.log)"
kc_answers() {
	curl -fsS -o /dev/null --max-time 5 "$KC/realms/master/.well-known/openid-configuration" 2>/dev/null
}
await Keycloak "$kc_pid" "$RUN/keycloak.log" "$KC_START_TIMEOUT" 1 \
	"Keycloak to answer $KC/realms/master/.well-known/openid-configuration" kc_answers

# --- admin REST API ---------------------------------------------------------------
# Admin tokens live 60 s: each group of calls takes a fresh one. The token goes to
# curl through a header file, the passwords through a form on stdin: neither shows in ps.
admin_login() {
	local tok
	tok=$(printf 'grant_type=password&client_id=admin-cli&username=admin&password=%s' "$ADMIN_PW" |
		curl -fsS --max-time 20 -d @- "$KC/realms/master/protocol/openid-connect/token" |
		jq -r .access_token) || fail "no admin token from the master realm"
	(umask 077 && printf 'Authorization: Bearer %s\n' "$tok" >"$RUN/auth")
}
# api METHOD PATH [JSON]: prints the body (or, for a 201, the Location header's last
# segment: the new object's id); any other status than 2xx fails the test.
api() {
	local method=$1 path=$2 body=${3:-} code
	local -a data=()
	[ -z "$body" ] || data=(-H 'Content-Type: application/json' --data-binary "$body")
	code=$(curl -sS --max-time 30 -X "$method" -H @"$RUN/auth" "${data[@]}" \
		-D "$RUN/api.headers" -o "$RUN/api.body" -w '%{http_code}' "$KC/admin/realms$path") ||
		fail "$method $path: no answer"
	case $code in
	201) sed -n 's#^[Ll]ocation: .*/\([^/[:space:]]*\)[[:space:]]*$#\1#p' "$RUN/api.headers" ;;
	2??) cat "$RUN/api.body" ;;
	*) fail "$method /admin/realms$path: HTTP $code: $(head -c 300 "$RUN/api.body")" ;;
	esac
}
# user_token: alice's access token (password grant, client patient-worker).
user_token() {
	local out
	out=$(printf 'grant_type=password&client_id=patient-worker&username=alice&password=%s' "$ALICE_PW" |
		curl -sS --max-time 20 -d @- "$ISSUER/protocol/openid-connect/token") ||
		fail "token endpoint of realm clinic does not answer"
	jq -e -r .access_token <<<"$out" 2>/dev/null ||
		fail "no token for alice: $(jq -c '{error, error_description}' <<<"$out" 2>/dev/null || head -c 200 <<<"$out")"
}
# b64url-decoded part N (0 header, 1 claims) of a token, as compact JSON.
token_part() {
	local s
	s=$(cut -d. -f"$(($2 + 1))" <<<"$1" | tr '_-' '/+')
	while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
	base64 -d <<<"$s" | jq -c .
}
token_kid() { token_part "$1" 0 | jq -r .kid; }
published_kids() { curl -fsS --max-time 10 "$ISSUER/protocol/openid-connect/certs" | jq -r '.keys[].kid'; }

phase realm-setup
admin_login
# accessTokenLifespan 900 s: the first token must outlive the wait for the reload.
api POST "" '{"realm":"clinic","enabled":true,"accessTokenLifespan":900}' >/dev/null
api POST /clinic/clients "$(jq -nc '{clientId: "patient-worker", publicClient: true,
	directAccessGrantsEnabled: true, standardFlowEnabled: false,
	protocolMappers: [{name: "audience", protocol: "openid-connect",
		protocolMapper: "oidc-audience-mapper",
		config: {"included.client.audience": "patient-worker",
			"access.token.claim": "true", "id.token.claim": "false"}}]}')" >/dev/null
# First and last name and a verified email, or the password grant answers
# "Account is not fully set up".
api POST /clinic/users "$(jq -nc --arg pw "$ALICE_PW" '{username: "alice",
	email: "alice@clinic.example", emailVerified: true, firstName: "Alice",
	lastName: "Liddell", enabled: true,
	credentials: [{type: "password", value: $pw, temporary: false}]}')" >/dev/null
REALM_ID=$(api GET /clinic | jq -r .id)
TOKEN1=$(user_token)
KID1=$(token_kid "$TOKEN1")
say "token 1: header $(token_part "$TOKEN1" 0)"
say "token 1: claims $(token_part "$TOKEN1" 1 | jq -c '{iss, aud, azp, email, exp}')"
[ "$(token_part "$TOKEN1" 1 | jq -r .iss)" = "$ISSUER" ] || fail "token 1: iss is not $ISSUER"
token_part "$TOKEN1" 1 | jq -e '.aud | arrays | index("patient-worker")' >/dev/null ||
	fail "token 1: aud is not an array naming patient-worker (audience mapper?)"
grep -qxF -e "$KID1" <<<"$(published_kids)" || fail "token 1's kid $KID1 is not in the realm's JWK Set"

# --- 3. the worker ------------------------------------------------------------------
phase worker-start
id=kc$(date +%s)$$
export TOPIC_CREATE=pwkc.$id.create TOPIC_QUERY=pwkc.$id.query
export TOPIC_REPLIES=pwkc.$id.replies TOPIC_DLQ=pwkc.$id.dlq
# Command topics keep the broker's append time: the key archive judges a command by it.
timeout 60 "$BULK" topic "$TOPIC_CREATE" 1 logappend || fail "cannot create topic $TOPIC_CREATE"
timeout 60 "$BULK" topic "$TOPIC_QUERY" 1 logappend || fail "cannot create topic $TOPIC_QUERY"
timeout 60 "$BULK" topic "$TOPIC_REPLIES" 1 || fail "cannot create topic $TOPIC_REPLIES"
timeout 60 "$BULK" topic "$TOPIC_DLQ" 1 || fail "cannot create topic $TOPIC_DLQ"
# A database of its own: the key archive (jwt_keys) is shared by every worker on a
# database, and a worker retires whatever its set lacks, so a worker on Keycloak's keys
# and the integration tests' workers on theirs would retire each other's keys if they
# ran at once on one database. Dropped at exit.
command -v psql >/dev/null 2>&1 || fail "psql not found (postgresql-client-15)"
psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"pwkc_$id\"" >/dev/null ||
	fail "cannot create database pwkc_$id with DATABASE_URL"
own_db=pwkc_$id
case $DATABASE_URL in
*://*/*\?*) DATABASE_URL=${DATABASE_URL%%\?*} && DATABASE_URL=${DATABASE_URL%/*}/$own_db?${ADMIN_DB_URL#*\?} ;;
*://*/*) DATABASE_URL=${DATABASE_URL%/*}/$own_db ;;
*) fail "DATABASE_URL is not a postgresql:// URI naming a database" ;;
esac
export DATABASE_URL
"$WORKER" migrate >"$RUN/migrate.log" 2>&1 || {
	tail_log "$RUN/migrate.log" migrate
	fail "patient-worker migrate failed"
}
WLOG=$RUN/worker.log
# Exactly one key source: every other one is unset.
env -u JWT_SECRET -u JWT_PUBLIC_KEY_FILE -u JWT_JWKS_FILE -u JWT_JWKS_URL -u JWT_ISSUER \
	-u JWT_JWKS_CA_FILE -u JWT_REQUIRE_SCOPE \
	JWT_OIDC_ISSUER="$ISSUER" JWT_OWNER_CLAIM=email JWT_AUDIENCE=patient-worker \
	JWT_ALG=RS256 JWT_JWKS_REFRESH_S=$REFRESH_S HTTP_ADDR= KAFKA_GROUP_ID=pwkc.$id.group \
	LOG_LEVEL=info setsid "$WORKER" run </dev/null >"$WLOG" 2>&1 &
worker_pid=$!
both_lanes_assigned() {
	grep -q 'create lane: partitions assigned' "$WLOG" &&
		grep -q 'query lane: partitions assigned' "$WLOG"
}
await worker "$worker_pid" "$WLOG" 60 0.2 "the worker's partitions" both_lanes_assigned
if grep -q "not used:" "$WLOG"; then say "worker: $(grep -m1 "not used:" "$WLOG" | cut -c1-200)"; fi

# create TOKEN WHAT EXPECTED_STATUS: one patientctl create as the token's holder; the
# reply's status must be the one expected, and a 201's owner_id alice's email.
ncreate=0
create() {
	local token=$1 what=$2 want=$3 out rc status owner
	ncreate=$((ncreate + 1))
	# The token through PW_TOKEN: it stays out of ps.
	rc=0
	out=$(PW_TOKEN=$token "$CTL" create --nombre Alicia --apellido-paterno Liddell \
		--dni "kc$(date +%s%N | cut -c4-17)" --fecha-nacimiento 1990-04-12 --timeout 20 \
		2>"$RUN/ctl-$ncreate.err") || rc=$?
	status=$(jq -r '.status // empty' <<<"$out" 2>/dev/null || true)
	if [ "$status" != "$want" ]; then
		say "patientctl exit $rc, reply: ${out:-none} $(head -c 300 "$RUN/ctl-$ncreate.err")"
		tail_log "$WLOG" worker
		fail "$what: expected status $want, got ${status:-no reply}"
	fi
	case $want in
	201)
		[ $rc -eq 0 ] || fail "$what: status 201 but patientctl exited $rc"
		owner=$(jq -r .data.owner_id <<<"$out")
		[ "$owner" = alice@clinic.example ] || fail "$what: owner_id is '$owner', not alice@clinic.example"
		;;
	*) [ $rc -eq 1 ] || fail "$what: status $want but patientctl exited $rc, not 1" ;;
	esac
	if [ "$want" = 201 ]; then
		say "$what: $status (owner_id $owner)"
	else
		say "$what: $status $(jq -c .error <<<"$out")"
	fi
}

phase first-create
create "$TOKEN1" "create with alice's token (kid $KID1)" 201

# --- 4. rotation ------------------------------------------------------------------
phase rotation-new-key
admin_login
OLD_PROVIDERS=$(api GET "/clinic/components?type=org.keycloak.keys.KeyProvider" |
	jq -r '.[] | select(.providerId == "rsa-generated") | .id')
[ -n "$OLD_PROVIDERS" ] || fail "realm clinic has no rsa-generated key provider"
NEW_PROVIDER=$(api POST /clinic/components "$(jq -nc --arg parent "$REALM_ID" '{name: "rsa-rotated",
	providerId: "rsa-generated", providerType: "org.keycloak.keys.KeyProvider",
	parentId: $parent, config: {priority: ["200"]}}')")
NEW_KID=$(api GET /clinic/keys | jq -r --arg p "$NEW_PROVIDER" \
	'.keys[] | select(.providerId == $p and .algorithm == "RS256") | .kid')
[ -n "$NEW_KID" ] || fail "the new key provider $NEW_PROVIDER has no RS256 key"
TOKEN2=$(user_token)
KID2=$(token_kid "$TOKEN2")
say "token 2: header $(token_part "$TOKEN2" 0)"
[ "$KID2" = "$NEW_KID" ] || fail "token 2 is signed with kid $KID2, not the new key's $NEW_KID"
[ "$KID2" != "$KID1" ] || fail "token 2 has the old kid"
create "$TOKEN2" "create with a token of the new key (kid $KID2), at once" 201
grep -q "added: .*$KID2" "$WLOG" || fail "the worker's log shows no key set change adding $KID2"
create "$TOKEN1" "create with the old token while its key is still published" 201

phase rotation-old-key-gone
admin_login
for p in $OLD_PROVIDERS; do
	api GET "/clinic/components/$p" | jq -c '.config.enabled = ["false"]' >"$RUN/component.json"
	api PUT "/clinic/components/$p" "$(cat "$RUN/component.json")" >/dev/null
done
kids=$(published_kids)
! grep -qxF -e "$KID1" <<<"$kids" || fail "old kid $KID1 is still in the realm's JWK Set after disabling its provider"
grep -qxF -e "$KID2" <<<"$kids" || fail "new kid $KID2 is missing from the realm's JWK Set"
say "old kid $KID1 no longer published; waiting up to ${REMOVE_TIMEOUT} s for the worker's reload"
await worker "$worker_pid" "$WLOG" "$REMOVE_TIMEOUT" 1 \
	"a 'key set changed' line removing $KID1 in the worker's log" \
	grep -q "key set changed.*removed: .*$KID1" "$WLOG"
say "worker: $(grep 'key set changed' "$WLOG" | grep "removed: .*$KID1" | tail -1 | cut -c1-300)"

phase after-rotation
create "$TOKEN1" "create with the old token after its key left the set" 401
create "$TOKEN2" "create with the new token after the old key left the set" 201

# --- 5. the worker stops cleanly on SIGTERM ------------------------------------------
phase worker-stop
kill -TERM "$worker_pid"
rc=124
for _ in $(seq 1 300); do
	kill -0 "$worker_pid" 2>/dev/null || {
		rc=0
		wait "$worker_pid" || rc=$?
		break
	}
	sleep 0.1
done
[ $rc -ne 124 ] || fail "the worker did not stop within 30 s of SIGTERM"
worker_pid=""
[ $rc -eq 0 ] || {
	tail_log "$WLOG" worker
	fail "the worker exited $rc after SIGTERM, not 0"
}
phase ""
