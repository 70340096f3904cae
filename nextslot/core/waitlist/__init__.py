"""The waitlist: joining it, and offering freed time to the people on it."""
