-- Ghost info over time: a remote user's is-bot flag is kept on their ghost, and each distinct
-- avatar image is uploaded to the homeserver once: ``avatar`` maps the SHA-256 of its bytes
-- to the mxc:// URI it got, reused for every ghost and room that shows the same image.
ALTER TABLE ghost ADD COLUMN is_bot BOOLEAN NOT NULL DEFAULT false;
CREATE TABLE avatar (
    hash          TEXT PRIMARY KEY,
    mxc           TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
