#!/bin/sh
# Install every Debian 12 package needed to build, test and run patient-worker
# and its throwaway local stack (scripts/stack.sh).
#
# Idempotent and cheap on a warm machine: if dpkg already reports every
# package as installed we never touch apt (apt-get update alone costs seconds
# and needs the network).  CI runs this on fresh machines, so this list is the
# single source of truth - anything a script or test needs must be here.
set -eu

PACKAGES="
build-essential
cmake
pkg-config
librdkafka-dev
libpq-dev
libjansson-dev
libjwt-dev
libssl-dev
check
libmicrohttpd-dev
libcurl4-openssl-dev
libcsv-dev
libyaml-dev
postgresql-15
postgresql-client-15
openjdk-17-jre-headless
maven
clang-format
clang
libclang-rt-14-dev
valgrind
python3-jsonschema
ca-certificates
openssl
procps
iproute2
util-linux
coreutils
curl
jq
unzip
podman
runc
netavark
aardvark-dns
debootstrap
docker-compose
"
# Why the less obvious ones are here:
#   openjdk-17-jre-headless, maven: stack.sh fetches and runs a real Kafka
#       broker from Maven Central (scripts/kafka/pom.xml).
#   ca-certificates: Maven needs it to talk HTTPS to Maven Central.
#   openssl (the command): tests make throwaway TLS certificates for the stand-in
#       identity provider (tests/unit/check_keyring.c) and the bench's RSA keys.
#   procps (ps, pgrep), iproute2 (ss: free-port search), util-linux
#       (runuser, setsid), coreutils (timeout, mktemp): used by stack.sh.
#   libmicrohttpd-dev: the worker's /metrics, /healthz, /readyz listener, and the
#       tests' stand-in identity provider (a JWK Set and discovery over HTTP).
#   libcurl4-openssl-dev: fetching a JWK Set over HTTPS (JWT_JWKS_URL,
#       JWT_OIDC_ISSUER): TLS, timeouts, no redirects, a size cap.
#   libcsv-dev: patientctl load reads CSV (quoting, embedded newlines) with it.
#   python3-jsonschema: tests/schemas/validate.sh checks schemas/ and their
#       examples with a real JSON Schema (draft 2020-12) validator, run as a program.
#   libyaml-dev: tests/docker checks docker/compose.yaml without a Docker engine.
#   clang, libclang-rt-14-dev: scripts/fuzz.sh (libFuzzer); the runtime that
#       -fsanitize=fuzzer,address links is only a Recommends of clang-14.
#   curl, jq, unzip: tests/keycloak/keycloak-test.sh (the interop test against a real
#       Keycloak) drives Keycloak's admin REST API and token endpoint with curl, reads
#       the JSON with jq, and unpacks the Keycloak distribution with unzip.  Keycloak
#       itself needs Java 21+: the test runs it with the Temurin 25 JDK in
#       /usr/lib/jvm/temurin-25-jdk-amd64 (PW_KEYCLOAK_JAVA_HOME), which the machine
#       image provides (Debian 12 packages stop at OpenJDK 17); without it the test fails.
#   podman, runc, netavark, aardvark-dns, debootstrap, docker-compose:
#       scripts/container-test.sh builds docker/Dockerfile and runs the image and
#       docker/compose.yaml for real (no Docker engine runs on the test machines):
#       podman as the engine with runc (crun refuses this kind of machine's hybrid
#       cgroups) and netavark with aardvark-dns (compose's services find each other by
#       name), debootstrap for the debian:12 base no registry can give us, and Debian's
#       docker-compose 1.29 talking to podman's Docker API.

missing=""
for pkg in $PACKAGES; do
	# "install ok installed" is the only state in which the package is usable;
	# half-configured or removed-but-config-left states count as missing.
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing="$missing $pkg"
	fi
done

if [ -z "$missing" ]; then
	echo "install-deps: all packages already installed"
	exit 0
fi

echo "install-deps: installing:$missing"

# Root runs apt directly; otherwise go through sudo if it exists.
if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-deps: not root and sudo is not available; install as root:" >&2
	echo "   $missing" >&2
	exit 1
fi

# The full list (not just $missing) keeps the install command reproducible;
# apt skips what is already there.  --no-install-recommends keeps the JRE and
# PostgreSQL from dragging in X11/doc packages.
$SUDO apt-get update
# shellcheck disable=SC2086  # word splitting of the list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES

echo "install-deps: done"
