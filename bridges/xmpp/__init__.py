"""xmpp connector (not yet implemented)."""
