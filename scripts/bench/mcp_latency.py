"""Per-call latency of MCP `tools/call`, one call at a time.

  stdio CALLS CMD...   raw JSON-RPC lines to a stdio server (CMD), direct or
                       wrapped in `asc mcp-stdio`
  http CALLS URL       the official SDK client against a streamable-HTTP
                       server, direct or through the gateway's /mcp/NAME

Prints one JSON line: calls, p50_us, p99_us, max_us.
"""
import json
import subprocess
import sys
import time


def summary(samples):
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return {"calls": len(s), "p50_us": round(pick(0.50), 1), "p99_us": round(pick(0.99), 1), "max_us": round(s[-1], 1)}


def stdio(calls, cmd):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    rd = p.stdout

    def rpc(i, method, params):
        p.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode())
        while True:
            msg = json.loads(rd.readline())
            if msg.get("id") == i:
                if "error" in msg:
                    raise SystemExit(f"error: {msg['error']}")
                return msg

    rpc(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}})
    rpc(1, "tools/list", {})
    args = {"text": "the quarterly build passed timing closure " * 8}
    samples = []
    for i in range(2, 2 + 200 + calls):
        t = time.perf_counter_ns()
        rpc(i, "tools/call", {"name": "echo", "arguments": args})
        if i >= 202:
            samples.append((time.perf_counter_ns() - t) / 1000)
    p.stdin.close()
    p.wait(timeout=10)
    return summary(samples)


def http(calls, url):
    import anyio
    from mcp import Client

    async def run():
        samples = []
        async with Client(url, mode="legacy") as c:
            await c.list_tools()
            for i in range(50 + calls):
                t = time.perf_counter_ns()
                r = await c.call_tool("get_weather", {"city": "Paris"})
                if r.is_error:
                    raise SystemExit(f"error: {r}")
                if i >= 50:
                    samples.append((time.perf_counter_ns() - t) / 1000)
        return samples

    return summary(anyio.run(run))


if __name__ == "__main__":
    kind, calls = sys.argv[1], int(sys.argv[2])
    res = stdio(calls, sys.argv[3:]) if kind == "stdio" else http(calls, sys.argv[3])
    print(json.dumps(res), flush=True)
