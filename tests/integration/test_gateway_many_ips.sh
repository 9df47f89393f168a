#!/usr/bin/env bash
# test_gateway_many_ips.sh - the limiter under 10,000 client addresses (loopback has a whole
# /8: each request comes from its own 127.x.y.z): every request is answered, the limiter's
# store stays under its key ceiling (memory:?max_keys=N; past it new buckets are refused and
# requests go through, counted), the gateway's memory grows by a few MB at most, and the
# buckets expire, so new addresses are limited again afterwards.
# (Expiry alone keeps about a second's worth of addresses; the ceiling is for floods beyond.)
source "$(dirname "$0")/lib.sh"

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
# a ceiling below what 10,000 addresses in a few seconds keep alive at once (buckets live about
# a second here), so that it is reached
export FINALVERSE_REDIS__URL="memory:?max_keys=300"
GW=http://127.0.0.1:$(port_of api-gateway)
start_fv gw serve service-registry api-gateway song-engine --port-base "$PORT_BASE"
GW_PID=$FV_LAST_PID
check "the gateway reaches song-engine" wait_eq 15 200 http_status "$GW/api/song-engine/health"

cat >"$FV_TMP/many.py" <<'PY'
import concurrent.futures, http.client, sys
port, first, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def one(i):
    k = first + i
    ip = f"127.{k // 62500 % 250 + 1}.{k // 250 % 250}.{k % 250 + 1}"
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(ip, 0))
    try:
        c.request("GET", "/api/song-engine/health")
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("RateLimit-Remaining")
    finally:
        c.close()
with concurrent.futures.ThreadPoolExecutor(32) as ex:
    res = list(ex.map(one, range(n)))
codes = {}
for s, _ in res:
    codes[s] = codes.get(s, 0) + 1
limited = sum(1 for _, rem in res if rem is not None)
print(" ".join(f"{c}:{k}" for c, k in sorted(codes.items())), f"limited:{limited}")
PY
before=$(proc_kib "$GW_PID" VmRSS)
out=$(/usr/bin/python3 "$FV_TMP/many.py" "$(port_of api-gateway)" 0 10000 2>"$FV_TMP/many.log")
after=$(proc_kib "$GW_PID" VmRSS)
check "10,000 addresses, each answered 200 ($out)" grep -q '^200:10000 ' <<<"$out"
check "those within the ceiling were limited (RateLimit headers), the rest let through" \
    test "${out##*limited:}" -ge 1000 -a "${out##*limited:}" -lt 10000
mem_check "the gateway's memory grew by less than 24 MB ($before -> $after KiB)" \
    $((after - before)) 24576
check "the full store was said once in the log" grep -q 'memory store full (300 keys' \
    "$FV_TMP/gw.log"
check "/metrics counts the requests let through" bash -c \
    "curl -s '$GW/metrics' | grep -Eq '^finalverse_gateway_rate_limit_errors_total\\{[^}]*\\} [1-9][0-9]*'"
# a bucket lives until it would be full again and a second more: about 1 s here
sleep 2.5
out=$(/usr/bin/python3 "$FV_TMP/many.py" "$(port_of api-gateway)" 20000 200 2>>"$FV_TMP/many.log")
check "after the buckets expired, new addresses are limited again ($out)" \
    test "${out##*limited:}" = 200
finish
