-- bridgekit runtime schema v1.
-- Portal keys are (network, remote_id, receiver); receiver is '' for chats shared by all logins.

CREATE TABLE portal (
    network       TEXT NOT NULL,
    remote_id     TEXT NOT NULL,
    receiver      TEXT NOT NULL DEFAULT '',
    mxid          TEXT UNIQUE,
    name          TEXT,
    topic         TEXT,
    avatar_url    TEXT,
    is_dm         BOOLEAN NOT NULL DEFAULT false,
    plumbed       BOOLEAN NOT NULL DEFAULT false,
    relay_login   TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (network, remote_id, receiver)
);

CREATE TABLE ghost (
    network       TEXT NOT NULL,
    remote_id     TEXT NOT NULL,
    mxid          TEXT NOT NULL UNIQUE,
    name          TEXT,
    avatar_url    TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (network, remote_id)
);

CREATE TABLE bridge_user (
    mxid              TEXT PRIMARY KEY,
    management_room   TEXT,
    double_puppet     TEXT,
    metadata          TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE user_login (
    id            TEXT PRIMARY KEY,
    user_mxid     TEXT NOT NULL REFERENCES bridge_user(mxid) ON DELETE CASCADE,
    network       TEXT NOT NULL,
    remote_id     TEXT NOT NULL,
    remote_name   TEXT NOT NULL DEFAULT '',
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL,
    UNIQUE (user_mxid, network, remote_id)
);

CREATE TABLE message (
    network       TEXT NOT NULL,
    portal_id     TEXT NOT NULL,
    receiver      TEXT NOT NULL DEFAULT '',
    remote_id     TEXT NOT NULL,
    part          TEXT NOT NULL DEFAULT '',
    event_id      TEXT NOT NULL UNIQUE,
    room_id       TEXT NOT NULL,
    sender_mxid   TEXT NOT NULL,
    sender_remote TEXT,
    ts            BIGINT NOT NULL,
    thread_root   TEXT,
    PRIMARY KEY (network, portal_id, receiver, remote_id, part)
);
CREATE INDEX message_room_ts_idx ON message (room_id, ts);

CREATE TABLE reaction (
    network       TEXT NOT NULL,
    portal_id     TEXT NOT NULL,
    receiver      TEXT NOT NULL DEFAULT '',
    target_id     TEXT NOT NULL,
    sender_remote TEXT NOT NULL,
    reaction_key  TEXT NOT NULL,
    event_id      TEXT NOT NULL UNIQUE,
    room_id       TEXT NOT NULL,
    remote_id     TEXT,
    PRIMARY KEY (network, portal_id, receiver, target_id, sender_remote, reaction_key)
);

-- Transactions from the homeserver. body holds the raw JSON until every event is handled: it
-- is the durable inbox. The row stays (body NULL) so a retried txnId is answered, not redone.
CREATE TABLE appservice_txn (
    txn_id        TEXT PRIMARY KEY,
    body          TEXT,
    received_at   BIGINT NOT NULL
);

-- Remote events waiting to be sent to Matrix, in order per portal: the durable outbox.
CREATE TABLE outbox (
-- only: sqlite
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
-- end only
-- only: postgres
    seq           BIGSERIAL PRIMARY KEY,
-- end only
    network       TEXT NOT NULL,
    portal_id     TEXT NOT NULL,
    receiver      TEXT NOT NULL DEFAULT '',
    login_id      TEXT,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE kv (
    key           TEXT PRIMARY KEY,
    value         TEXT NOT NULL
);
