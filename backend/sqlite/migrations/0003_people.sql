-- People: admins and disabled accounts, passwords, browser sessions, named
-- API tokens, one-time links (invites, password resets) and device pairing.
-- Every secret is kept only as its SHA-256 hash.

ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
-- A password.Hash string; '' when the user has none.
ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';

-- An upgraded server keeps someone who can invite and disable people: its
-- oldest user.
UPDATE users SET admin = 1
WHERE id = (SELECT id FROM users ORDER BY created_ns, id LIMIT 1)
	AND NOT EXISTS (SELECT 1 FROM users WHERE admin = 1);

-- The agent's version as it last said.
ALTER TABLE devices ADD COLUMN version TEXT NOT NULL DEFAULT '';
DROP TRIGGER devices_catalog_update;
CREATE TRIGGER devices_catalog_update AFTER UPDATE OF user_id, name, os, platform, hostname, version, revoked_ns ON devices
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;

-- User tokens are named API tokens; the one made with an account says so.
-- Their public ID is the first 8 bytes of the hash, in hex.
ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN last_used_ns INTEGER NOT NULL DEFAULT 0;
UPDATE tokens SET name = 'created with the account' WHERE kind = 'usr';
CREATE INDEX tokens_user ON tokens (user_id, kind);

-- Browser sessions. IDs are never reused (AUTOINCREMENT), so an ended
-- session's ID can never come to mean another one.
CREATE TABLE sessions (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id      INTEGER NOT NULL REFERENCES users (id),
	hash         BLOB    NOT NULL UNIQUE,
	created_ns   INTEGER NOT NULL,
	last_used_ns INTEGER NOT NULL,
	user_agent   TEXT    NOT NULL DEFAULT '',
	addr         TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id, last_used_ns);

-- Live one-time links only: a link is deleted when it is redeemed, revoked
-- or replaced, and expired ones when the next link is made.
CREATE TABLE links (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	purpose    TEXT    NOT NULL CHECK (purpose IN ('signup', 'reset')),
	hash       BLOB    NOT NULL UNIQUE,
	handle     TEXT    NOT NULL,
	name       TEXT    NOT NULL DEFAULT '',
	admin      INTEGER NOT NULL DEFAULT 0,
	user_id    INTEGER REFERENCES users (id),
	created_by INTEGER REFERENCES users (id),
	created_ns INTEGER NOT NULL,
	expires_ns INTEGER NOT NULL
);
CREATE INDEX links_handle ON links (handle);

-- Pairings (RFC 8628). A user code is unique among live pairings (checked
-- when one is made); rows stay a while past their expiry so a late poll
-- still hears expired_token.
CREATE TABLE pairings (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	device_code_hash BLOB    NOT NULL UNIQUE,
	user_code        TEXT    NOT NULL,
	device_name      TEXT    NOT NULL,
	os               TEXT    NOT NULL DEFAULT '',
	state            TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'done')),
	user_id          INTEGER REFERENCES users (id),
	device_id        INTEGER REFERENCES devices (id),
	interval_ns      INTEGER NOT NULL,
	created_ns       INTEGER NOT NULL,
	expires_ns       INTEGER NOT NULL,
	last_poll_ns     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pairings_user_code ON pairings (user_code, expires_ns);
CREATE INDEX pairings_expires ON pairings (expires_ns);

-- 'auth' counts changes that take a credential away without touching a
-- user or device: a session ended, a token revoked or deleted. With
-- 'catalog' (which a user disabled or a device revoked moves) it tells a
-- running service, whatever process made the change, to forget the
-- credentials it remembers. A session's last use is not such a change.
INSERT INTO meta (key, value) VALUES ('auth', 0);
CREATE TRIGGER sessions_auth_delete AFTER DELETE ON sessions
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'auth'; END;
CREATE TRIGGER sessions_auth_update AFTER UPDATE OF id, user_id, hash ON sessions
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'auth'; END;
CREATE TRIGGER tokens_auth_update AFTER UPDATE OF hash, kind, user_id, device_id, revoked_ns ON tokens
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'auth'; END;
CREATE TRIGGER tokens_auth_delete AFTER DELETE ON tokens
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'auth'; END;
