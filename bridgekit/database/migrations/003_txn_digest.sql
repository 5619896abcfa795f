-- Transaction ids are unique only within one run of the homeserver (Synapse on SQLite numbers
-- them again after a restart): a transaction is known by its id and a digest of its event ids,
-- so a reused id with new events is not taken for a retry. Rows from before have digest ''.
CREATE TABLE appservice_txn_v3 (
    txn_id        TEXT NOT NULL,
    digest        TEXT NOT NULL DEFAULT '',
    body          TEXT,
    received_at   BIGINT NOT NULL,
    PRIMARY KEY (txn_id, digest)
);
INSERT INTO appservice_txn_v3 (txn_id, digest, body, received_at)
    SELECT txn_id, '', body, received_at FROM appservice_txn;
DROP TABLE appservice_txn;
ALTER TABLE appservice_txn_v3 RENAME TO appservice_txn;
