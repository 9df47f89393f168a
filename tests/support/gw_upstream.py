#!/usr/bin/python3
"""gw_upstream.py PORT NAME - a test upstream for the API gateway's integration tests.

GET  /echo[...]      -> 200 JSON {name, method, path, headers}; also answers
                        "Connection: X-Hop" with an "X-Hop" header the gateway must drop
GET  /slow/<ms>      -> 200 after <ms>
GET  /big/<bytes>    -> 200 with that many bytes (streamed out in 1 MiB writes)
POST|PUT /count      -> 200 JSON {name, bytes}: the request body counted, never kept
Any request whose bytes hold a second request line after the first request's end is logged
to stderr as SMUGGLED (the smuggling test looks for that word).
"""
import json
import socketserver
import sys
import time
import http.server

PORT = int(sys.argv[1])
NAME = sys.argv[2] if len(sys.argv) > 2 else "up"
BIG_CHUNK = b"b" * (1 << 20)


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def count_body(self):
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    got = self.rfile.read(min(left, 1 << 16))
                    if not got:
                        raise ConnectionError("short chunk")
                    left -= len(got)
                n += size
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                got = self.rfile.read(min(left, 1 << 16))
                if not got:
                    raise ConnectionError("short body")
                left -= len(got)
                n += len(got)
        return n

    def do_GET(self):
        if self.path.startswith("/slow/"):
            time.sleep(int(self.path.rsplit("/", 1)[-1]) / 1000)
            self.reply(200, b'{"slow":true}')
        elif self.path.startswith("/big/"):
            n = int(self.path.rsplit("/", 1)[-1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = BIG_CHUNK
            while n > 0:
                self.wfile.write(chunk[:min(n, len(chunk))])
                n -= min(n, len(chunk))
        else:
            body = json.dumps({"name": NAME, "method": self.command, "path": self.path,
                               "headers": [[k, v] for k, v in self.headers.items()]}).encode()
            self.reply(200, body, extra=(("Connection", "X-Hop"), ("X-Hop", "secret"),
                                         ("X-Kept", "yes")))

    do_HEAD = do_GET
    do_DELETE = do_GET
    do_OPTIONS = do_GET

    def do_POST(self):
        n = self.count_body()
        self.reply(200, json.dumps({"name": NAME, "bytes": n, "path": self.path}).encode())

    do_PUT = do_POST
    do_PATCH = do_POST

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Watch(H):
    """Reads what the gateway sends on a connection and flags a smuggled request."""

    def parse_request(self):
        ok = super().parse_request()
        te = self.headers.get("Transfer-Encoding") if ok else None
        cl = self.headers.get_all("Content-Length") if ok else None
        if ok and te and cl:
            print("SMUGGLED both Content-Length and Transfer-Encoding", file=sys.stderr,
                  flush=True)
        if ok and cl and len(set(cl)) > 1:
            print("SMUGGLED differing Content-Length", file=sys.stderr, flush=True)
        if ok and "/smuggled" in self.path:
            print("SMUGGLED request reached the upstream: " + self.path, file=sys.stderr,
                  flush=True)
        return ok


Server(("127.0.0.1", PORT), Watch).serve_forever()
