-- How much a public status shows ('' = the default level), and who wants to
-- be told when whom comes online.

ALTER TABLE users ADD COLUMN public_detail TEXT NOT NULL DEFAULT ''
	CHECK (public_detail IN ('', 'online', 'state', 'last_seen'));

CREATE TABLE watches (
	user_id    INTEGER NOT NULL REFERENCES users (id),
	watched_id INTEGER NOT NULL REFERENCES users (id),
	created_ns INTEGER NOT NULL,
	PRIMARY KEY (user_id, watched_id)
) WITHOUT ROWID;
CREATE INDEX watches_watched ON watches (watched_id);
