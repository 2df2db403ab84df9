"""MCP scenarios with the official `mcp` SDK as the client (see ../mcp.rs).

Usage: python mcp_clients.py SCENARIO...   prints "ok SCENARIO" per scenario.
Environment: ASC_BIN, ASC_CONFIG (the gateway), TIME_BIN (mcp-server-time),
ASC_MCP_URL (the gateway's /mcp/files endpoint).

The HTTP scenarios share one server process and one gateway, in order.
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
        expect(names == ["get_forecast", "get_weather", "read_notes"], f"listed {names}")
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


async def approve_pin(server, tool):
    proc = await anyio.run_process(
        [os.environ["ASC_BIN"], "pins", "approve", "--config", os.environ["ASC_CONFIG"], server, tool],
        check=False)
    expect(proc.returncode == 0, proc.stderr)


async def listed(c):
    return sorted(t.name for t in (await c.list_tools()).tools)


async def http_rug_pull(mode):
    """A tool that changes its definition after a call: hidden and refused
    until an admin approves the new definition."""
    async with Client(os.environ["ASC_MCP_URL"], mode=mode) as c:
        if "get_forecast" not in await listed(c):
            # Changed by the previous scenario's last call.
            await approve_pin("files", "get_forecast")
        expect("get_forecast" in await listed(c), "get_forecast not listed")
        if mode == "auto":
            # The change notification reaches the client through the gateway.
            async with c.listen(tools_list_changed=True) as sub:
                r = await c.call_tool("get_forecast", {"city": "Oslo"})
                with anyio.fail_after(10):
                    event = await sub.__anext__()
                expect("ToolsListChanged" in type(event).__name__, event)
        else:
            r = await c.call_tool("get_forecast", {"city": "Oslo"})
        expect(not r.is_error and "Rain in Oslo" in r.content[0].text, r)
        expect("get_forecast" not in await listed(c), "a changed tool is still listed")
        try:
            await c.call_tool("get_forecast", {"city": "Oslo"})
            raise AssertionError("a changed tool was called")
        except MCPError as e:
            expect("changed since it was approved" in e.message, (e.code, e.message))
        await approve_pin("files", "get_forecast")
        expect("get_forecast" in await listed(c), "an approved tool is not listed")
        r = await c.call_tool("get_forecast", {"city": "Oslo"})
        expect(not r.is_error and "Rain in Oslo" in r.content[0].text, r)


async def http_prompts_resources(mode):
    async with Client(os.environ["ASC_MCP_URL"], mode=mode) as c:
        prompts = sorted(p.name for p in (await c.list_prompts()).prompts)
        expect(prompts == ["summarize"], f"prompts {prompts}")
        p = await c.get_prompt("summarize", {"text": "the quarter"})
        expect("the quarter" in p.messages[0].content.text, p)
        try:
            await c.get_prompt("exfiltrate", {})
            raise AssertionError("a hidden prompt was fetched")
        except MCPError as e:
            expect("not available" in e.message, (e.code, e.message))
        uris = sorted(str(r.uri) for r in (await c.list_resources()).resources)
        expect(uris == ["notes://public/readme"], f"resources {uris}")
        r = await c.read_resource("notes://public/readme")
        expect("Welcome" in r.contents[0].text, r)
        for uri in ["notes://private/keys", "notes://public/../private/keys"]:
            try:
                await c.read_resource(uri)
                raise AssertionError(f"hidden resource {uri} was read")
            except MCPError as e:
                expect("not available" in e.message and SECRET not in e.message, (e.code, e.message))


def http_rug_pull_modern():
    anyio.run(http_rug_pull, "auto")


def http_rug_pull_legacy():
    anyio.run(http_rug_pull, "legacy")


def http_prompts_resources_modern():
    anyio.run(http_prompts_resources, "auto")


def http_prompts_resources_legacy():
    anyio.run(http_prompts_resources, "legacy")


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
