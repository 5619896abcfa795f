-- End-to-bridge encryption (bridgekit/crypto/service.py). mautrix.crypto's own tables
-- (crypto_*, versioned in crypto_version) hold the keys; these hold the runtime's side.

-- Rooms known to be encrypted, with their m.room.encryption content (rotation settings).
CREATE TABLE crypto_room (
    room_id    TEXT PRIMARY KEY,
    encryption TEXT NOT NULL
);

-- Encrypted events whose room key had not arrived: handled when it does.
CREATE TABLE crypto_waiting (
    event_id    TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    event       TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    told        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX crypto_waiting_session ON crypto_waiting (room_id, session_id);

-- To-device messages already handled (they come both in transactions and by /sync), by a
-- digest of their JSON; pruned after a week.
CREATE TABLE crypto_seen (
    digest  TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);

-- The members (not the bridge's own users) of encrypted rooms, as last seen: a change of a
-- member's devices must reach those rooms' room keys, after a restart too.
CREATE TABLE crypto_member (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

-- Secrets of the bot's own (never logged): the recovery key of its cross-signing keys.
CREATE TABLE crypto_secret (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
