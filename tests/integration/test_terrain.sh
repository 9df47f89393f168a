#!/usr/bin/env bash
# test_terrain.sh - procedural-gen's terrain over HTTP from `finalverse up`: JSON and the binary
# encoding, directly and through the API gateway (the same bytes), edges shared between
# neighbouring cells and across a region border, strong ETags with If-None-Match -> 304, the
# cell summary and points of interest, 400/404 for bad cells and regions, and GetTerrain over
# gRPC.
source "$(dirname "$0")/lib.sh"

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
start_fv up up --port-base "$PORT_BASE"
GW=http://127.0.0.1:$(port_of api-gateway)/api/procedural-gen
PG=http://127.0.0.1:$(port_of procedural-gen)

through_gateway() {
    [ "$(curl -s --max-time 5 "$GW/health" | jq -r .service)" = procedural-gen ]
}
check "procedural-gen answers through the gateway within 20 s" wait_for 20 through_gateway

jqt() { jq -e "$@" >/dev/null; }

T=regions/terra-nova/cells/3/5/terrain
curl -s --max-time 10 -D "$FV_TMP/json.h" -o "$FV_TMP/gw.json" "$GW/$T"
curl -s --max-time 10 -o "$FV_TMP/pg.json" "$PG/$T"
check "JSON terrain: region, cell, biome, 65*65 heights within min..max" \
    jqt '.region == "terra-nova" and .cell == {"x":3,"y":5} and (.biome|type) == "string"
           and .side == 65 and (.heights|length) == 4225
           and ([.heights[] | select(. < $min or . > $max)] | length) == 0' \
       --argjson min "$(jq .min "$FV_TMP/gw.json")" --argjson max "$(jq .max "$FV_TMP/gw.json")" \
       "$FV_TMP/gw.json"
check "the same JSON directly and through the gateway" cmp -s "$FV_TMP/gw.json" "$FV_TMP/pg.json"
check "JSON is application/json" grep -qi '^content-type: application/json' "$FV_TMP/json.h"
ETAG_JSON=$(tr -d '\r' <"$FV_TMP/json.h" | awk -F': ' 'tolower($1)=="etag" {print $2}')
check "a strong ETag" bash -c "[[ '$ETAG_JSON' == '\"'*'\"' ]]"

curl -s --max-time 10 -D "$FV_TMP/bin.h" -o "$FV_TMP/gw.bin" "$GW/$T?format=bin"
curl -s --max-time 10 -o "$FV_TMP/pg.bin" "$PG/$T?format=bin"
check "binary terrain: 8470 bytes starting FVTP, version 1, side 65" \
    test "$(stat -c %s "$FV_TMP/gw.bin") $(head -c 6 "$FV_TMP/gw.bin" | od -An -c | tr -s ' ')" \
         = "8470  F V T P 001 A"
check "the same bytes directly and through the gateway" cmp -s "$FV_TMP/gw.bin" "$FV_TMP/pg.bin"
check "binary is application/octet-stream" \
    grep -qi '^content-type: application/octet-stream' "$FV_TMP/bin.h"
ETAG_BIN=$(tr -d '\r' <"$FV_TMP/bin.h" | awk -F': ' 'tolower($1)=="etag" {print $2}')
check "JSON and binary have different ETags" test "$ETAG_JSON" != "$ETAG_BIN"
# the binary's header says where its min and max are (bytes 12..19, little-endian floats)
check "binary min/max equal the JSON's" /usr/bin/python3 - "$FV_TMP/gw.bin" "$FV_TMP/gw.json" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
j = json.load(open(sys.argv[2]))
lo, hi = struct.unpack_from("<ff", b, 12)
q = struct.unpack_from("<4225H", b, 20)
step = (hi - lo) / 65535
ok = struct.unpack("<f", struct.pack("<f", j["min"]))[0] == lo and \
     all(abs(lo + v * step - h) <= step / 2 + 1e-4 for v, h in zip(q, j["heights"]))
sys.exit(0 if ok else 1)
PY

check "If-None-Match with the ETag: 304 (JSON)" \
    test "$(http_status "$GW/$T" -H "If-None-Match: $ETAG_JSON")" = 304
check "If-None-Match with the ETag: 304 (binary, directly)" \
    test "$(http_status "$PG/$T?format=bin" -H "If-None-Match: \"x\", $ETAG_BIN")" = 304
check "If-None-Match weak form and *: 304" \
    test "$(http_status "$PG/$T" -H "If-None-Match: W/$ETAG_JSON")$(http_status "$PG/$T" -H 'If-None-Match: *')" = 304304
check "If-None-Match with another tag: 200" \
    test "$(http_status "$PG/$T" -H "If-None-Match: $ETAG_BIN")" = 200

# edges: cell (3,5)'s east column is cell (4,5)'s west column; aethelgard's east edge is
# crystal-peaks' west edge (the next region east)
edges_equal() { # URL_A URL_B  (a's column 64 against b's column 0)
    local a b
    a=$(curl -s --max-time 10 "$1" | jq -c '[.heights as $h | range(65) | $h[. * 65 + 64]]')
    b=$(curl -s --max-time 10 "$2" | jq -c '[.heights as $h | range(65) | $h[. * 65]]')
    [ -n "$a" ] && [ "$a" = "$b" ]
}
check "neighbouring cells share their edge" \
    edges_equal "$PG/$T" "$PG/regions/terra-nova/cells/4/5/terrain"
check "cells share their edge across a region border" \
    edges_equal "$PG/regions/aethelgard/cells/15/7/terrain" "$PG/regions/crystal-peaks/cells/0/7/terrain"

check "cell summary: biome as in the terrain" \
    test "$(curl -s --max-time 5 "$GW/regions/terra-nova/cells/3/5" | jq -r .biome)" = \
         "$(jq -r .biome "$FV_TMP/gw.json")"
check "points of interest: 20..64 of them, each with a kind, in the region" \
    bash -c "curl -s --max-time 5 '$GW/regions/terra-nova/pois' | jq -e '(.pois|length) >= 20 and
             (.pois|length) <= 64 and all(.pois[]; (.kind|length) > 0 and .x >= 0 and .x < 1024)' >/dev/null"

error_is() { # STATUS CODE URL
    local body status
    status=$(curl -s --max-time 5 -o "$FV_TMP/err.json" -w '%{http_code}' "$3")
    [ "$status" = "$1" ] && [ "$(jq -r .error.code "$FV_TMP/err.json")" = "$2" ]
}
check "unknown region: 404 not_found" error_is 404 not_found "$GW/regions/atlantis/cells/0/0/terrain"
check "unknown region's pois: 404" error_is 404 not_found "$PG/regions/atlantis/pois"
check "x = 16: 400" error_is 400 invalid_argument "$GW/regions/terra-nova/cells/16/0/terrain"
check "y = -1: 400" error_is 400 invalid_argument "$PG/regions/terra-nova/cells/0/-1/terrain"
check "x not an integer: 400" error_is 400 invalid_argument "$PG/regions/terra-nova/cells/1.5/0/terrain"
check "y not a number: 400" error_is 400 invalid_argument "$PG/regions/terra-nova/cells/0/abc"
check "x with a leading sign or spaces: 400" error_is 400 invalid_argument "$PG/regions/terra-nova/cells/+1/0/terrain"
check "an unknown format: 400" error_is 400 invalid_argument "$PG/$T?format=xml"

# the call twin over gRPC on the module's port (Debian's python3-grpcio, no generated code: the
# few fields are encoded and read by hand)
cat >"$FV_TMP/grpc_terrain.py" <<'PY'
import sys, grpc
port, json_path, bin_path = sys.argv[1], sys.argv[2], sys.argv[3]
def req(region, x, y, quantized):
    r = region.encode()
    return bytes([0x0a, len(r)]) + r + bytes([0x10, x, 0x18, y]) + (b"\x20\x01" if quantized else b"")
def fields(b):  # field number -> value of the message's top-level fields
    out, i = {}, 0
    while i < len(b):
        key = b[i]; i += 1
        num, wt = key >> 3, key & 7
        if wt == 0:
            v = 0; s = 0
            while True:
                c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
                if c < 0x80: break
        elif wt == 5:
            v = b[i:i + 4]; i += 4
        elif wt == 2:
            n = 0; s = 0
            while True:
                c = b[i]; i += 1; n |= (c & 0x7f) << s; s += 7
                if c < 0x80: break
            v = b[i:i + n]; i += n
        else:
            raise ValueError("wire type %d" % wt)
        out[num] = v
    return out
import json, struct
ch = grpc.insecure_channel("127.0.0.1:" + port)
call = ch.unary_unary("/finalverse.procgen.v1.ProceduralGenService/GetTerrain",
                      request_serializer=lambda b: b, response_deserializer=lambda b: b)
j = json.load(open(json_path))
f = fields(call(req("terra-nova", 3, 5, False), timeout=5))
heights = struct.unpack("<4225f", f[8])
assert f[4].decode() == j["biome"], "biome"
assert all(struct.unpack("<f", struct.pack("<f", a))[0] == b for a, b in zip(j["heights"], heights)), "heights"
q = fields(call(req("terra-nova", 3, 5, True), timeout=5))
assert q[9] == open(bin_path, "rb").read() and 8 not in q, "encoded"
for bad, code in ((req("atlantis", 0, 0, False), grpc.StatusCode.NOT_FOUND),
                  (req("terra-nova", 16, 0, False), grpc.StatusCode.INVALID_ARGUMENT)):
    try:
        call(bad, timeout=5); raise AssertionError("no error")
    except grpc.RpcError as e:
        assert e.code() == code, e.code()
PY
PY=""
for p in $(type -ap python3) /usr/bin/python3; do
    if "$p" -c 'import grpc' 2>/dev/null; then PY=$p; break; fi
done
if [ -n "$PY" ]; then
    check "GetTerrain over gRPC: the same heights, encoding and errors" \
        "$PY" "$FV_TMP/grpc_terrain.py" "$(port_of procedural-gen)" "$FV_TMP/gw.json" "$FV_TMP/gw.bin"
else
    fail "no python3 with grpcio; run scripts/deps.sh test"
fi

check "the cache counts hits" \
    bash -c "curl -s --max-time 5 '$PG/metrics' | awk '/^finalverse_procgen_cache_hits_total/ {exit !(\$2 > 0)}'"
finish
