-- Backfill progress per portal (bridgekit/backfill.py), so that a restart resumes instead of
-- fetching everything again. ``forward_cursor`` is where the connector's last catch-up ended
-- (it may be past the newest bridged message: what the network had that was not a message),
-- valid while the portal's newest bridged remote id is still ``forward_anchor``.
-- ``backward_cursor`` / ``backward_more`` are where the history fetched when the portal was
-- created ended and whether the network has older messages; ``initial_done`` says that history
-- was sent (a portal created before a crash in the middle of it gets it again).
CREATE TABLE backfill_state (
    network          TEXT NOT NULL,
    portal_id        TEXT NOT NULL,
    receiver         TEXT NOT NULL DEFAULT '',
    forward_anchor   TEXT,
    forward_cursor   TEXT,
    backward_cursor  TEXT,
    backward_more    BOOLEAN NOT NULL DEFAULT false,
    initial_done     BOOLEAN NOT NULL DEFAULT false,
    updated_at       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (network, portal_id, receiver)
);
