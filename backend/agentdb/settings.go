package agentdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Setting keys. Values are text: durations in Go syntax ("5m0s"), times in
// RFC 3339, booleans as "true"/"false".
const (
	KeyServerURL        = "server_url"         // remote service URL; empty or unset = local mode
	KeyDeviceToken      = "device_token"       // the remote service's device token
	KeyIdleAfter        = "idle_after"         // idle threshold
	KeyInterval         = "interval"           // beat interval
	KeyStartAtLogin     = "start_at_login"     // login item wanted (default true)
	KeyMode             = "mode"               // manual mode name
	KeyModeUntil        = "mode_until"         // when a timed mode ends
	KeyLocalUserToken   = "local_user_token"   // the embedded service's user token
	KeyLocalDeviceToken = "local_device_token" // the embedded service's device token
	// KeyCountCallsAndMedia: a call or a video keeps the user present
	// without input (default false).
	KeyCountCallsAndMedia = "count_calls_and_media"
	// KeyNotifications: show a notification when a watched person comes
	// online (default true; watching someone is the opt-in, this silences
	// them all).
	KeyNotifications = "notifications"
)

// Settings are the agent's persisted settings. Unset durations are zero
// (the caller's defaults apply); StartAtLogin defaults to true, as a
// presence agent that does not start with the session is of little use.
type Settings struct {
	ServerURL        string
	DeviceToken      string
	IdleAfter        time.Duration
	Interval         time.Duration
	StartAtLogin     bool
	Mode             string
	ModeUntil        time.Time
	LocalUserToken   string
	LocalDeviceToken string
	// CountCallsAndMedia counts calls and videos as present (opt-in).
	CountCallsAndMedia bool
	// Notifications shows watched people coming online (default true).
	Notifications bool
}

// Settings reads every setting. A value that does not parse is an error that
// names the key, rather than a silent default.
func (db *DB) Settings(ctx context.Context) (Settings, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT key, value FROM settings`)
	if err != nil {
		return Settings{}, fmt.Errorf("read settings: %w", err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return Settings{}, fmt.Errorf("read settings: %w", err)
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		return Settings{}, fmt.Errorf("read settings: %w", err)
	}
	s := Settings{
		ServerURL:        m[KeyServerURL],
		DeviceToken:      m[KeyDeviceToken],
		Mode:             m[KeyMode],
		LocalUserToken:   m[KeyLocalUserToken],
		LocalDeviceToken: m[KeyLocalDeviceToken],
		StartAtLogin:     true,
		Notifications:    true,
	}
	if s.IdleAfter, err = parseDuration(m, KeyIdleAfter); err != nil {
		return Settings{}, err
	}
	if s.Interval, err = parseDuration(m, KeyInterval); err != nil {
		return Settings{}, err
	}
	if v, ok := m[KeyStartAtLogin]; ok {
		if s.StartAtLogin, err = strconv.ParseBool(v); err != nil {
			return Settings{}, fmt.Errorf("setting %s: %q is not a boolean", KeyStartAtLogin, v)
		}
	}
	if v, ok := m[KeyCountCallsAndMedia]; ok {
		if s.CountCallsAndMedia, err = strconv.ParseBool(v); err != nil {
			return Settings{}, fmt.Errorf("setting %s: %q is not a boolean", KeyCountCallsAndMedia, v)
		}
	}
	if v, ok := m[KeyNotifications]; ok {
		if s.Notifications, err = strconv.ParseBool(v); err != nil {
			return Settings{}, fmt.Errorf("setting %s: %q is not a boolean", KeyNotifications, v)
		}
	}
	if v := m[KeyModeUntil]; v != "" {
		if s.ModeUntil, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return Settings{}, fmt.Errorf("setting %s: %q is not an RFC 3339 time", KeyModeUntil, v)
		}
	}
	return s, nil
}

func parseDuration(m map[string]string, key string) (time.Duration, error) {
	v, ok := m[key]
	if !ok || v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("setting %s: %q is not a duration", key, v)
	}
	return d, nil
}

// SetServer stores the remote service's URL and device token together; an
// empty URL means local mode (and clears the token).
func (db *DB) SetServer(ctx context.Context, serverURL, token string) error {
	if serverURL == "" {
		token = ""
	}
	return db.setSettings(ctx, map[string]string{KeyServerURL: serverURL, KeyDeviceToken: token})
}

// SetIdleAfter stores the idle threshold.
func (db *DB) SetIdleAfter(ctx context.Context, d time.Duration) error {
	return db.setSettings(ctx, map[string]string{KeyIdleAfter: d.String()})
}

// SetInterval stores the beat interval.
func (db *DB) SetInterval(ctx context.Context, d time.Duration) error {
	return db.setSettings(ctx, map[string]string{KeyInterval: d.String()})
}

// SetStartAtLogin stores whether the login item is wanted.
func (db *DB) SetStartAtLogin(ctx context.Context, on bool) error {
	return db.setSettings(ctx, map[string]string{KeyStartAtLogin: strconv.FormatBool(on)})
}

// SetCountCallsAndMedia stores whether calls and videos count as present.
func (db *DB) SetCountCallsAndMedia(ctx context.Context, on bool) error {
	return db.setSettings(ctx, map[string]string{KeyCountCallsAndMedia: strconv.FormatBool(on)})
}

// SetNotifications stores whether watched people coming online are shown.
func (db *DB) SetNotifications(ctx context.Context, on bool) error {
	return db.setSettings(ctx, map[string]string{KeyNotifications: strconv.FormatBool(on)})
}

// SetMode stores the manual mode and when it ends (zero: no end), together.
func (db *DB) SetMode(ctx context.Context, mode string, until time.Time) error {
	u := ""
	if !until.IsZero() {
		u = until.UTC().Format(time.RFC3339Nano)
	}
	return db.setSettings(ctx, map[string]string{KeyMode: mode, KeyModeUntil: u})
}

// SetLocalTokens stores the embedded service's user and device tokens.
func (db *DB) SetLocalTokens(ctx context.Context, userToken, deviceToken string) error {
	return db.setSettings(ctx, map[string]string{KeyLocalUserToken: userToken, KeyLocalDeviceToken: deviceToken})
}

// Setting reads one raw setting.
func (db *DB) Setting(ctx context.Context, key string) (value string, ok bool, err error) {
	err = db.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&value)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read setting %s: %w", key, err)
	}
	return value, true, nil
}

// SetSetting writes one raw setting.
func (db *DB) SetSetting(ctx context.Context, key, value string) error {
	return db.setSettings(ctx, map[string]string{key: value})
}

// DeleteSetting removes one setting (its default applies again).
func (db *DB) DeleteSetting(ctx context.Context, key string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) (func(), error) {
		_, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE key = ?`, key)
		return nil, err
	})
	if err != nil {
		return fmt.Errorf("delete setting %s: %w", key, err)
	}
	return nil
}

// setSettings writes several settings in one transaction, so pairs that
// belong together (URL and token, mode and its end) never tear.
func (db *DB) setSettings(ctx context.Context, kv map[string]string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) (func(), error) {
		for k, v := range kv {
			if err := putSetting(ctx, tx, k, v); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	return nil
}

func putSetting(ctx context.Context, tx *sql.Tx, key, value string) error {
	if key == "" {
		return fmt.Errorf("setting key is required")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("write setting %s: %w", key, err)
	}
	return nil
}
