"""Management-room commands: the processor, portal commands, secrets."""
