#!/usr/bin/env bash
# deps.sh - install the Debian packages Finalverse needs, only those that are missing.
#   scripts/deps.sh build   what the build needs (the default)
#   scripts/deps.sh test    build + what the test suite and benchmarks run against, and the npm
#                           packages of tests/support (s3rver, ws, playwright-core, grpc-js)
#                           whenever its package-lock.json differs from what was installed
# Idempotent: a second run installs nothing and asks no mirror.
set -euo pipefail

want=${1:-build}

build_pkgs=(
    build-essential cmake pkg-config clang-14 lld-14 libclang-rt-14-dev
    libuv1-dev node-llhttp libwslay-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler
    grpc-proto zlib1g-dev
    libjansson-dev libtomlplusplus-dev libsqlite3-dev libpq-dev libhiredis-dev
    libcurl4-openssl-dev libsodium-dev libjwt-dev libedit-dev libncurses-dev wabt
)
test_pkgs=(
    libcmocka-dev curl jq wrk nginx-light prometheus postgresql redis-server nodejs npm
    python3 python3-websockets chromium python3-grpcio python3-protobuf python3-h2 nghttp2-client
    libgrpc++-dev
)

pkgs=("${build_pkgs[@]}")
if [ "$want" = test ]; then
    pkgs+=("${test_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
    # nodejs/npm may come from outside Debian on some machines; a working binary is enough.
    case "$p" in
        nodejs) command -v node >/dev/null 2>&1 && continue ;;
        npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

# npm packages the tests run against, from tests/support/package-lock.json: installed when
# node_modules is missing or was installed from another lock file (a stamp records which).
npm_step() {
    if [ "$want" != test ]; then
        return 0
    fi
    local support stamp
    support="$(cd "$(dirname "$0")/.." && pwd)/tests/support"
    [ -f "$support/package.json" ] || return 0
    stamp="$support/node_modules/.finalverse-lock"
    if [ -d "$support/node_modules" ] && [ -f "$stamp" ] &&
        cmp -s "$stamp" "$support/package-lock.json"; then
        return 0
    fi
    echo "deps: npm packages for tests/support"
    npm ci --no-audit --no-fund --prefix "$support"
    cp "$support/package-lock.json" "$stamp"
}

if [ ${#missing[@]} -eq 0 ]; then
    npm_step
    exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# A mirror that hiccups once should not fail a build: three tries, a pause between.
retry() {
    local n
    for n in 1 2 3; do
        "$@" && return 0
        echo "deps: '$*' failed (try $n of 3)" >&2
        sleep $((n * 5))
    done
    return 1
}
retry $SUDO apt-get update -qq
# policy-rc.d keeps the packaged nginx/redis/postgresql from starting system-wide daemons:
# tests start their own on free loopback ports.
if [ -z "$SUDO" ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
retry $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
npm_step
