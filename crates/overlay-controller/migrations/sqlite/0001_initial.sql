CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE enclaves (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    cidr           TEXT NOT NULL,
    agent_to_agent BIGINT NOT NULL,
    secret         BLOB NOT NULL,
    version        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE TABLE members (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    enclave_id      BIGINT NOT NULL REFERENCES enclaves(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL,
    public_key      TEXT NOT NULL,
    address         TEXT NOT NULL,
    endpoint        TEXT,
    hostname        TEXT,
    node_token_hash TEXT NOT NULL,
    joined_at       BIGINT NOT NULL,
    expires_at      BIGINT,
    last_seen       BIGINT NOT NULL,
    UNIQUE (enclave_id, name),
    UNIQUE (enclave_id, address),
    UNIQUE (enclave_id, public_key)
);
CREATE INDEX members_expiry ON members (expires_at);

CREATE TABLE join_tokens (
    id          TEXT PRIMARY KEY,
    enclave_id  BIGINT NOT NULL REFERENCES enclaves(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    role        TEXT NOT NULL,
    uses_left   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    member_name TEXT,
    member_ttl  BIGINT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE chambers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    enclave_id BIGINT NOT NULL REFERENCES enclaves(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    asset      TEXT NOT NULL,
    allow      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (enclave_id, name),
    UNIQUE (enclave_id, asset)
);

CREATE TABLE policies (
    enclave_id BIGINT NOT NULL REFERENCES enclaves(id) ON DELETE CASCADE,
    version    BIGINT NOT NULL,
    content    TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (enclave_id, version)
);

CREATE TABLE credentials (
    name       TEXT PRIMARY KEY,
    provider   TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every change to enclave membership, in commit order; replicas replay it.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    enclave_id BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    subject    BIGINT NOT NULL,
    at         BIGINT NOT NULL
);

CREATE TABLE audit (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

-- The chain's head, so that cutting records off the end is detected too.
CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
