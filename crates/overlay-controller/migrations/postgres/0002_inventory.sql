-- The latest inventory each node reported (`overlay-node discover --report`);
-- gone with its member.
CREATE TABLE inventories (
    member_id   BIGINT PRIMARY KEY REFERENCES members(id) ON DELETE CASCADE,
    host        TEXT NOT NULL,
    reported_at BIGINT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX inventories_host ON inventories (host, reported_at);
