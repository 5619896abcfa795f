"""The database: engine, schema (the numbered SQL files of ``migrations``),
the store and its tables."""
