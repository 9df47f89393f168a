#!/usr/bin/env bash
# test_real_stores.sh - `finalverse up` on the real data layer: PostgreSQL, Redis and an
# S3-compatible server (each started here, privately, on loopback), chosen by URL through the
# environment alone. Every store shows in /health; a store that goes away turns /health
# unhealthy (503) and the process stays up; when it comes back the store reconnects by itself.
# The world engine's save writes a walking player's place to PostgreSQL, and after a restart the
# player comes back there.
source "$(dirname "$0")/lib.sh"
SUPPORT=${FV_SRC:?}/tests/support
SERVERS=$FV_TMP/servers
mkdir -p "$SERVERS"
stop_servers() {
    for s in postgres redis s3; do bash "$SUPPORT/server_$s.sh" stop "$SERVERS" >/dev/null 2>&1 || true; done
}
trap 'stop_servers; cleanup' EXIT

for s in postgres redis s3; do
    bash "$SUPPORT/server_$s.sh" start "$SERVERS" >"$FV_TMP/server_$s.log" 2>&1 ||
        { echo "cannot start $s:"; cat "$FV_TMP/server_$s.log"; exit 1; }
done

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
export FINALVERSE_DATABASE__URL=$(cat "$SERVERS/postgres.url" | sed 's/finalverse_test$/finalverse_test_app/')
export FINALVERSE_REDIS__URL=$(cat "$SERVERS/redis.url")
export FINALVERSE_STORAGE__URL=$(cat "$SERVERS/s3.url")
export FINALVERSE_STORAGE__ACCESS_KEY=S3RVER
export FINALVERSE_STORAGE__SECRET_KEY=S3RVER

# The migrate command applies the schema to PostgreSQL.
out=$("$FV_BIN" migrate 2>&1) && rc=0 || rc=$?
check "finalverse migrate on PostgreSQL exits 0 (rc=$rc)" test "$rc" = 0
check "... and names the backend ($out)" grep -q "postgres" <<<"$out"

start_fv up up --port-base "$PORT_BASE"
ASSET=http://127.0.0.1:$(port_of asset-service)
COMMUNITY=http://127.0.0.1:$(port_of community)
check_msg() { curl -s --max-time 5 "$1/health" | jq -r --arg n "$2" '.checks[] | select(.name==$n) | .status + " " + .message'; }

check "asset-service sees PostgreSQL" wait_eq 20 "pass postgres: ok" check_msg "$ASSET" database
check "asset-service sees S3" wait_eq 10 "pass s3: ok" check_msg "$ASSET" blob
check "community sees Redis" wait_eq 10 "pass redis: ok" check_msg "$COMMUNITY" kv
check "the stack is healthy" wait_eq 10 200 http_status "$COMMUNITY/health"

# A player's place goes to PostgreSQL with the world's last save and comes back from it.
check "a player walks east of the spawn" \
    test "$(world_walk pg-walker 514 518 522 526 2>"$FV_TMP/walk.log")" = 526.000
kill -TERM "$FV_LAST_PID"
wait "$FV_LAST_PID" && rc=0 || rc=$?
check "SIGTERM stops the stack (rc=$rc)" test "$rc" = 0
check "its place is a row of world_players" test \
    "$(psql "$(cat "$SERVERS/postgres.url" | sed 's/finalverse_test$/finalverse_test_app/')" -tAc \
        "SELECT region || ' ' || x FROM world_players WHERE id = 'pg-walker'")" = "terra-nova 526"
start_fv up2 up --port-base "$PORT_BASE"
check "the stack is back" wait_eq 20 200 http_status "$COMMUNITY/health"
check "the player comes back where it stood" \
    test "$(world_walk pg-walker 527 2>>"$FV_TMP/walk.log")" = 527.000

# Redis goes away: community turns unhealthy (503) but keeps answering.
bash "$SUPPORT/server_redis.sh" stop "$SERVERS" >/dev/null 2>&1
check "without Redis community's health is 503" wait_eq 15 503 http_status "$COMMUNITY/health"
check "... with the kv check failing" \
    bash -c "curl -s '$COMMUNITY/health' | jq -e '.status == \"unhealthy\" and (.checks[] | select(.name==\"kv\") | .status == \"fail\")' >/dev/null"
check "asset-service, which does not use Redis, stays healthy" test "$(http_status "$ASSET/health")" = 200

# Redis comes back on the same port: the store reconnects by itself.
port=$(sed -E 's#.*:([0-9]+)/.*#\1#' <<<"$FINALVERSE_REDIS__URL")
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "$SERVERS/redis.pid" --logfile "$SERVERS/redis2.log" >/dev/null
check "after Redis is back community is healthy again" wait_eq 20 200 http_status "$COMMUNITY/health"
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true

finish
