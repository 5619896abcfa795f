-- Transactions whose handling is durable ("finished"), marked in the group commit with what
-- their handling wrote (bridgekit/database/transactions.py). On SQLite the transactions
-- themselves live in another file (bridgekit/database/inbox.py), so the mark cannot be an
-- UPDATE of their row; the mark is applied to the row later (settled) and then deleted.
CREATE TABLE appservice_txn_done (
    txn_id        TEXT NOT NULL,
    digest        TEXT NOT NULL,
    PRIMARY KEY (txn_id, digest)
);
