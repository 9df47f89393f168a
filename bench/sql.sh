#!/usr/bin/env bash
# sql.sh - the SQL store benchmark: fv_sql vs raw libpq on one private PostgreSQL, in one run,
# plus fv_sql on an SQLite file. Needs a built tree (cmake --build build).
#   bash bench/sql.sh [inserts] [selects] [concurrency]
# Builds bench/sql_bench.c with one cc line against build/libfvlib.a (no CMake change).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FV_BUILD:-$src/build}
[[ -f "$build/libfvlib.a" ]] || { echo "build first: cmake --build build" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/fv_sql_bench.XXXXXX")
cleanup() {
    bash "$src/tests/support/server_postgres.sh" stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"     # the server runs as the postgres user and must reach its folder

libs="libuv jansson libsodium libjwt sqlite3 libpq hiredis libcurl libnghttp2 libprotobuf-c"
cc -std=gnu17 -O2 -g -I"$src/src" -o "$work/sql_bench" "$src/bench/sql_bench.c" \
    "$build/libfvlib.a" $(pkg-config --cflags --libs $libs) -lwslay -lstdc++ -lm -lpthread

bash "$src/tests/support/server_postgres.sh" start "$work/pg"
url=$(cat "$work/pg/postgres.url")
echo "postgres: $url (fsync=off, synchronous_commit=off: the test server's settings)"
"$work/sql_bench" "$url" "sqlite:$work/sqlite/bench.db" "${1:-20000}" "${2:-50000}" "${3:-4}"
