#!/usr/bin/env bash
# test_gateway_smuggling.sh - request smuggling and header injection sent raw to the api-gateway:
# both Content-Length and Transfer-Encoding, differing Content-Lengths, unknown transfer
# codings, obs-fold, whitespace before the colon, CR/LF/NUL in values, absolute-form targets
# for other hosts. Each gets the status nginx gives (400, or 501 for a transfer coding), and
# the upstream behind, which flags any second request hidden in a body and any ambiguous
# framing it is sent, sees none of them.
source "$(dirname "$0")/lib.sh"

pick_port_base
export FINALVERSE_GENERAL__DATA_DIR="$FV_TMP/data"
GW_PORT=$(port_of api-gateway)
GW=http://127.0.0.1:$GW_PORT
REG=http://127.0.0.1:$(port_of service-registry)
UP=$((PORT_BASE + 15))

start_fv gw serve service-registry api-gateway --port-base "$PORT_BASE"
wait_eq 10 200 http_status "$GW/health" || { fail "gateway did not come up"; finish; }
/usr/bin/python3 "$(dirname "$0")/../support/gw_upstream.py" "$UP" up 2>"$FV_TMP/upstream.log" &
FV_PIDS+=($!)
wait_for 10 curl -sf --max-time 1 "http://127.0.0.1:$UP/echo" || { fail "upstream"; finish; }
curl -sf --max-time 5 -X PUT "$REG/v1/agent/service/register" \
    -H "X-Consul-Token: $(cat "$FV_TMP/data/registry/token")" \
    -d "{\"Name\":\"song-engine\",\"ID\":\"song-1\",\"Address\":\"127.0.0.1\",\"Port\":$UP}"
wait_eq 10 200 http_status "$GW/api/song-engine/echo" || { fail "no route to upstream"; finish; }

/usr/bin/python3 - "$GW_PORT" >"$FV_TMP/cases.txt" <<'PY'
import socket, sys
port = int(sys.argv[1])
P = b"/api/song-engine"
SMUGGLE = b"GET " + P + b"/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
CASES = [
 ("CL and TE", "400", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLE),
 ("TE and CL", "400", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + SMUGGLE),
 ("differing CL", "400", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd" + SMUGGLE),
 ("CL list", "400", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 40\r\n\r\nabcd" + SMUGGLE),
 ("TE gzip, chunked", "501", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + SMUGGLE),
 ("TE identity", "501", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n" + SMUGGLE),
 ("TE xchunked", "501", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + SMUGGLE),
 ("TE chunked, gzip", "400", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + SMUGGLE),
 ("TE twice", "400", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLE),
 ("TE on HTTP/1.0", "400", b"POST " + P + b"/count HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLE),
 ("obs-fold", "400", b"GET " + P + b"/smuggled HTTP/1.1\r\nHost: x\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n"),
 ("space before colon", "400", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\nabcd" + SMUGGLE),
 ("tab before colon", "400", b"GET " + P + b"/smuggled HTTP/1.1\r\nHost: x\r\nX-A\t: 1\r\n\r\n"),
 ("CR in a value", "400", b"GET " + P + b"/smuggled HTTP/1.1\r\nHost: x\r\nX-A: a\rX-B: b\r\n\r\n"),
 ("LF in a value", "400", b"GET " + P + b"/smuggled HTTP/1.1\r\nHost: x\r\nX-A: a\nX-B: b\r\n\r\n"),
 ("NUL in a value", "400", b"GET " + P + b"/smuggled HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
 ("absolute-form, other host", "400", b"GET http://evil.example" + P + b"/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("authority-form", "400", b"GET evil.example:80 HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("bare LF line ends", "400", b"GET " + P + b"/smuggled HTTP/1.1\nHost: x\n\n"),
 ("chunk size with junk", "400", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4 x\r\nabcd\r\n0\r\n\r\n" + SMUGGLE),
 ("CL with a sign", "400", b"POST " + P + b"/count HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd" + SMUGGLE),
]
for name, want, raw in CASES:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(raw)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "none"
    # the connection must end after the refusal: no second answer for a hidden request
    answers = data.count(b"HTTP/1.1 ")
    print(f"{name}|{want}|{status}|{answers}")
PY
while IFS='|' read -r name want got answers; do
    check "$name: $want (got $got, $answers answer(s))" test "$got/$answers" = "$want/1"
done <"$FV_TMP/cases.txt"
check "the gateway answers normally afterwards" test "$(http_status "$GW/api/song-engine/echo")" = 200
check "nothing smuggled reached the upstream" bash -c "! grep -q SMUGGLED '$FV_TMP/upstream.log'"
finish
