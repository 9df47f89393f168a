#!/usr/bin/env bash
# blob.sh - blob store benchmark: fv_blob beside a reference on the same target, in one run.
#   bench/blob.sh [COUNT] [SIZE]     (defaults 500 objects of 65536 bytes)
# s3: a private s3rver (tests/support/server_s3.sh), fv_blob with 8 requests in flight vs
# blocking libcurl easy calls; fs: fv_blob vs blocking write+fsync+rename and read.
# Needs a built tree in build/ (make build) and scripts/deps.sh test.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-500}
size=${2:-65536}
build=${BUILD:-build}
work=$(mktemp -d)
trap 'bash tests/support/server_s3.sh stop "$work" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cc -std=gnu17 -O2 -Isrc bench/blob_bench.c "$build/libfvlib.a" "$build/libfv_llhttp.a" \
    $(pkg-config --cflags --libs libuv jansson libsodium libjwt sqlite3 libpq hiredis libcurl \
      libnghttp2 libprotobuf-c) -lwslay -lstdc++ -lm -o "$work/blob_bench"

bash tests/support/server_s3.sh start "$work" >/dev/null
"$work/blob_bench" s3 "$(cat "$work/s3.url")" "$count" "$size"
mkdir -p "$work/fs"
"$work/blob_bench" fs "$work/fs" "$count" "$size"
