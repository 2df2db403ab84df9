"""Per-call latency of MCP `tools/call`, one call at a time, direct and
through the gateway side by side: the calls alternate between the two paths
(direct, gateway, direct, ...), so a machine that speeds up or slows down
during the run affects both alike instead of biasing the difference.

  stdio CALLS 'DIRECT CMD' 'GATEWAY CMD'   raw JSON-RPC lines to two stdio
                                           servers (shell-quoted commands)
  http CALLS DIRECT_URL GATEWAY_URL        the official SDK client against a
                                           streamable-HTTP server, direct and
                                           through the gateway's /mcp/NAME

Prints one JSON line: {"direct": S, "gateway": S}, each S holding calls,
p50_us, p99_us, max_us.
"""
import json
import shlex
import subprocess
import sys
import time

WARMUP = 200


def summary(samples):
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]
    return {"calls": len(s), "p50_us": round(pick(0.50), 1), "p99_us": round(pick(0.99), 1), "max_us": round(s[-1], 1)}


class StdioServer:
    """One stdio MCP server (or the gateway wrapping one), spoken to in raw
    JSON-RPC lines."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)

    def rpc(self, i, method, params):
        self.p.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n").encode())
        while True:
            msg = json.loads(self.p.stdout.readline())
            if msg.get("id") == i:
                if "error" in msg:
                    raise SystemExit(f"error: {msg['error']}")
                return msg

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def stdio(calls, direct_cmd, gateway_cmd):
    paths = [StdioServer(shlex.split(direct_cmd)), StdioServer(shlex.split(gateway_cmd))]
    for s in paths:
        s.rpc(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}})
        s.rpc(1, "tools/list", {})
    args = {"text": "the quarterly build passed timing closure " * 8}
    samples = ([], [])
    for i in range(2, 2 + WARMUP + calls):
        for k, s in enumerate(paths):
            t = time.perf_counter_ns()
            s.rpc(i, "tools/call", {"name": "echo", "arguments": args})
            if i >= 2 + WARMUP:
                samples[k].append((time.perf_counter_ns() - t) / 1000)
    for s in paths:
        s.close()
    return samples


def http(calls, direct_url, gateway_url):
    import anyio
    from mcp import Client

    async def run():
        samples = ([], [])
        async with Client(direct_url, mode="legacy") as d, Client(gateway_url, mode="legacy") as g:
            for c in (d, g):
                await c.list_tools()
            for i in range(WARMUP // 4 + calls):
                for k, c in enumerate((d, g)):
                    t = time.perf_counter_ns()
                    r = await c.call_tool("get_weather", {"city": "Paris"})
                    if r.is_error:
                        raise SystemExit(f"error: {r}")
                    if i >= WARMUP // 4:
                        samples[k].append((time.perf_counter_ns() - t) / 1000)
        return samples

    return anyio.run(run)


if __name__ == "__main__":
    kind, calls, direct, gateway = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    d, g = (stdio if kind == "stdio" else http)(calls, direct, gateway)
    print(json.dumps({"direct": summary(d), "gateway": summary(g)}), flush=True)
