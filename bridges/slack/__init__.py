"""slack connector (not yet implemented)."""
