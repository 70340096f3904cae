"""FastAPI app: REST API, MCP over HTTP, booking page and webhooks: see issues 3 and 5."""
