#!/usr/bin/env bash
# test_gateway_stream.sh - bodies stream through the api-gateway both ways with back-pressure:
# a 100 MB upload (sized and chunked) reaches an upstream that counts it while the gateway's
# peak memory grows by a few MB at most, and 60 answers of 16 MB at once pass whole without
# the gateway holding them (before, they pushed it to ~956 MB).
source "$(dirname "$0")/lib.sh"

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_STORAGE__MAX_OBJECT_BYTES=200000000
GW=http://127.0.0.1:$(port_of api-gateway)
REG=http://127.0.0.1:$(port_of service-registry)
UP=$((PORT_BASE + 15))

start_fv gw serve service-registry api-gateway --port-base "$PORT_BASE"
GW_PID=$FV_LAST_PID
wait_eq 10 200 http_status "$GW/health" || { fail "gateway did not come up"; finish; }
/usr/bin/python3 "$(dirname "$0")/../support/gw_upstream.py" "$UP" up 2>"$FV_TMP/upstream.log" &
FV_PIDS+=($!)
wait_for 10 curl -sf --max-time 1 "http://127.0.0.1:$UP/echo" || { fail "upstream"; finish; }
curl -sf --max-time 5 -X PUT "$REG/v1/agent/service/register" \
    -H "X-Consul-Token: $(cat "$FV_TMP/data/registry/token")" \
    -d "{\"Name\":\"asset-service\",\"ID\":\"assets-1\",\"Address\":\"127.0.0.1\",\"Port\":$UP}"
wait_eq 10 200 http_status "$GW/api/asset-service/echo" || { fail "no route to upstream"; finish; }

kib() { proc_kib "$GW_PID" "$1"; }
# one small request each way first, so the buffers every request uses exist already
curl -s -o /dev/null --max-time 10 -X POST --data-binary 'x' "$GW/api/asset-service/count"
curl -s -o /dev/null --max-time 10 "$GW/api/asset-service/big/1000000"
base=$(kib VmRSS)
echo "# gateway RSS before: $base KiB (peak so far $(kib VmHWM) KiB)"

truncate -s 100000000 "$FV_TMP/upload.bin"
n=$(curl -s --max-time 120 -T "$FV_TMP/upload.bin" -X POST "$GW/api/asset-service/count" | jq -r .bytes)
check "a 100 MB upload with Content-Length arrives whole ($n bytes)" test "$n" = 100000000
n=$(head -c 100000000 /dev/zero | curl -s --max-time 120 -T - -X POST "$GW/api/asset-service/count" | jq -r .bytes)
check "a 100 MB chunked upload arrives whole ($n bytes)" test "$n" = 100000000
peak=$(kib VmHWM)
echo "# gateway peak RSS after the uploads: $peak KiB"
mem_check "the uploads grew the gateway's peak memory by under 16 MB" $((peak - base)) 16384

for i in $(seq 60); do
    curl -s --max-time 240 -o /dev/null -w '%{http_code} %{size_download}\n' \
        "$GW/api/asset-service/big/16777216" >"$FV_TMP/dl.$i" &
done
wait_for 240 bash -c "[ \$(cat '$FV_TMP'/dl.* 2>/dev/null | grep -c '^200 16777216$') = 60 ]"
check "60 answers of 16 MB at once all arrive whole" \
    test "$(cat "$FV_TMP"/dl.* | grep -c '^200 16777216$')" = 60
peak=$(kib VmHWM)
echo "# gateway peak RSS after the downloads: $peak KiB"
mem_check "they grew the gateway's peak memory by under 32 MB" $((peak - base)) 32768
check "the gateway still answers" test "$(http_status "$GW/api/asset-service/echo")" = 200
check "nothing in flight is left" bash -c "curl -s '$GW/metrics' | grep -q '^finalverse_gateway_upstream_in_flight{module=\"api-gateway\"} 0$'"
finish
