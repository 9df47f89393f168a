#!/usr/bin/env bash
# test_world.sh - the World Engine end to end under `finalverse up`: the nine regions directly
# and through the API gateway, cells and their 400/404s, moves over WebSocket in both dialects
# (a jump corrected, not refused; another client sees the move), the player's position and the
# entities near it; then persistence: regions kept across SIGTERM exactly (the simulation is
# switched off with services.world-engine.simulate = false to compare them), a player who
# walked away from the spawn comes back where they stood, and after kill -9 the last save is
# back.
source "$(dirname "$0")/lib.sh"
WS=${FV_SRC:?}/tests/integration/ws

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
W=http://127.0.0.1:$(port_of world-engine)
GW=http://127.0.0.1:$(port_of api-gateway)
WSP=$(port_of websocket-gateway)

# up NAME [simulate [save_interval_ms]]: starts the stack, waits for the world engine and the
# gateways
up() {
    FINALVERSE_SERVICES__WORLD_ENGINE__SIMULATE=${2:-true} \
        FINALVERSE_SERVICES__WORLD_ENGINE__SAVE_INTERVAL_MS=${3:-500} \
        start_fv "$1" up --port-base "$PORT_BASE"
    UP_PID=$FV_LAST_PID
    wait_eq 20 200 http_status "$W/health" && wait_eq 20 200 http_status "$GW/health" &&
        wait_eq 20 200 http_status "http://127.0.0.1:$WSP/health"
}
down() { # SIGNAL: stops the stack, its exit status in DOWN_RC
    kill -"$1" "$UP_PID"
    DOWN_RC=0
    wait "$UP_PID" || DOWN_RC=$?
}
jqt() { # FILTER [jq args] <<<JSON: jq -e, quiet (check's own output must not be redirected)
    jq -e "$@" >/dev/null
}

# the first run saves only at shutdown (its interval is longer than the run)
check "the stack starts" up first true 3600000
ids='["aethelgard","crystal-peaks","ember-reach","mistveil-marsh","silent-expanse","sunken-choir","technos-prime","terra-nova","whispering-wilds"]'
for base in "$W" "$GW/api/world-engine"; do
    body=$(curl -s --max-time 5 "$base/regions")
    check "$base/regions lists the nine regions" \
        jqt --argjson ids "$ids" '[.regions[].id] | sort == $ids' <<<"$body"
    check "... each with name, harmony, corruption, weather, players" \
        jqt 'all(.regions[]; (.name|length>0) and (.harmony>=0 and .harmony<=100) and
                (.corruption>=0 and .corruption<=100) and
                (.weather|IN("clear","rain","storm","fog","aurora")) and .players>=0)' \
        <<<"$body"
done
check "Terra Nova by id" \
    test "$(curl -s "$GW/api/world-engine/regions/terra-nova" | jq -r '.name + " " + (.cells.total|tostring)')" = "Terra Nova 256"
check "a region's 256 cells" \
    test "$(curl -s "$W/regions/whispering-wilds/cells" | jq '.cells | length')" = 256
check "one cell has x, y, biome, harmony, corruption, flora, fauna, warded" \
    jqt '.x == 3 and .y == 15 and (.biome|type) == "string" and (.harmony|type) == "number" and
           (.corruption|type) == "number" and (.flora|type) == "number" and
           (.fauna|type) == "number" and (.warded|type) == "boolean"' \
    <<<"$(curl -s "$GW/api/world-engine/regions/aethelgard/cells/3/15")"
check "an unknown region is a JSON 404" \
    test "$(curl -s -w ' %{http_code}' "$W/regions/atlantis/cells/1/1" | sed 's/.*"code":"\([a-z_]*\)".* /\1 /')" = "not_found 404"
for bad in 16/0 0/16 -1/0 a/1 1.5/2 1/%20 999999999999/1; do
    check "cell $bad is a JSON 400" \
        test "$(curl -s -w ' %{http_code}' "$W/regions/terra-nova/cells/$bad" | sed 's/.*"code":"\([a-z_]*\)".* /\1 /')" = "invalid_argument 400"
done
check "nobody near a corner of an empty region" \
    jqt '.entities == [] and .truncated == false' <<<"$(curl -s "$W/regions/silent-expanse/entities?x=0&z=0")"
check "a nearby query with a radius too big is a 400" \
    test "$(http_status "$W/regions/terra-nova/entities?x=1&z=1&radius=100000")" = 400

# moves over WebSocket, both dialects
if out=$(/usr/bin/python3 "$WS/world_move.py" "ws://127.0.0.1:$WSP/ws" "http://127.0.0.1:$(port_of procedural-gen)" 2>"$FV_TMP/move.log"); then
    ok "moves: a step accepted, a jump corrected, NaN and unknown regions refused, seen by another client, legacy position_updated"
    player=$(jq -r .player <<<"$out")
    pos=$(curl -s -w ' %{http_code}' "$GW/api/world-engine/players/$player/position")
    if jqt --argjson x "$(jq .corrected_x <<<"$out")" \
        '.position.region == "terra-nova" and ((.position.at.x - $x) | fabs) < 1e-6' \
        <<<"${pos% *}"; then
        ok "the player's position is where the last move put it"
    else
        fail "the player's position is where the last move put it: got $pos after $out"
    fi
    check "... and the player is among the entities near it" \
        jqt --arg p "$player" 'any(.entities[]; .player_id == $p and .kind == "player")' \
        <<<"$(curl -s "$W/regions/terra-nova/entities?x=520&z=512&radius=100")"
    check "the region counts its players" \
        jqt '.players >= 2' <<<"$(curl -s "$W/regions/terra-nova")"
else
    fail "moves over WebSocket: $(tail -5 "$FV_TMP/move.log")"
fi
# spatial streaming: cell_enter with terrain and state, entities_delta, resync
protoc-c --proto_path="$FV_SRC/proto" --include_imports \
    --descriptor_set_out="$FV_TMP/world3d.desc" world3d.proto 2>"$FV_TMP/protoc.log" ||
    fail "protoc-c cannot read proto/world3d.proto: $(cat "$FV_TMP/protoc.log")"
if out=$(cd "$WS" && /usr/bin/python3 world_stream.py "ws://127.0.0.1:$WSP/ws" \
        "http://127.0.0.1:$(port_of procedural-gen)" "$FV_TMP/world3d.desc" \
        2>"$FV_TMP/stream.log"); then
    ok "streaming: the cells around enter with the procgen terrain, a step west enters a column, the other player sees it, resync, and the same in binary frames ($out)"
else
    fail "streaming: $(tail -5 "$FV_TMP/stream.log")"
fi
check "an unknown player's position is a 404" \
    test "$(http_status "$W/players/nobody/position")" = 404

# persistence: saved at SIGTERM, loaded at start
check "a player walks 30 m east of the spawn over gRPC" \
    test "$(world_walk walker-1 514 518 522 526 530 534 538 542 2>"$FV_TMP/walk.log")" = 542.000
stepped() { [ "$(curl -s "$W/regions" | jq '.sim_step >= 3 and .saved_step == 0')" = true ]; }
check "the simulation steps, nothing saved yet" wait_for 20 stepped
before=$(curl -s "$W/regions" | jq .sim_step)
down TERM
check "SIGTERM exits 0" test "$DOWN_RC" = 0
check "restarted without the simulation" up second false
snap1=$(curl -s "$W/regions/terra-nova/cells" | jq -c .cells)
step1=$(curl -s "$W/regions" | jq .sim_step)
check "the state at shutdown was saved and loaded (step $step1 >= $before)" \
    test "$step1" -ge "$before"
check "the walker comes back where it stood: a step from there is taken as asked" \
    test "$(world_walk walker-1 543 2>>"$FV_TMP/walk.log")" = 543.000
check "... while a newcomer asking for the same place is cut short near the spawn" \
    awk -v x="$(world_walk walker-new 543 2>>"$FV_TMP/walk.log")" \
        'BEGIN { exit !(x != "" && x < 520) }'
fresh=$(jq -c '.[0] | [.harmony, .flora, .fauna]' <<<"$snap1")
down TERM
check "SIGTERM again exits 0" test "$DOWN_RC" = 0
check "restarted once more" up third false
check "the regions are exactly as they were" \
    test "$(curl -s "$W/regions/terra-nova/cells" | jq -c .cells)" = "$snap1"
check "... at the same step" test "$(curl -s "$W/regions" | jq .sim_step)" = "$step1"
down TERM
check "stopped" test "$DOWN_RC" = 0

check "restarted with the simulation" up fourth true
past() { [ "$(curl -s "$W/regions" | jq --argjson s "$step1" '.saved_step >= $s + 3')" = true ]; }
check "... which runs on and saves every interval" wait_for 20 past
saved=$(curl -s "$W/regions" | jq .saved_step)
kill -KILL "$UP_PID"
wait "$UP_PID" 2>/dev/null || true
check "restarted after kill -9" up fifth false
after=$(curl -s "$W/regions" | jq .sim_step)
check "the last save is back (step $after >= $saved)" test "$after" -ge "$saved"
check "... and its cells are not the ones of the first stop" \
    test "$(curl -s "$W/regions/terra-nova/cells" | jq -c '.cells[0] | [.harmony, .flora, .fauna]')" != "$fresh"
down TERM
check "stopped at last" test "$DOWN_RC" = 0
finish
