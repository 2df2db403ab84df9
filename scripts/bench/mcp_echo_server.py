"""The smallest stdio MCP server: raw JSON-RPC lines, one `echo` tool that
answers at once. Used by bench-mcp.sh so the server adds no noise."""
import json
import sys

TOOLS = [{"name": "echo", "description": "Echo the arguments.", "inputSchema": {"type": "object"}}]
out = sys.stdout
for line in sys.stdin:
    msg = json.loads(line)
    mid = msg.get("id")
    if mid is None:
        continue
    m = msg.get("method")
    if m == "initialize":
        res = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "echo", "version": "0"}}
    elif m == "tools/list":
        res = {"tools": TOOLS}
    elif m == "tools/call":
        res = {"content": [{"type": "text", "text": json.dumps(msg["params"].get("arguments", {}))}]}
    else:
        res = {}
    out.write(json.dumps({"jsonrpc": "2.0", "id": mid, "result": res}) + "\n")
    out.flush()
