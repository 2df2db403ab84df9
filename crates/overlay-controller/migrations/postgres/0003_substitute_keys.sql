-- The substitute key each agent member gets at join (what its SDKs present
-- to the enclave's ASC instead of a real API key), stored as its hex SHA-256.
-- Removing the member removes it: the ASC refuses the key from then on.
ALTER TABLE members ADD COLUMN substitute_sha256 TEXT;
