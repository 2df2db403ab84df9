"""Hostile input against Cordon's running daemons, for `netsim hostile`.

Run by netsim inside a namespace (the agent's sandbox for the ASC, the
agent's host on the underlay for the controller and the node's UDP port):

    python3 hostile.py GROUP JSON-ARGS

Prints one JSON line per case: {"case", "expect", "got", "ok", "bypass"}.
`ok` is true when the daemon answered with the documented rejection;
`bypass` is true when a hostile request was let through (a 2xx, or an
answer from a WireGuard port to junk). Standard library only.
"""

import base64
import json
import os
import socket
import ssl
import sys
import time

TIMEOUT = 20.0


def report(case, expect, got, ok, bypass=False):
    print(json.dumps({"case": case, "expect": expect, "got": got, "ok": ok, "bypass": bypass}), flush=True)


def connect(host, port, tls_ca=None, timeout=TIMEOUT):
    s = socket.create_connection((host, port), timeout=timeout)
    if tls_ca is not None:
        ctx = ssl.create_default_context(cafile=tls_ca)
        ctx.check_hostname = False
        s = ctx.wrap_socket(s, server_hostname=host)
    return s


def status_of(raw):
    """The status code of a raw HTTP/1.1 answer, or None."""
    line = raw.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit():
        return int(parts[1])
    return None


def exchange(host, port, request, tls_ca=None, timeout=TIMEOUT):
    """Sends raw bytes; returns (status or None, first 300 bytes of the answer)."""
    try:
        s = connect(host, port, tls_ca, timeout)
    except OSError as e:
        return None, "connect: %s" % e
    data = b""
    try:
        s.sendall(request)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data and status_of(data) is not None:
                head, _, body = data.partition(b"\r\n\r\n")
                length = None
                for h in head.split(b"\r\n")[1:]:
                    k, _, v = h.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                if length is not None and len(body) >= length:
                    break
    except OSError as e:
        if not data:
            return None, "closed: %s" % e
    finally:
        s.close()
    return status_of(data), data[:300].decode("latin-1")


def http(method, path, body=b"", headers=None, host="x"):
    h = {"host": host, "content-length": str(len(body)), "connection": "close"}
    h.update(headers or {})
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % kv for kv in h.items())
    return head.encode() + b"\r\n" + body


def expect_status(case, want, host, port, request, tls_ca=None):
    got, text = exchange(host, port, request, tls_ca)
    ok = got in want
    bypass = got is not None and 200 <= got < 300
    report(case, "/".join(map(str, want)), got if got is not None else text[:120], ok, bypass)


def slowloris(case, host, port, tls_ca, limit_s, path):
    """Headers one byte a second: the daemon must close the connection
    within limit_s, and serve others meanwhile."""
    try:
        s = connect(host, port, tls_ca, timeout=2)
    except OSError as e:
        report(case, "closed within %ds" % limit_s, "connect: %s" % e, False)
        return
    start = time.monotonic()
    closed = None
    payload = ("POST %s HTTP/1.1\r\nhost: x\r\nx-slow: " % path).encode() + b"a" * 200
    for b in payload:
        if time.monotonic() - start > limit_s + 5:
            break
        try:
            s.sendall(bytes([b]))
            s.settimeout(1.0)
            try:
                if s.recv(4096) == b"":
                    closed = time.monotonic() - start
                    break
            except socket.timeout:
                pass
            except ssl.SSLWantReadError:
                pass
        except OSError:
            closed = time.monotonic() - start
            break
    s.close()
    ok = closed is not None and closed <= limit_s + 2
    report(case, "closed within %ds" % limit_s, "closed after %.1fs" % closed if closed else "still open", ok)


def asc(a):
    gw, sub, forward = a["gateway"], a["substitute_key"], a["forward_port"]
    port = a["reverse_port"]
    chat = "/openai/v1/chat/completions"
    good = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}).encode()
    auth = {"authorization": "Bearer " + sub, "content-type": "application/json"}
    expect_status("malformed JSON", [400], gw, port, http("POST", chat, b"{not json", auth))
    expect_status("JSON of the wrong shape", [400], gw, port, http("POST", chat, b"[1,2,3]", auth))
    expect_status("forged substitute key", [401], gw, port,
                  http("POST", chat, good, {"authorization": "Bearer sub-" + "f" * 64, "content-type": "application/json"}))
    expect_status("no key", [401], gw, port, http("POST", chat, good, {"content-type": "application/json"}))
    expect_status("model not allowed", [403], gw, port,
                  http("POST", chat, json.dumps({"model": "gpt-evil", "messages": [{"role": "user", "content": "hi"}]}).encode(), auth))
    leak = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "key AKIAZ7VRSQ5TJN2XJ4MB secret"}]}).encode()
    expect_status("secret in the prompt", [403], gw, port, http("POST", chat, leak, auth))
    hidden = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}],
                         "instructions": "ignore", "tools": [{"type": "function", "function": {"name": "x", "parameters": {}}}],
                         "metadata": {"k": "AKIAZ7VRSQ5TJN2XJ4MB"}}).encode()
    expect_status("secret in an unmodelled field", [403], gw, port, http("POST", chat, hidden, auth))
    expect_status("unknown provider path", [404], gw, port, http("POST", "/evil/v1/x", good, auth))
    expect_status("GET instead of POST", [404], gw, port, http("GET", chat, b"", auth))
    big = b'{"model":"gpt-4o","messages":[{"role":"user","content":"' + b"a" * (33 << 20) + b'"}]}'
    expect_status("oversized body (33 MiB)", [413], gw, port, http("POST", chat, big, auth))
    smuggle = ("POST %s HTTP/1.1\r\nhost: x\r\nauthorization: Bearer %s\r\ncontent-length: 4\r\n"
               "transfer-encoding: chunked\r\n\r\n0\r\n\r\n" % (chat, sub)).encode()
    expect_status("request smuggling (content-length and chunked)", [400], gw, port, smuggle)
    flood = {"x-h%d" % i: "v" * 1000 for i in range(200)}
    flood.update(auth)
    expect_status("header flood (200 headers)", [400, 431], gw, port, http("POST", chat, good, flood))
    expect_status("MCP server not in policy", [404], gw, port, http("POST", "/mcp/nope", b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}', auth))
    connect_other = ("CONNECT %s:22 HTTP/1.1\r\nhost: %s:22\r\nproxy-authorization: Bearer %s\r\n\r\n"
                     % (a["underlay_host"], a["underlay_host"], sub)).encode()
    expect_status("forward proxy to a host that is not a provider", [403], gw, forward, connect_other)
    got, text = exchange(gw, a["admin_port"], http("GET", "/api/v1/agents"), timeout=3)
    report("ASC admin API from the overlay", "unreachable", got if got is not None else text[:80], got is None, got is not None and got < 300)
    slowloris("slowloris headers", gw, port, None, 10, chat)


def controller(a):
    host, port, ca = a["host"], a["port"], a["ca"]
    join = "/api/v1/join"
    ct = {"content-type": "application/json"}
    expect_status("malformed JSON", [400], host, port, http("POST", join, b"{", ct), ca)
    expect_status("unknown field", [400, 422], host, port,
                  http("POST", join, json.dumps({"token": "x", "public_key": "y", "evil": 1}).encode(), ct), ca)
    key = base64.b64encode(os.urandom(32)).decode()
    forged = "cordon-join-v1." + "A" * 80
    expect_status("forged join token", [401], host, port,
                  http("POST", join, json.dumps({"token": forged, "public_key": key}).encode(), ct), ca)
    expect_status("replayed (spent) join token", [401], host, port,
                  http("POST", join, json.dumps({"token": a["spent_token"], "public_key": key}).encode(), ct), ca)
    expect_status("oversized body (1 MiB + 1)", [413], host, port, http("POST", join, b" " * ((1 << 20) + 1), ct), ca)
    expect_status("no admin token", [401], host, port, http("GET", "/api/v1/enclaves"), ca)
    expect_status("forged admin token", [401], host, port,
                  http("GET", "/api/v1/enclaves", b"", {"authorization": "Bearer " + "x" * 43}), ca)
    expect_status("forged node token", [401], host, port,
                  http("GET", "/api/v1/node/netmap", b"", {"authorization": "Bearer " + "y" * 43}), ca)
    expect_status("admin route with a spent join token", [401], host, port,
                  http("DELETE", "/api/v1/enclaves/project-a", b"", {"authorization": "Bearer " + a["spent_token"]}), ca)
    got, text = exchange(host, port, http("GET", "/api/v1/enclaves"), None, timeout=5)
    seen = "a TLS alert" if text.startswith("\x15\x03") else text[:80]
    report("plain HTTP to the TLS port", "no HTTP answer", got if got is not None else seen, got is None, got is not None and got < 300)
    slowloris("slowloris headers", host, port, ca, 10, join)


def udp(a):
    host, port = a["host"], a["port"]
    cases = [
        ("one byte", b"\x01"),
        ("truncated handshake initiation", b"\x01\x00\x00\x00" + b"\x00" * 96),
        ("initiation with a bad MAC", b"\x01\x00\x00\x00" + bytes(range(144))),
        ("data packet for no session", b"\x04\x00\x00\x00" + b"\x00" * 60),
        ("cookie reply out of the blue", b"\x03\x00\x00\x00" + b"\x11" * 60),
        ("oversized datagram (65,000 bytes)", b"\x04\x00\x00\x00" + b"\x00" * 64996),
    ]
    for name, payload in cases:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.0)
        try:
            s.sendto(payload, (host, port))
            data = s.recv(65536)
            report(name, "dropped silently", "answered %d bytes" % len(data), False, True)
        except socket.timeout:
            report(name, "dropped silently", "no answer", True)
        except OSError as e:
            report(name, "dropped silently", "error: %s" % e, True)
        finally:
            s.close()


if __name__ == "__main__":
    {"asc": asc, "controller": controller, "udp": udp}[sys.argv[1]](json.loads(sys.argv[2]))
