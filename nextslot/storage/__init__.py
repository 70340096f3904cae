"""Tables, engine, migrations and the database-level conflict guarantee (PostgreSQL only)."""
