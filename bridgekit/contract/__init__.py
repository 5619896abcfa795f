"""The connector contract: what a connector implements and the events it exchanges with the runtime.

Nothing here imports the runtime (the rest of bridgekit)."""
