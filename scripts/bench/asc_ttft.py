"""Time to first token of streamed chat completions, direct to the fake
upstream and through the ASC, one request at a time (the Python overhead is
the same on both paths; the difference is what the ASC adds).

Usage: asc_ttft.py URL KEY N PACE_MS   prints one JSON line.
"""
import http.client
import json
import ssl
import statistics
import sys
import time
import urllib.parse

url, key, n, pace = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
u = urllib.parse.urlsplit(url)
ctx = ssl._create_unverified_context()  # loopback bench, self-made CAs
answer = "The quarterly build finished and every regression passed on the first try today. " * 4
body = json.dumps({"model": "gpt-4o", "stream": True, "messages": [
    {"role": "user", "content": f"PACE_MS:{pace} SAY:{answer}"}]})
conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx) if u.scheme == "https" else \
    http.client.HTTPConnection(u.hostname, u.port)
firsts, totals = [], []
for _ in range(n):
    t0 = time.perf_counter()
    conn.request("POST", u.path, body, {"authorization": f"Bearer {key}", "content-type": "application/json"})
    r = conn.getresponse()
    first = None
    buf = b""
    while True:
        chunk = r.read1(65536)
        if not chunk:
            break
        buf += chunk
        if first is None and b'"content":"' in buf.replace(b'"content":""', b""):
            first = time.perf_counter() - t0
    totals.append(time.perf_counter() - t0)
    firsts.append(first if first is not None else float("nan"))


def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))] * 1000


print(json.dumps({"n": n, "pace_ms": pace, "ttft_p50_ms": q(firsts, 0.5), "ttft_p99_ms": q(firsts, 0.99),
                  "total_p50_ms": q(totals, 0.5), "ttft_mean_ms": statistics.mean(firsts) * 1000}))
