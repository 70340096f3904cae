"""OAuth 2.1 for /mcp: hosted assistants (claude.ai, ChatGPT, the MCP Inspector) connect to one business.

The protocol (metadata, registration, /authorize, /token, /revoke, PKCE checks) is the mcp package's own;
this package is what it asks of us: a provider over our tables (`provider.py`, `grants.py`), the consent
page behind the console's sign-in (`consent.py`), the scopes and the tools each allows (`scopes.py`), and
the bearer check /mcp uses for API keys and OAuth tokens alike (`verifier.py`). `install.py` wires it in.
"""
