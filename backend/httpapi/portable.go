package httpapi

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/importer"
	"github.com/lastseen/lastseen/backend/presence"
)

// Your data out and back in: GET /api/v1/export and POST /api/v1/import.

// MaxImportBytes caps an import's body: years of one person's history fit
// with room to spare, and the parse stays a few times this in memory.
const MaxImportBytes = 32 << 20

// exportPageDays is how much history one read of an export covers. Pages
// are cut at the user's midnights, so each day's totals come from the one
// page that holds the whole day.
const exportPageDays = 31

// ImportResponse is the answer to POST /api/v1/import.
type ImportResponse struct {
	Format  importer.Format  `json:"format"`
	Added   int              `json:"added"`
	Skipped int              `json:"skipped"`
	Devices []ImportedDevice `json:"devices"`
}

// ImportedDevice is what an import did to one device.
type ImportedDevice struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Created bool   `json:"created"` // the import added the device
	Added   int    `json:"added"`
	Skipped int    `json:"skipped"`
}

// getExport is GET /api/v1/export[?format=csv]: every span of the user's
// devices and their daily totals, streamed a page of history at a time so
// years of it never sit in memory at once.
func (s *Server) getExport(w http.ResponseWriter, r *http.Request, c caller) error {
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" {
		return presence.Errorf(presence.EINVALID, "format must be json or csv, not %q", format)
	}
	ctx := r.Context()
	u, err := s.store.UserByID(ctx, c.UserID)
	if err != nil {
		return fmt.Errorf("user %d: %w", c.UserID, err)
	}
	devs, err := s.store.Devices(ctx, c.UserID)
	if err != nil {
		return fmt.Errorf("devices of user %d: %w", c.UserID, err)
	}
	start, err := s.store.HistoryStart(ctx, c.UserID)
	if err != nil {
		return fmt.Errorf("history of user %d: %w", c.UserID, err)
	}
	now := s.now().UTC()
	loc := u.Location()
	ext, ctype := "json", "application/json; charset=utf-8"
	if format == "csv" {
		ext, ctype = "csv", "text/csv; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="lastseen-%s-%s.%s"`, u.Handle, now.In(loc).Format(time.DateOnly), ext))
	h.Set("Cache-Control", "no-store")
	bw := bufio.NewWriterSize(w, 32<<10)
	if format == "csv" {
		err = s.exportCSV(ctx, bw, u, devs, start, now)
	} else {
		err = s.exportJSON(ctx, bw, u, devs, start, now)
	}
	if err != nil {
		// Unless the response has begun, the error is answered as JSON.
		h.Del("Content-Disposition")
		return err
	}
	return bw.Flush()
}

// walkHistory reads the user's spans a page at a time, oldest first, from
// the day holding start, and hands each page's new spans (those starting in
// it; every span once) and the page's days to fn.
func (s *Server) walkHistory(ctx context.Context, u presence.User, start, now time.Time, fn func(spans []presence.Span, days []presence.DayTotal) error) error {
	if start.IsZero() {
		return nil
	}
	loc := u.Location()
	t := start.In(loc)
	from := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	for {
		to := time.Date(from.Year(), from.Month(), from.Day()+exportPageDays, 0, 0, 0, 0, loc)
		last := to.After(now)
		q := presence.SpanQuery{UserID: u.ID, From: from, To: to}
		if last {
			q.To = time.Time{} // and whatever a skewed clock put after now
		}
		spans, err := s.store.Spans(ctx, q)
		if err != nil {
			return fmt.Errorf("export spans of user %d: %w", u.ID, err)
		}
		dayTo := to.Add(-time.Nanosecond)
		if last {
			dayTo = now
			for _, sp := range spans {
				if sp.End.After(dayTo) {
					dayTo = sp.End
				}
			}
		}
		days := presence.DailyTotals(spans, loc, from, dayTo)
		fresh := spans[:0]
		for _, sp := range spans {
			if !sp.Start.Before(from) { // earlier ones went out with an earlier page
				fresh = append(fresh, sp)
			}
		}
		if err := fn(fresh, days); err != nil {
			return err
		}
		if last {
			return nil
		}
		from = to
	}
}

func (s *Server) exportJSON(ctx context.Context, w *bufio.Writer, u presence.User, devs []presence.DeviceStatus, start, now time.Time) error {
	head := struct {
		Version    int                     `json:"version"`
		ExportedAt time.Time               `json:"exported_at"`
		User       importer.ExportUser     `json:"user"`
		Devices    []importer.ExportDevice `json:"devices"`
	}{
		Version:    importer.ExportVersion,
		ExportedAt: now,
		User:       importer.ExportUser{Handle: u.Handle, Name: u.Name, TZ: u.TZ},
		Devices:    make([]importer.ExportDevice, 0, len(devs)),
	}
	for _, d := range devs {
		head.Devices = append(head.Devices, importer.ExportDevice{ID: d.ID, Name: d.Name, OS: d.OS})
	}
	b, err := json.Marshal(head)
	if err != nil {
		return err
	}
	// The head object, reopened to stream the two arrays after it.
	w.Write(b[:len(b)-1])
	w.WriteString(`,"spans":[`)
	var daily []presence.DayTotal
	n := 0
	window := s.store.Pulse().Window()
	err = s.walkHistory(ctx, u, start, now, func(spans []presence.Span, days []presence.DayTotal) error {
		for _, sp := range spans {
			sp.EndReason = sp.Ended(sp.OpenAt(now, window)) // a tail gone silent says so
			b, err := json.Marshal(importer.ExportSpanOf(sp))
			if err != nil {
				return err
			}
			if n > 0 {
				w.WriteByte(',')
			}
			w.WriteString("\n")
			if _, err := w.Write(b); err != nil {
				return err // the client went away
			}
			n++
		}
		daily = appendDays(daily, days)
		return nil
	})
	if err != nil {
		return err
	}
	if daily == nil {
		daily = []presence.DayTotal{}
	}
	b, err = json.Marshal(daily)
	if err != nil {
		return err
	}
	w.WriteString("\n],\"daily\":")
	w.Write(b)
	_, err = w.WriteString("}\n")
	return err
}

// appendDays keeps the days with any presence: a year of history is a few
// hundred small entries, and empty days say nothing.
func appendDays(out, days []presence.DayTotal) []presence.DayTotal {
	for _, d := range days {
		if d.ActiveS != 0 || d.IdleS != 0 || d.AwayS != 0 {
			out = append(out, d)
		}
	}
	return out
}

func (s *Server) exportCSV(ctx context.Context, w *bufio.Writer, u presence.User, devs []presence.DeviceStatus, start, now time.Time) error {
	names := make(map[int64]string, len(devs))
	for _, d := range devs {
		names[d.ID] = d.Name
	}
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"device", "state", "why", "start", "end", "duration_s", "end_reason", "replayed"}); err != nil {
		return err
	}
	window := s.store.Pulse().Window()
	err := s.walkHistory(ctx, u, start, now, func(spans []presence.Span, _ []presence.DayTotal) error {
		for _, sp := range spans {
			sp.EndReason = sp.Ended(sp.OpenAt(now, window))
			name, ok := names[sp.DeviceID]
			if !ok {
				name = "device " + strconv.FormatInt(sp.DeviceID, 10) // revoked since
			}
			x := importer.ExportSpanOf(sp)
			if err := cw.Write([]string{
				csvCell(name), string(x.State), string(x.Why),
				x.Start.Format(time.RFC3339), x.End.Format(time.RFC3339), strconv.FormatInt(x.DurationS, 10),
				string(x.EndReason), strconv.FormatBool(x.Replayed),
			}); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// csvCell defuses a cell a spreadsheet would run as a formula: one that
// starts with = + - @ (or a tab or carriage return, which some strip
// first) gets a leading apostrophe, which spreadsheets show as text.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// postImport is POST /api/v1/import[?device=ID | ?device_name=NAME]: a
// Lastseen or ActivityWatch export into the user's history. With device or
// device_name every span goes to that one device (device_name creates it
// when the user has none of that name); with neither, each device of the
// file goes to the user's device of the same name, created when missing
// (an ActivityWatch bucket is named by its host).
func (s *Server) postImport(w http.ResponseWriter, r *http.Request, c caller) error {
	q := r.URL.Query()
	devParam, nameParam := q.Get("device"), q.Get("device_name")
	if devParam != "" && nameParam != "" {
		return presence.Errorf(presence.EINVALID, "give device or device_name, not both")
	}
	var (
		target     int64
		targetName string
	)
	ctx := r.Context()
	switch {
	case devParam != "":
		id, err := strconv.ParseInt(devParam, 10, 64)
		if err != nil || id <= 0 {
			return presence.Errorf(presence.EINVALID, "device must be a device id (a positive integer), not %q", devParam)
		}
		if err := s.ownDevice(ctx, c.UserID, id); err != nil {
			return err
		}
		target = id
	case nameParam != "":
		n, err := presence.NormalizeDeviceName(nameParam)
		if err != nil {
			return presence.Errorf(presence.EINVALID, "device_name: %s", presence.ErrorMessage(err))
		}
		targetName = n
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxImportBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return presence.Errorf(presence.ETOOLARGE, "an import is at most %s: split the file", byteSize(MaxImportBytes))
		}
		return bodyReadError(err, MaxImportBytes) // cut off or too slow: the caller's 400/408
	}
	file, err := importer.Parse(body, importer.Options{Now: s.now})
	if err != nil {
		return err
	}
	res := ImportResponse{Format: file.Format, Devices: []ImportedDevice{}}
	devs := newDeviceFinder(s.store, c.UserID)
	type job struct {
		dev   ImportedDevice
		spans []presence.Span
	}
	var jobs []job
	if target != 0 || targetName != "" {
		var all []presence.Span
		for _, src := range file.Sources {
			all = append(all, src.Spans...)
		}
		d := ImportedDevice{ID: target}
		if target == 0 {
			if d, err = devs.find(ctx, targetName); err != nil {
				return err
			}
		} else if d.Name, err = devs.name(ctx, target); err != nil {
			return err
		}
		jobs = append(jobs, job{d, all})
	} else {
		for _, src := range file.Sources {
			d, err := devs.find(ctx, src.Name)
			if err != nil {
				return err
			}
			jobs = append(jobs, job{d, src.Spans})
		}
	}
	for _, j := range jobs {
		added, skipped, err := s.store.ImportSpans(ctx, j.dev.ID, j.spans)
		if err != nil {
			return fmt.Errorf("import into device %d: %w", j.dev.ID, err)
		}
		j.dev.Added, j.dev.Skipped = added, skipped
		res.Added += added
		res.Skipped += skipped
		res.Devices = append(res.Devices, j.dev)
	}
	s.log.Info("import", attrUser, c.UserID, "format", string(file.Format), "added", res.Added, "skipped", res.Skipped)
	writeJSON(w, http.StatusOK, res)
	return nil
}

// deviceFinder finds a user's devices by name, creating missing ones, and
// remembers what it found so two sources of one name share a device.
type deviceFinder struct {
	store  presence.Store
	userID int64
	known  map[string]ImportedDevice
	loaded bool
	list   []presence.DeviceStatus
}

func newDeviceFinder(st presence.Store, userID int64) *deviceFinder {
	return &deviceFinder{store: st, userID: userID, known: map[string]ImportedDevice{}}
}

func (f *deviceFinder) load(ctx context.Context) error {
	if f.loaded {
		return nil
	}
	list, err := f.store.Devices(ctx, f.userID)
	if err != nil {
		return fmt.Errorf("devices of user %d: %w", f.userID, err)
	}
	f.list, f.loaded = list, true
	return nil
}

// find is the user's device named name (the oldest, if several), created
// when there is none.
func (f *deviceFinder) find(ctx context.Context, name string) (ImportedDevice, error) {
	if d, ok := f.known[name]; ok {
		return d, nil
	}
	if err := f.load(ctx); err != nil {
		return ImportedDevice{}, err
	}
	d := ImportedDevice{Name: name}
	for _, ds := range f.list {
		if ds.Name == name && (d.ID == 0 || ds.ID < d.ID) {
			d.ID = ds.ID
		}
	}
	if d.ID == 0 {
		// Its token is dropped: the device holds history, and a machine
		// that should beat as it gets a token of its own from the list.
		nd, _, err := f.store.CreateDevice(ctx, f.userID, name)
		if err != nil {
			return ImportedDevice{}, fmt.Errorf("create device %q: %w", name, err)
		}
		d.ID, d.Created = nd.ID, true
	}
	f.known[name] = d
	return d, nil
}

func (f *deviceFinder) name(ctx context.Context, id int64) (string, error) {
	if err := f.load(ctx); err != nil {
		return "", err
	}
	for _, ds := range f.list {
		if ds.ID == id {
			return ds.Name, nil
		}
	}
	return "", presence.Errorf(presence.ENOTFOUND, "no device %d", id)
}
