"""A misbehaving stdio MCP server, speaking raw JSON-RPC lines: it writes
garbage to stdout, answers slowly, and dies in the middle of a call.

Tools: `echo` (answers after 300 ms, garbage line first), `crash` (exits
with code 3 without answering), `wipe` (the policy hides it).
"""
import json
import os
import sys
import time

TOOLS = [
    {"name": n, "description": f"{n} tool", "inputSchema": {"type": "object"}}
    for n in ["echo", "crash", "wipe"]
]


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    msg = json.loads(line)
    method, mid = msg.get("method"), msg.get("id")
    if mid is None:
        continue
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
            "serverInfo": {"name": "rogue", "version": "0"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": TOOLS}})
    elif method == "tools/call" and msg["params"]["name"] == "echo":
        time.sleep(0.3)
        sys.stdout.write("this is not JSON at all\n")
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "content": [{"type": "text", "text": json.dumps(msg["params"]["arguments"])}]}})
    elif method == "tools/call" and msg["params"]["name"] == "crash":
        os._exit(3)
    else:
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
