-- Lastseen schema on PostgreSQL: users, devices with their presence columns,
-- spans (never raw beats) and the events that fan out between instances.
-- Times are timestamptz (microseconds); the store truncates beat times to
-- that precision before merging so memory and database always agree.

CREATE TABLE users (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	handle     text NOT NULL UNIQUE,
	name       text NOT NULL,
	tz         text NOT NULL DEFAULT '',
	public     boolean NOT NULL DEFAULT false,
	token_hash bytea NOT NULL UNIQUE,  -- SHA-256 of the user token
	created_at timestamptz NOT NULL,
	-- Database time of the last change: other instances refresh their
	-- in-memory copy from rows changed since their previous look.
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_updated_at ON users (updated_at);

CREATE SEQUENCE span_ids;

CREATE TABLE devices (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id      bigint NOT NULL REFERENCES users (id),
	name         text NOT NULL,
	os           text NOT NULL DEFAULT '',
	platform     text NOT NULL DEFAULT '',
	hostname     text NOT NULL DEFAULT '',
	token_hash   bytea NOT NULL UNIQUE,  -- SHA-256 of the device token
	created_at   timestamptz NOT NULL,
	revoked_at   timestamptz,
	-- Presence: the state and time of the latest beat, the latest active
	-- beat, and the seq high-water mark that makes re-sent beats duplicates.
	state        text NOT NULL DEFAULT 'offline' CHECK (state IN ('active', 'idle', 'away', 'offline')),
	last_beat    timestamptz,
	last_active  timestamptz,
	last_seq     bigint NOT NULL DEFAULT 0,
	-- The device's open span, the one the next beat may extend.
	tail_span_id bigint,
	-- The last_beat whose TTL expiry has been announced. The instance whose
	-- conditional UPDATE sets it emits the offline event; nobody else does.
	expired_beat timestamptz,
	updated_at   timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);
CREATE INDEX devices_user_id ON devices (user_id);
-- Every write group updates its devices' rows. No index covers a column
-- those updates change (not even updated_at: the periodic refresh scans
-- this small table instead), and pages keep free room, so PostgreSQL can
-- update the rows in place (HOT) without touching any index.

CREATE TABLE spans (
	id        bigint PRIMARY KEY DEFAULT nextval('span_ids'),
	device_id bigint NOT NULL REFERENCES devices (id),
	state     text NOT NULL CHECK (state IN ('active', 'idle', 'away')),
	start_at  timestamptz NOT NULL,
	end_at    timestamptz NOT NULL,
	closed    boolean NOT NULL DEFAULT false,
	CHECK (end_at >= start_at)
);
ALTER SEQUENCE span_ids OWNED BY spans.id;
-- Range reads ask for spans ending after a point: most reads are recent.
CREATE INDEX spans_device_end ON spans (device_id, end_at);

ALTER TABLE devices ADD FOREIGN KEY (tail_span_id) REFERENCES spans (id);

-- Committed live events, read by every instance after a NOTIFY wake-up.
-- Ids come from one sequence, allocated under a transaction-level advisory
-- lock, so they are committed in id order and a reader that has seen id N
-- has seen everything below it.
CREATE SEQUENCE event_ids;
CREATE TABLE events (
	id         bigint PRIMARY KEY,
	created_at timestamptz NOT NULL DEFAULT now(),
	payload    jsonb NOT NULL
);
ALTER SEQUENCE event_ids OWNED BY events.id;
