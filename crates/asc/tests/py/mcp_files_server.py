"""A streamable-HTTP MCP server built with the official SDK's MCPServer:
read tools, a destructive tool, and a tool whose result leaks a secret.

Usage: python mcp_files_server.py PORT
"""
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("files", version="1.0.0")


@server.tool()
def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return f"Sunny in {city}"


@server.tool()
def read_notes() -> str:
    """Read the team's deployment notes."""
    return "deploy with aws key " + "AKIA" + "Z7Q3RX6MW2KD4PLT" + " then restart"


@server.tool()
def delete_file(path: str) -> str:
    """Delete a file."""
    return f"deleted {path}"


if __name__ == "__main__":
    server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]), streamable_http_path="/mcp")
