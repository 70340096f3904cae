"""Pydantic models of the public contract: commands in, views out. No I/O."""
