#!/usr/bin/env bash
# world.sh - the world's benchmarks, by named part (each prints its figures and a ratio
# against a reference written for it):
#   bench/world.sh [PART...]      parts: terrain, stream (default: all parts)
#   bench/world.sh stream [ENTITIES CLIENTS TICKS MOVING%]
#   SECONDS_PER_SIDE=2 bench/world.sh terrain
# Needs a built tree (cmake --build build); compiles bench/<part>_bench.c against build/*.a with
# the build's floating-point flags.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FV_BUILD:-$src/build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

compile() { # NAME: bench/NAME_bench.c -> $work/NAME_bench
    cc -O2 -std=gnu17 -ffp-contract=off -I"$src/src" -I"$build/generated" \
        "$src/bench/$1_bench.c" "$build/libfvlib.a" "$build/libfv_proto.a" \
        "$build/libfv_llhttp.a" \
        $(pkg-config --libs libuv jansson libsodium libjwt sqlite3 libpq hiredis libcurl \
            libnghttp2 libprotobuf-c) -lwslay -ltomlplusplus -lstdc++ -lm -o "$work/$1_bench"
}

part_terrain() {
    compile terrain
    "$work/terrain_bench" "${SECONDS_PER_SIDE:-2}"
}

part_stream() {
    compile stream
    "$work/stream_bench" "${STREAM_ARGS[@]}"
}

ALL_PARTS=(terrain stream)
STREAM_ARGS=()
parts=()
for a in "$@"; do
    case $a in
        [0-9]*) STREAM_ARGS+=("$a") ;;
        *) parts+=("$a") ;;
    esac
done
[ ${#parts[@]} -eq 0 ] && parts=("${ALL_PARTS[@]}")
for p in "${parts[@]}"; do
    if ! declare -F "part_$p" >/dev/null; then
        echo "world.sh: no part \"$p\" (parts: ${ALL_PARTS[*]})" >&2
        exit 2
    fi
    echo "== $p"
    "part_$p"
done
