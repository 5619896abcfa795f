-- Spaces: one Matrix space room per remote container (an IRC network, a Slack workspace, a
-- Discord guild), per receiver when the container is private to one login. ``mxid`` is NULL
-- until its room exists: the row is written first, so a space whose creation was cut short is
-- finished at the next start rather than made twice.
CREATE TABLE space (
    network       TEXT NOT NULL,
    space_id      TEXT NOT NULL,
    receiver      TEXT NOT NULL DEFAULT '',
    mxid          TEXT,
    name          TEXT,
    topic         TEXT,
    avatar_url    TEXT,
    PRIMARY KEY (network, space_id, receiver)
);
-- The spaces each portal is in (its container's, and with bridge.personal_spaces the personal
-- space of each login that reported it: container '' with the login id as receiver);
-- ``linked``: m.space.child (and for a container m.space.parent) are set.
CREATE TABLE space_child (
    network       TEXT NOT NULL,
    portal_id     TEXT NOT NULL,
    receiver      TEXT NOT NULL DEFAULT '',
    space_id      TEXT NOT NULL,
    space_receiver TEXT NOT NULL DEFAULT '',
    linked        BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (network, portal_id, receiver, space_id, space_receiver)
);
-- Matrix users with a portal in a space; ``invited`` once they were (once: one who leaves the
-- space is not invited again and again), so an invite cut short by a stop is sent at start.
CREATE TABLE space_member (
    network       TEXT NOT NULL,
    space_id      TEXT NOT NULL,
    receiver      TEXT NOT NULL DEFAULT '',
    user_mxid     TEXT NOT NULL,
    invited       BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (network, space_id, receiver, user_mxid)
);
