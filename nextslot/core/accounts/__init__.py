"""Who may act: staff accounts and sessions, API keys, voice webhook secrets."""
