#!/usr/bin/env bash
# rpc.sh - calls between modules in one process (fv_rpc_call: encode, a later loop turn,
# decode, the handler, and the answer back the same way) against the same encode/decode/handle
# done as a plain function call, one at a time and with 64 in flight.
#   bench/rpc.sh [N=500000]
# Needs a built tree (cmake --build build); compiles bench/rpc_bench.c against build/*.a.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FV_BUILD:-$src/build}
n=${1:-500000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -std=gnu17 -I"$src/src" -I"$build/generated" "$src/bench/rpc_bench.c" \
    "$build/libfvlib.a" "$build/libfv_proto.a" "$build/libfv_llhttp.a" \
    $(pkg-config --libs libuv jansson libsodium libjwt sqlite3 libpq hiredis libcurl \
        libnghttp2 libprotobuf-c) -lwslay -ltomlplusplus -lstdc++ -lm -o "$work/rpc_bench"
"$work/rpc_bench" "$n" 1
"$work/rpc_bench" "$n" 64
