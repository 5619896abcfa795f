-- Typed, versioned connector metadata (bridgekit/net_metadata.py): each portal, ghost and login
-- row gets a JSON object that belongs to its network's connector alone, and the version of the
-- connector's type that wrote it (0: never written). ``metadata`` stays the runtime's own.
ALTER TABLE portal ADD COLUMN net_metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE portal ADD COLUMN net_metadata_v INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ghost ADD COLUMN net_metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE ghost ADD COLUMN net_metadata_v INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_login ADD COLUMN net_metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE user_login ADD COLUMN net_metadata_v INTEGER NOT NULL DEFAULT 0;
