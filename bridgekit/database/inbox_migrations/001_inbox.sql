-- The homeserver's transactions, stored before their 200 (bridgekit/database/transactions.py):
-- the same table as the main database's appservice_txn (migrations 001 and 003), in a file of
-- its own so that storing one never waits for the main database's write lock.
CREATE TABLE appservice_txn (
    txn_id        TEXT NOT NULL,
    digest        TEXT NOT NULL DEFAULT '',
    body          TEXT,
    received_at   BIGINT NOT NULL,
    PRIMARY KEY (txn_id, digest)
);
-- The transactions not settled yet (database/transactions.py: pending_transactions reads only
-- this, not every stored body).
CREATE INDEX appservice_txn_unsettled ON appservice_txn (received_at, txn_id, digest)
    WHERE body IS NOT NULL;
