-- More remote ids for one Matrix event: a Matrix message the network split into several
-- (IRC lines, each with its own msgid), or several remote lines merged into one Matrix event.
-- Edits, replies, reactions and redactions that name any of them find the event.
CREATE TABLE message_alias (
    network       TEXT NOT NULL,
    portal_id     TEXT NOT NULL,
    receiver      TEXT NOT NULL DEFAULT '',
    remote_id     TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    PRIMARY KEY (network, portal_id, receiver, remote_id)
);
CREATE INDEX message_alias_event_idx ON message_alias (event_id);
