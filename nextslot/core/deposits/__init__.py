"""Deposits: asked at booking, paid through a provider, expired when unpaid."""
