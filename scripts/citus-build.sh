#!/bin/sh
# Build Citus from its source and install it into Debian's PostgreSQL 15, for a
# machine that cannot reach Citus's own Debian packages (packages.citusdata.com).
# Where those packages are reachable, install them instead
# (`postgresql-15-citus-13.2`); scripts/stack.sh finds either the same way.
#
#   scripts/citus-build.sh SRC_DIR
#
# SRC_DIR is a checkout of github.com/citusdata/citus (tested: tag v13.2.2). It is
# copied, not changed. Needs postgresql-server-dev-15 (pg_config and the server
# headers), liblz4-dev, libzstd-dev, libkrb5-dev and root, or write access to PostgreSQL's library and extension dirs.
#
# One local fix, applied to the copy only: Debian's 15.20 server headers already
# declare have_createdb_privilege(), which Citus's pg_version_compat.h defines as
# `static inline` for PostgreSQL < 16; a static definition after an extern
# declaration does not compile, so it becomes the extern declaration. The function
# is exported by the 15.20 server, so the behaviour is the server's own.
set -eu

die() {
	printf 'citus-build: %s\n' "$*" >&2
	exit 2
}

[ $# -eq 1 ] || die "usage: scripts/citus-build.sh SRC_DIR (a checkout of citusdata/citus)"
SRC=$1
[ -f "$SRC/configure" ] && [ -d "$SRC/src/backend/distributed" ] ||
	die "SRC_DIR $SRC is not a Citus source checkout (no configure, no src/backend/distributed)"
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$PG_CONFIG" ] || die "PG_CONFIG $PG_CONFIG not found: install postgresql-server-dev-15"
INCLUDEDIR=$("$PG_CONFIG" --includedir-server)
[ -f "$INCLUDEDIR/postgres.h" ] || die "no server headers in $INCLUDEDIR: install postgresql-server-dev-15"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/citus-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp -a "$SRC/." "$WORK/"
cd "$WORK"

COMPAT=src/include/pg_version_compat.h
if grep -q 'extern bool have_createdb_privilege' "$INCLUDEDIR/commands/dbcommands.h" 2>/dev/null &&
	grep -q '^have_createdb_privilege(void)$' "$COMPAT"; then
	# Drop "static inline bool" + the body that follows it; keep one declaration.
	awk '
		held != "" && $0 == "have_createdb_privilege(void)" { skip = 1; held = ""; next }
		held != "" { print held; held = "" }
		skip { if ($0 == "}") { skip = 0; print "extern bool have_createdb_privilege(void);" } next }
		$0 == "static inline bool" { held = $0; next }
		{ print }
		END { if (held != "") print held }
	' "$COMPAT" >"$COMPAT.new"
	mv "$COMPAT.new" "$COMPAT"
	grep -q '^extern bool have_createdb_privilege(void);$' "$COMPAT" ||
		die "could not apply the have_createdb_privilege fix to $COMPAT"
	echo "citus-build: applied the have_createdb_privilege fix (server headers declare it)"
fi

# Debian's server headers say PostgreSQL was built with lz4, zstd and GSSAPI, and Citus's
# columnar code then includes their headers whatever configure is told. curl only
# serves the statistics Citus reports to its makers; left out.
for h in lz4.h zstd.h gssapi/gssapi.h; do
	[ -f "/usr/include/$h" ] || die "/usr/include/$h missing: install liblz4-dev libzstd-dev libkrb5-dev"
done
./configure PG_CONFIG="$PG_CONFIG" --without-libcurl >configure.log 2>&1 ||
	{ tail -20 configure.log >&2; die "configure failed (log above)"; }
JOBS=$(nproc 2>/dev/null || echo 2)
make -j"$JOBS" >make.log 2>&1 || { tail -30 make.log >&2; die "make failed (log above)"; }
make install >install.log 2>&1 || { tail -20 install.log >&2; die "make install failed (log above)"; }
echo "citus-build: installed $(sed -n 's/^default_version = .\(.*\).$/\1/p' "$("$PG_CONFIG" --sharedir)/extension/citus.control") into $("$PG_CONFIG" --pkglibdir)"
