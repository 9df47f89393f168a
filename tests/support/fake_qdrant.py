#!/usr/bin/env python3
"""fake_qdrant.py - a small stand-in for Qdrant's REST API, for protocol tests of the vector
store's Qdrant backend where no real Qdrant can run. It answers the calls the backend makes
with the request and response shapes Qdrant documents (collections, points upsert / delete /
search with a payload filter, {"status": {"error": ...}} bodies, 404 / 409 / 400 codes), in
memory, by exact search. It is not Qdrant: the suite runs against a real server when
FV_TEST_QDRANT_URL is set.

Usage: fake_qdrant.py PORT_FILE [PORT]   (binds 127.0.0.1 on PORT, or an ephemeral port, writes
the port to PORT_FILE once listening, serves until killed)."""
import json
import math
import re
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock

collections = {}
lock = Lock()


def lookup(payload, key):
    cur = payload
    for seg in key.split("."):
        if not isinstance(cur, dict) or seg not in cur:
            return None
        cur = cur[seg]
    return cur


def eq(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return type(a) == type(b) and a == b


def cond_match(c, payload):
    if "key" not in c:
        return filter_match(c, payload)
    v = lookup(payload, c["key"])
    if v is None:
        return False
    vals = v if isinstance(v, list) else [v]
    for x in vals:
        if "match" in c:
            m = c["match"]
            if "value" in m and eq(x, m["value"]):
                return True
            if "any" in m and any(eq(x, y) for y in m["any"]):
                return True
        else:
            r = c["range"]
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                continue
            if r.get("gt") is not None and not x > r["gt"]:
                continue
            if r.get("gte") is not None and not x >= r["gte"]:
                continue
            if r.get("lt") is not None and not x < r["lt"]:
                continue
            if r.get("lte") is not None and not x <= r["lte"]:
                continue
            return True
    return False


def filter_match(f, payload):
    if not f:
        return True
    for c in f.get("must") or []:
        if not cond_match(c, payload):
            return False
    for c in f.get("must_not") or []:
        if cond_match(c, payload):
            return False
    should = f.get("should") or []
    if should and not any(cond_match(c, payload) for c in should):
        return False
    return True


def valid_id(i):
    if isinstance(i, int) and not isinstance(i, bool) and i >= 0:
        return True
    if isinstance(i, str):
        try:
            uuid.UUID(i)
            return True
        except ValueError:
            return False
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, result=None, error=None):
        body = {"time": 0.0001}
        if error is None:
            body["status"] = "ok"
            body["result"] = result
        else:
            body["status"] = {"error": error}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else {}

    def route(self, method):
        path = self.path.split("?")[0]
        m = re.fullmatch(r"/collections/([A-Za-z0-9_-]+)(/points(/delete|/search)?)?", path)
        try:
            req = self.body()
        except ValueError as e:
            return self.reply(400, error="Format error in JSON body: %s" % e)
        if path == "/collections" and method == "GET":
            with lock:
                return self.reply(200, {"collections": [{"name": n} for n in collections]})
        if not m:
            return self.reply(404, error="Not found")
        name, pts, sub = m.group(1), m.group(2), m.group(3)
        with lock:
            coll = collections.get(name)
            if not pts:
                if method == "PUT":
                    if coll is not None:
                        return self.reply(409, error="Wrong input: Collection `%s` already "
                                          "exists!" % name)
                    v = req.get("vectors", {})
                    if not isinstance(v.get("size"), int) or v.get("distance") not in (
                            "Cosine", "Dot", "Euclid", "Manhattan"):
                        return self.reply(422, error="Json deserialize error: bad vectors")
                    collections[name] = {"size": v["size"], "distance": v["distance"],
                                         "points": {}}
                    return self.reply(200, True)
                if coll is None:
                    if method == "DELETE":
                        return self.reply(200, False)
                    return self.reply(404, error="Not found: Collection `%s` doesn't exist!"
                                      % name)
                if method == "GET":
                    return self.reply(200, {"status": "green", "points_count":
                                            len(coll["points"]), "config": {"params": {
                                                "vectors": {"size": coll["size"],
                                                            "distance": coll["distance"]}}}})
                if method == "DELETE":
                    del collections[name]
                    return self.reply(200, True)
                return self.reply(405, error="method")
            if coll is None:
                return self.reply(404, error="Not found: Collection `%s` doesn't exist!" % name)
            if sub is None and method == "PUT":
                new = {}
                for p in req.get("points", []):
                    if not valid_id(p.get("id")):
                        return self.reply(400, error="Format error in JSON body: value %s is "
                                          "not a valid point ID" % json.dumps(p.get("id")))
                    vec = p.get("vector")
                    if len(vec) != coll["size"]:
                        return self.reply(400, error="Wrong input: Vector dimension error: "
                                          "expected dim: %d, got %d" % (coll["size"], len(vec)))
                    if coll["distance"] == "Cosine":
                        n = math.sqrt(sum(x * x for x in vec)) or 1.0
                        vec = [x / n for x in vec]
                    new[str(p["id"])] = (p["id"], vec, p.get("payload") or {})
                coll["points"].update(new)
                return self.reply(200, {"operation_id": 1, "status": "completed"})
            if sub == "/delete" and method == "POST":
                for i in req.get("points", []):
                    coll["points"].pop(str(i), None)
                return self.reply(200, {"operation_id": 2, "status": "completed"})
            if sub == "/search" and method == "POST":
                q = req.get("vector")
                if len(q) != coll["size"]:
                    return self.reply(400, error="Wrong input: Vector dimension error: "
                                      "expected dim: %d, got %d" % (coll["size"], len(q)))
                if coll["distance"] == "Cosine":
                    n = math.sqrt(sum(x * x for x in q)) or 1.0
                    q = [x / n for x in q]
                hits = []
                for pid, vec, payload in coll["points"].values():
                    if filter_match(req.get("filter"), payload):
                        hits.append((sum(a * b for a, b in zip(q, vec)), pid, payload))
                hits.sort(key=lambda h: -h[0])
                limit = req.get("limit", 10)
                return self.reply(200, [{"id": pid, "version": 0, "score": s,
                                         "payload": payload if req.get("with_payload") else None}
                                        for s, pid, payload in hits[:limit]])
            return self.reply(404, error="Not found")

    def do_GET(self):
        self.route("GET")

    def do_PUT(self):
        self.route("PUT")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")


def main():
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.handle_error = lambda request, address: None   # clients that gave up: not news
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
