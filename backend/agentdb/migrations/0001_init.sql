-- The agent's first schema. Times are Unix nanoseconds (UTC); states are the
-- presence states' names.

-- Beats waiting for the service, oldest (lowest seq) first. A row leaves only
-- when the service acknowledged it, when it is moved to quarantine, or when the
-- bound forces it out (thinned or dropped, and counted).
CREATE TABLE outbox (
    seq    INTEGER PRIMARY KEY,
    at_ns  INTEGER NOT NULL,
    state  TEXT    NOT NULL CHECK (state IN ('active', 'idle', 'away', 'offline')),
    idle_s INTEGER NOT NULL CHECK (idle_s >= 0)
);

-- Beats the service refused, with its reason. Kept so nothing disappears
-- without a trace; the user can see them in Diagnostics.
CREATE TABLE quarantine (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    seq            INTEGER NOT NULL,
    at_ns          INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    idle_s         INTEGER NOT NULL,
    error          TEXT    NOT NULL,
    quarantined_ns INTEGER NOT NULL
);

-- This device's own spans, built from its real state with the same merge rule
-- the service uses. Offline is not a span: an offline beat closes the tail.
CREATE TABLE history (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    state    TEXT    NOT NULL CHECK (state IN ('active', 'idle', 'away')),
    start_ns INTEGER NOT NULL,
    end_ns   INTEGER NOT NULL CHECK (end_ns >= start_ns),
    closed   INTEGER NOT NULL DEFAULT 0 CHECK (closed IN (0, 1))
);
CREATE INDEX history_start ON history (start_ns);

-- Persistent counters: the seq high-water mark, what the bound removed, what
-- was last sent and synced.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES
    ('last_seq', 0),
    ('sent_seq', 0),
    ('dropped', 0),
    ('compacted', 0),
    ('quarantine_dropped', 0),
    ('last_sync_ns', 0);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
