"""The MCP server: the agent registry's read-only tools served to other programs at /mcp, as a token's owner."""
