-- People: admins and disabled users, passwords, browser sessions, named API
-- tokens, one-time links (invites, password resets) and device pairing.
-- Every secret is kept only as its SHA-256 hash.

ALTER TABLE users
	ADD COLUMN admin         boolean NOT NULL DEFAULT false,
	ADD COLUMN disabled      boolean NOT NULL DEFAULT false,
	-- A PHC string (argon2id); '' when the user has no password.
	ADD COLUMN password_hash text    NOT NULL DEFAULT '';

-- A server that already has people gets its oldest one as admin, as if
-- they had been the first user of a new server.
UPDATE users SET admin = true, updated_at = now()
WHERE id = (SELECT id FROM users ORDER BY created_at, id LIMIT 1);

-- The agent's version as it last said.
ALTER TABLE devices ADD COLUMN version text NOT NULL DEFAULT '';

-- Signed-in browsers. Ending a session deletes its row.
CREATE TABLE sessions (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id    bigint      NOT NULL REFERENCES users (id),
	hash       bytea       NOT NULL UNIQUE,
	created_at timestamptz NOT NULL,
	last_used  timestamptz NOT NULL,
	user_agent text        NOT NULL DEFAULT '',
	addr       text        NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

-- User tokens, named, for scripts: the one a user was created with (moved
-- here from users.token_hash, and named so) and those made since. id is
-- public: the hex of the first 8 bytes of the hash. seq orders a user's
-- tokens as they were made.
CREATE TABLE api_tokens (
	hash       bytea       PRIMARY KEY,
	id         text        NOT NULL UNIQUE,
	seq        bigint GENERATED ALWAYS AS IDENTITY,
	user_id    bigint      NOT NULL REFERENCES users (id),
	name       text        NOT NULL,
	created_at timestamptz NOT NULL,
	last_used  timestamptz,
	revoked_at timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
INSERT INTO api_tokens (hash, id, user_id, name, created_at)
SELECT token_hash, encode(substring(token_hash FROM 1 FOR 8), 'hex'), id, 'created with the account', created_at
FROM users ORDER BY id;
ALTER TABLE users DROP COLUMN token_hash;

-- One-time links. A link is live while neither used nor revoked and not
-- expired; at most one per purpose and handle is pending (a new one
-- revokes the old one first).
CREATE TABLE links (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	purpose    text        NOT NULL CHECK (purpose IN ('signup', 'reset')),
	hash       bytea       NOT NULL UNIQUE,
	handle     text        NOT NULL,
	name       text        NOT NULL DEFAULT '',
	admin      boolean     NOT NULL DEFAULT false,
	user_id    bigint      REFERENCES users (id),  -- reset: the user
	created_by bigint      REFERENCES users (id),  -- NULL from the command line
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz,
	revoked_at timestamptz
);
CREATE UNIQUE INDEX links_pending ON links (purpose, handle) WHERE used_at IS NULL AND revoked_at IS NULL;

-- Devices asking to join an account (RFC 8628). User codes are unique
-- among live pairings: CreatePairing checks under an advisory lock, since
-- "live" depends on the time.
CREATE TABLE pairings (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	device_code_hash bytea       NOT NULL UNIQUE,
	user_code        text        NOT NULL,
	device_name      text        NOT NULL,
	os               text        NOT NULL DEFAULT '',
	state            text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'denied', 'done')),
	user_id          bigint      REFERENCES users (id),
	device_id        bigint      REFERENCES devices (id),
	interval_ms      bigint      NOT NULL,
	created_at       timestamptz NOT NULL,
	expires_at       timestamptz NOT NULL,
	last_poll        timestamptz
);
CREATE INDEX pairings_user_code ON pairings (user_code, expires_at);
