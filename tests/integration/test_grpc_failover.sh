#!/usr/bin/env bash
# test_grpc_failover.sh - modules in separate processes call each other over gRPC through the
# registry, and survive losing an instance: the WebSocket and API gateways (with the registry)
# in one process, world-engine in two more (instances A and B). The API gateway's GETs too. Clients' moves reach both instances;
# after kill -9 of A every move is still answered, by B: the broken connection marks A's address
# failing, so calls pass it over; once that memory lapses (the registry still lists A until its
# TTL runs out), a call sent to A is refused, never sent, and made again on the next instance.
# Then a third instance C joins and B is stopped with SIGSTOP, silent without closing: least
# outstanding sends B no more than the call it holds, and the keepalive PING gives that up.
source "$(dirname "$0")/lib.sh"
WS=${FV_SRC:?}/tests/integration/ws

pick_port_base
BASE=$PORT_BASE
export FINALVERSE_REGISTRY__HEARTBEAT_INTERVAL_MS=200 FINALVERSE_REGISTRY__TTL_MS=60000
export FINALVERSE_GRPC__KEEPALIVE_MS=500
FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/gw" start_fv gw serve service-registry websocket-gateway \
    api-gateway --port-base "$BASE"
REG=http://127.0.0.1:$(port_of service-registry)
WSURL=ws://127.0.0.1:$(port_of websocket-gateway)/ws
GW=http://127.0.0.1:$(port_of api-gateway)
check "the gateway and the registry come up" wait_eq 15 200 http_status "$REG/v1/status/leader"
FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/a" FINALVERSE_REGISTRY__URL=$REG \
    start_fv world-a serve world-engine --port-base "$BASE"
A_PID=$FV_LAST_PID
A_METRICS=http://127.0.0.1:$(port_of world-engine)/metrics
pick_port_base
FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/b" FINALVERSE_REGISTRY__URL=$REG \
    start_fv world-b serve world-engine --port-base "$PORT_BASE"
B_PID=$FV_LAST_PID
B_METRICS=http://127.0.0.1:$(port_of world-engine)/metrics
PORT_BASE=$BASE
instances() {
    curl -s --max-time 5 "$REG/v1/health/service/world-engine?passing" | jq length
}
check "two world-engine instances are registered" wait_eq 20 2 instances

moves_of() { # METRICS_URL -> moves the instance validated
    # awk reads to the end: exiting early would fail curl's write (and the pipeline)
    curl -s --max-time 5 "$1" | awk '/^finalverse_world_moves_total/ && !v {v = $2} END {print v}'
}
out=$(/usr/bin/python3 "$WS/moves.py" "$WSURL" 12 2>"$FV_TMP/moves1.log") || true
check "12 moves answered with both instances up ($out)" \
    test "$(jq -r .moved <<<"$out" 2>/dev/null)" = 12
a=$(moves_of "$A_METRICS"); b=$(moves_of "$B_METRICS")
check "both instances took moves (A $a, B $b)" test "${a:-0}" -gt 0 -a "${b:-0}" -gt 0

kill -KILL "$A_PID"
wait "$A_PID" 2>/dev/null || true
out=$(/usr/bin/python3 "$WS/moves.py" "$WSURL" 20 2>"$FV_TMP/moves2.log") || true
check "with A killed, 20 of 20 moves are answered ($out)" \
    test "$(jq -r .moved <<<"$out" 2>/dev/null)" = 20
codes=$(for i in $(seq 20); do http_status "$GW/api/world-engine/regions"; echo; done | sort | uniq -c |
    awk '{printf "%s:%s ", $2, $1}')
check "with A killed, 20 GETs through the API gateway all answer 200 ($codes)" \
    test "$codes" = "200:20 "
b2=$(moves_of "$B_METRICS")
check "... by B (its moves went from $b to $b2)" test "$((b2 - b))" -ge 20
# the registry still names A (its TTL has not run out) and the gateway's memory of A's failure
# (3 s) has: a call sent A's way is refused and made again on B
sleep 3.5
check "A is still registered as passing" test "$(instances)" = 2
out=$(/usr/bin/python3 "$WS/moves.py" "$WSURL" 10 2>"$FV_TMP/moves3.log") || true
check "later, 10 of 10 moves are answered: refused by A's address, retried on B ($out)" \
    test "$(jq -r .moved <<<"$out" 2>/dev/null)" = 10
codes=$(for i in $(seq 20); do http_status "$GW/api/world-engine/regions"; echo; done | sort | uniq -c |
    awk '{printf "%s:%s ", $2, $1}')
check "... and so do 20 GETs through the API gateway ($codes)" test "$codes" = "200:20 "
check "the gateway met the refusal" grep -q "127.0.0.1:$(PORT_BASE=$BASE port_of world-engine): .*refused" \
    "$FV_TMP/gw.log"

pick_port_base
FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/c" FINALVERSE_REGISTRY__URL=$REG \
    start_fv world-c serve world-engine --port-base "$PORT_BASE"
C_METRICS=http://127.0.0.1:$(port_of world-engine)/metrics
PORT_BASE=$BASE
check "a third instance, C, is registered (A still listed)" wait_eq 20 3 instances
kill -STOP "$B_PID"
t0=$(date +%s%N)
out=$(/usr/bin/python3 "$WS/moves.py" "$WSURL" 20 2>"$FV_TMP/moves4.log") || true
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT "$B_PID"
check "with B stopped, at least 19 of 20 moves are answered ($out)" \
    test "$(jq -r .moved <<<"$out" 2>/dev/null)" -ge 19
check "... in ${ms} ms: none waited out its deadline behind the silent B" test "$ms" -lt 4000
check "... a move that met B was given up by the keepalive PING, not its 2 s deadline" \
    jq -e '[.errors[].message | select(test("PING") | not)] == []' <<<"$out"
c=$(moves_of "$C_METRICS")
check "... by C ($c moves)" test "${c:-0}" -ge 19
finish
