// Package ssestream reads Server-Sent Events: the one parser the Go client,
// the window's event pump and the load tool share. It imports only the
// standard library, so the window links it without the service's code.
package ssestream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// MaxLine bounds one line of an event stream, and the data of one event,
// so a broken or hostile server cannot make a reader buffer without end.
// Presence events are a few hundred bytes.
const MaxLine = 1 << 20

// ErrTooLong is the error Reader.Next returns for a line, or an
// event's data, longer than MaxLine.
var ErrTooLong = fmt.Errorf("event stream: line or event longer than %d bytes", MaxLine)

// Event is one event of a stream: its id (the last one seen, as
// Last-Event-ID), its type and its data.
type Event struct {
	ID    string
	Event string
	Data  string
}

// A Frame is what Reader.Next reads: an event, or a keepalive.
type Frame struct {
	Event // the event; only ID is set on a keepalive
	// Keepalive marks a comment line (": keepalive"): no event, but proof
	// the stream is alive, which a reader watching for silence needs.
	Keepalive bool
}

// Reader parses a text/event-stream (the WHATWG "event stream
// interpretation"): "field: value" lines ended by CRLF, LF or CR; data lines
// joined with "\n"; a blank line dispatching the event, whose type defaults
// to "message"; an id that persists across events, as Last-Event-ID does;
// comments returned as keepalives; unknown fields skipped. retry: is kept
// for Retry but changes nothing else. It is the one SSE parser here: the Go client, the window's
// event pump and the load tool all read through it. Not safe for concurrent
// use.
type Reader struct {
	br     *bufio.Reader
	line   []byte // a line that spans buffer refills; reused
	data   []byte // the event's data lines, each followed by "\n"
	name   []byte // the event's type
	lastID string
	retry  time.Duration
	skipLF bool // the last line ended in "\r": a "\n" next belongs to it
	begun  bool // past the first line, where a byte order mark may be
}

// NewReader returns a reader of r with a 4 KiB buffer.
func NewReader(r io.Reader) *Reader { return NewReaderSize(r, 4096) }

// NewReaderSize returns a reader of r whose buffer holds size bytes
// (at least 16). Lines longer than the buffer still parse, up to
// MaxLine; a small buffer keeps thousands of idle readers cheap.
func NewReaderSize(r io.Reader, size int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, size)}
}

// Next blocks for the next event or keepalive. At the end of the stream it
// returns io.EOF, dropping an event that was not ended by a blank line (as
// a browser does), or io.ErrUnexpectedEOF when the stream stopped mid-line.
// A line or event over MaxLine is ErrTooLong; the reader is not
// usable after an error.
func (r *Reader) Next() (Frame, error) {
	for {
		line, err := r.readLine()
		if err != nil {
			return Frame{}, err
		}
		if len(line) == 0 {
			if len(r.data) == 0 { // nothing to dispatch: an id alone, or a bare blank line
				r.name = r.name[:0]
				continue
			}
			ev := Event{ID: r.lastID, Event: "message", Data: string(r.data[:len(r.data)-1])}
			if len(r.name) > 0 {
				ev.Event = string(r.name)
			}
			r.data, r.name = shrink(r.data), r.name[:0]
			return Frame{Event: ev}, nil
		}
		if line[0] == ':' {
			return Frame{Event: Event{ID: r.lastID}, Keepalive: true}, nil
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "event":
			r.name = append(r.name[:0], value...)
		case "data":
			if len(r.data)+len(value)+1 > MaxLine {
				return Frame{}, ErrTooLong
			}
			r.data = append(append(r.data, value...), '\n')
		case "id":
			if bytes.IndexByte(value, 0) < 0 && string(value) != r.lastID {
				r.lastID = string(value)
			}
		case "retry":
			if ms, ok := digits(value); ok {
				r.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

// digits parses a value of ASCII digits only (the grammar's retry), without
// overflowing.
func digits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 12 { // 10^12 ms is three decades: plenty
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// shrink empties b for reuse, letting go of it if one huge line or event
// made it big: an idle reader should not keep a megabyte.
func shrink(b []byte) []byte {
	if cap(b) > 64<<10 {
		return nil
	}
	return b[:0]
}

// SetLastEventID sets the id a stream resumed from: it stands until the
// stream names a newer one.
func (r *Reader) SetLastEventID(id string) { r.lastID = id }

// LastEventID is the id of the last event read: pass it as Last-Event-ID to
// resume after it.
func (r *Reader) LastEventID() string { return r.lastID }

// Retry is the reconnect delay the server last asked for with retry:, zero
// if it did not.
func (r *Reader) Retry() time.Duration { return r.retry }

// readLine returns the next line without its end. The slice is valid until
// the next call: a line that fits the buffer is not copied.
func (r *Reader) readLine() ([]byte, error) {
	r.line = shrink(r.line)
	for {
		// Peek(1) waits for at least one byte; then all buffered bytes are
		// looked at. A "\r" that was the last byte seen leaves its possible
		// "\n" to be skipped here, so a CR-ended line dispatches without
		// waiting to see what follows it.
		if _, err := r.br.Peek(1); err != nil {
			if len(r.line) > 0 && errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("event stream: %w", err)
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		if r.skipLF {
			r.skipLF = false
			if buf[0] == '\n' {
				_, _ = r.br.Discard(1) // within Buffered: cannot fail
				continue
			}
		}
		i := bytes.IndexAny(buf, "\r\n")
		if i < 0 {
			if len(r.line)+len(buf) > MaxLine {
				return nil, ErrTooLong
			}
			r.line = append(r.line, buf...)
			_, _ = r.br.Discard(len(buf))
			continue
		}
		if len(r.line)+i > MaxLine {
			return nil, ErrTooLong
		}
		end := i + 1
		if buf[i] == '\r' {
			switch {
			case end < len(buf) && buf[end] == '\n':
				end++
			case end == len(buf):
				r.skipLF = true
			}
		}
		line := buf[:i]
		if len(r.line) > 0 {
			r.line = append(r.line, line...)
			line = r.line
		}
		// Discarding buffered bytes reads nothing, so line stays intact
		// until the next Peek.
		_, _ = r.br.Discard(end)
		if !r.begun {
			r.begun = true
			line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
		}
		return line, nil
	}
}
