"""Customers: identity and contacts, their history with a business, the staff roster."""
