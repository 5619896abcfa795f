"""discord connector (not yet implemented)."""
