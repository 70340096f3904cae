"""What a business offers and how it is configured: catalog, configuration file, edits, message templates."""
