-- Lastseen's service schema. Times are Unix nanoseconds (INTEGER): exact,
-- sortable and cheap to compare in indexes.

CREATE TABLE users (
	id         INTEGER PRIMARY KEY,
	handle     TEXT    NOT NULL UNIQUE,
	name       TEXT    NOT NULL,
	tz         TEXT    NOT NULL DEFAULT '',
	public     INTEGER NOT NULL DEFAULT 0,
	created_ns INTEGER NOT NULL
);

-- A device row also carries the device's presence: its high-water mark
-- (last_seq, the whole idempotency state), its last beat and its tail span.
-- Ingest rewrites it once per batch; no table grows per beat.
CREATE TABLE devices (
	id             INTEGER PRIMARY KEY,
	user_id        INTEGER NOT NULL REFERENCES users (id),
	name           TEXT    NOT NULL,
	os             TEXT    NOT NULL DEFAULT '',
	platform       TEXT    NOT NULL DEFAULT '',
	hostname       TEXT    NOT NULL DEFAULT '',
	created_ns     INTEGER NOT NULL,
	revoked_ns     INTEGER,
	last_seq       INTEGER NOT NULL DEFAULT 0,
	state          TEXT    NOT NULL DEFAULT 'offline',
	last_beat_ns   INTEGER NOT NULL DEFAULT 0,
	last_active_ns INTEGER NOT NULL DEFAULT 0,
	-- The span the next beat may extend. Deferred, because a batch updates
	-- the device before it inserts the span it points at.
	tail_span_id   INTEGER REFERENCES spans (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX devices_user ON devices (user_id);

-- Spans, not beats. user_id is the device's, copied so a user's history is
-- one index range. Indexed by end: a query for a recent window starts at
-- spans that end after its From and never walks older history.
CREATE TABLE spans (
	id        INTEGER PRIMARY KEY,
	device_id INTEGER NOT NULL REFERENCES devices (id),
	user_id   INTEGER NOT NULL REFERENCES users (id),
	state     TEXT    NOT NULL CHECK (state IN ('active', 'idle', 'away')),
	start_ns  INTEGER NOT NULL,
	end_ns    INTEGER NOT NULL CHECK (end_ns >= start_ns),
	closed    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX spans_user_end ON spans (user_id, end_ns);
CREATE INDEX spans_device_end ON spans (device_id, end_ns);

-- Only SHA-256 hashes of tokens are kept.
CREATE TABLE tokens (
	hash       BLOB    PRIMARY KEY,
	kind       TEXT    NOT NULL CHECK (kind IN ('usr', 'dev')),
	user_id    INTEGER NOT NULL REFERENCES users (id),
	device_id  INTEGER REFERENCES devices (id),
	created_ns INTEGER NOT NULL,
	revoked_ns INTEGER
) WITHOUT ROWID;
CREATE INDEX tokens_device ON tokens (device_id);

-- Counters: 'catalog' counts changes to users and devices (so a running
-- service notices accounts another process created or revoked), 'event_id'
-- is the ceiling below which event IDs have been handed out.
CREATE TABLE meta (
	key   TEXT    PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('catalog', 0), ('event_id', 0);

CREATE TRIGGER users_catalog_insert AFTER INSERT ON users
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER users_catalog_update AFTER UPDATE ON users
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
CREATE TRIGGER devices_catalog_insert AFTER INSERT ON devices
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
-- Not on the presence columns: those change with every batch and are this
-- process's own business.
CREATE TRIGGER devices_catalog_update AFTER UPDATE OF user_id, name, os, platform, hostname, revoked_ns ON devices
BEGIN UPDATE meta SET value = value + 1 WHERE key = 'catalog'; END;
