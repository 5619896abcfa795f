"""Durable work: homeserver transactions (the inbox), outbox jobs per portal,
ordering, coalescing, parking."""
