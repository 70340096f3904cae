"""Agent tools over `nextslot.core` (MCP, OpenAI function calling, voice webhooks): see issue 3."""
