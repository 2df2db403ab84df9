"""MCP scenarios with the official `mcp` SDK as the client (see ../mcp.rs).

Usage: python mcp_clients.py SCENARIO...   prints "ok SCENARIO" per scenario.
Environment: ASC_BIN, ASC_CONFIG (the gateway), TIME_BIN (mcp-server-time),
ASC_MCP_URL (the gateway's /mcp/files endpoint).
"""
import os
import sys

import anyio
from mcp import Client, MCPError, StdioServerParameters

SECRET = "AKIA" + "Z7Q3RX6MW2KD4PLT"


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def wrapped_time_server():
    return StdioServerParameters(
        command=os.environ["ASC_BIN"],
        args=["mcp-stdio", "--config", os.environ["ASC_CONFIG"], "--server", "time", "--",
              os.environ["TIME_BIN"], "--local-timezone", "UTC"])


async def stdio_filtering(mode):
    async with Client(wrapped_time_server(), mode=mode) as c:
        tools, cursor = [], None
        while True:
            page = await c.list_tools(cursor=cursor)
            tools += page.tools
            cursor = page.next_cursor
            if cursor is None:
                break
        names = [t.name for t in tools]
        expect(names == ["get_current_time"], f"listed {names}")
        r = await c.call_tool("get_current_time", {"timezone": "UTC"})
        expect(not r.is_error and r.content, r)
        try:
            await c.call_tool("convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"})
            raise AssertionError("a hidden tool was called")
        except MCPError as e:
            expect(e.code == -32602 and "not available" in e.message, (e.code, e.message))
        try:
            await c.call_tool("get_current_time", {"timezone": f"UTC {SECRET}"})
            raise AssertionError("a secret went out in tool arguments")
        except MCPError as e:
            expect("DLP" in e.message and SECRET not in e.message, e.message)


async def http_filtering(mode):
    async with Client(os.environ["ASC_MCP_URL"], mode=mode) as c:
        names = sorted(t.name for t in (await c.list_tools()).tools)
        expect(names == ["get_weather", "read_notes"], f"listed {names}")
        r = await c.call_tool("get_weather", {"city": "Paris"})
        expect(not r.is_error and "Sunny in Paris" in r.content[0].text, r)
        try:
            await c.call_tool("delete_file", {"path": "/etc/passwd"})
            raise AssertionError("a hidden tool was called")
        except MCPError as e:
            expect("not available" in e.message, (e.code, e.message))
        try:
            await c.call_tool("read_notes", {})
            raise AssertionError("a secret in a tool result reached the client")
        except MCPError as e:
            expect("DLP" in e.message and SECRET not in e.message, e.message)


def http_filtering_modern():
    anyio.run(http_filtering, "auto")


def http_filtering_legacy():
    anyio.run(http_filtering, "legacy")


def stdio_filtering_modern():
    anyio.run(stdio_filtering, "auto")


def stdio_filtering_legacy():
    anyio.run(stdio_filtering, "legacy")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        globals()[name]()
        print("ok", name, flush=True)
