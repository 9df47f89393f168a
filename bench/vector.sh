#!/usr/bin/env bash
# vector.sh - benchmark of the embedded vector store's exact search against memcpy bandwidth.
# Builds bench/vector_bench.c against build/libfvlib.a as built (so it measures the shipped
# code, with the library's own flags), then runs it: N x DIM vectors, Q queries, k = 10.
# Usage: bench/vector.sh [N [DIM [Q]]]     (defaults 100000 384 200)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FV_BUILD:-$root/build}
lib=$build/libfvlib.a
if [ ! -f "$lib" ]; then
    echo "vector.sh: $lib not found: build the project first (cmake --build build)" >&2
    exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The same dependency list as CMakeLists.txt: the archive's objects pull in what they use.
cc -std=gnu17 -O2 -I"$root/src" -o "$out/vector_bench" "$root/bench/vector_bench.c" "$lib" \
    $(pkg-config --cflags --libs libuv jansson libsodium sqlite3 libpq libcurl) -lm -lpthread
"$out/vector_bench" "${1:-100000}" "${2:-384}" "${3:-200}"
