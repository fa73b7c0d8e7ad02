package ssestream

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func event(id, name, data string) Frame {
	return Frame{Event: Event{ID: id, Event: name, Data: data}}
}

func keepaliveAt(id string) Frame {
	return Frame{Event: Event{ID: id}, Keepalive: true}
}

// readAll reads frames until an error, which it returns with them.
func readAll(r *Reader) ([]Frame, error) {
	var got []Frame
	for range 1 << 16 { // more frames than any input here can hold
		f, err := r.Next()
		if err != nil {
			return got, err
		}
		got = append(got, f)
	}
	return got, errors.New("the reader never ended")
}

// deliveries are the ways a stream reaches the reader: all at once, a byte
// per read, and through a buffer smaller than most lines (lines then span
// refills, and a CRLF can be split across them).
var deliveries = []struct {
	name string
	open func(string) *Reader
}{
	{"whole", func(s string) *Reader { return NewReader(strings.NewReader(s)) }},
	{"byte by byte", func(s string) *Reader { return NewReader(iotest.OneByteReader(strings.NewReader(s))) }},
	{"16-byte buffer", func(s string) *Reader { return NewReaderSize(iotest.HalfReader(strings.NewReader(s)), 16) }},
}

func TestEventReader(t *testing.T) {
	long := strings.Repeat("x", 100) // longer than the small buffer
	for _, tc := range []struct {
		name, in string
		want     []Frame
		err      error
	}{
		{"one event", "id: 1\nevent: presence\ndata: {\"a\":1}\n\n",
			[]Frame{event("1", "presence", `{"a":1}`)}, io.EOF},
		{"CRLF ends", "id: 2\r\nevent: session\r\ndata: x\r\n\r\n",
			[]Frame{event("2", "session", "x")}, io.EOF},
		{"CR ends", "id: 3\revent: session\rdata: x\r\rdata: y\r\r",
			[]Frame{event("3", "session", "x"), event("3", "message", "y")}, io.EOF},
		{"mixed ends", "data: a\r\ndata: b\rdata: c\n\r\n",
			[]Frame{event("", "message", "a\nb\nc")}, io.EOF},
		{"no space after the colon; only one space is dropped", "event:presence\ndata:  two\n\n",
			[]Frame{event("", "presence", " two")}, io.EOF},
		{"multi-line data is joined with newlines", "data: a\ndata:\ndata: b\n\n",
			[]Frame{event("", "message", "a\n\nb")}, io.EOF},
		{"a field with no colon has an empty value", "data\n\ndata\ndata\n\n",
			[]Frame{event("", "message", ""), event("", "message", "\n")}, io.EOF},
		{"comments are keepalives", ": keepalive\n\n:\nid: 4\n: hi\ndata: x\n\n",
			[]Frame{keepaliveAt(""), keepaliveAt(""), keepaliveAt("4"), event("4", "message", "x")}, io.EOF},
		{"id persists, event type resets", "id: 7\nevent: presence\ndata: a\n\ndata: b\n\n",
			[]Frame{event("7", "presence", "a"), event("7", "message", "b")}, io.EOF},
		{"an id alone sets the id, dispatches nothing", "id: 9\n\ndata: a\n\n",
			[]Frame{event("9", "message", "a")}, io.EOF},
		{"an empty id clears it", "id: 9\ndata: a\n\nid\ndata: b\n\n",
			[]Frame{event("9", "message", "a"), event("", "message", "b")}, io.EOF},
		{"an event type without data is dropped", "event: presence\n\ndata: a\n\n",
			[]Frame{event("", "message", "a")}, io.EOF},
		{"an id with NUL is ignored", "id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n",
			[]Frame{event("1", "message", "a"), event("1", "message", "b")}, io.EOF},
		{"retry and unknown fields change no event", "retry: 1000\nfoo: bar\nData: no\ndata: z\n\n",
			[]Frame{event("", "message", "z")}, io.EOF},
		{"a byte order mark is dropped", "\xEF\xBB\xBFdata: a\n\n",
			[]Frame{event("", "message", "a")}, io.EOF},
		{"only a leading one", "data: a\n\n\xEF\xBB\xBFdata: b\n\n",
			[]Frame{event("", "message", "a")}, io.EOF},
		{"lines longer than the buffer", "id: " + long + "\ndata: " + long + "\r\n\r\n",
			[]Frame{event(long, "message", long)}, io.EOF},
		{"empty stream", "", nil, io.EOF},
		{"no trailing blank line: the event is dropped", "id: 1\ndata: a\n", nil, io.EOF},
		{"cut mid-line", "data: a\n\nid: 1\ndata: b", []Frame{event("", "message", "a")}, io.ErrUnexpectedEOF},
		{"line too long", "data: " + strings.Repeat("x", MaxLine) + "\n\n", nil, ErrTooLong},
		{"event too long", strings.Repeat("data: "+strings.Repeat("x", 1<<16)+"\n", 17) + "\n", nil, ErrTooLong},
	} {
		for _, d := range deliveries {
			t.Run(tc.name+"/"+d.name, func(t *testing.T) {
				got, err := readAll(d.open(tc.in))
				if !errors.Is(err, tc.err) {
					t.Errorf("ended with %v, want %v", err, tc.err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("frames\n%+v\nwant\n%+v", got, tc.want)
				}
			})
		}
	}
}

func TestEventReaderRetryAndLastID(t *testing.T) {
	r := NewReader(strings.NewReader("retry: 1500\n\nretry: 2x\nretry: -1\nid: 5\ndata: a\n\n"))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Retry() != 1500*time.Millisecond {
		t.Errorf("Retry = %v, want 1.5s (a value not all digits is ignored)", r.Retry())
	}
	if r.LastEventID() != "5" {
		t.Errorf("LastEventID = %q", r.LastEventID())
	}
}

// TestEventReaderDispatchesWithoutWaiting: an event is returned as soon as
// its blank line arrives, even when that line ends in a bare "\r" whose
// possible "\n" has not come yet. The pipe would block a reader that looked
// ahead.
func TestEventReaderDispatchesWithoutWaiting(t *testing.T) {
	for _, in := range []string{"data: a\n\n", "data: a\r\r", "data: a\r\n\r\n", ": keepalive\r"} {
		pr, pw := io.Pipe()
		r := NewReader(pr)
		go pw.Write([]byte(in)) // and nothing after it, until the pipe is closed
		got := make(chan error, 1)
		go func() { _, err := r.Next(); got <- err }()
		select {
		case err := <-got:
			if err != nil {
				t.Errorf("%q: %v", in, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%q: no frame while the stream stays open", in)
			pw.Close()
			<-got // the close frees the stuck read
		}
		pw.Close()
	}
}

func TestEventReaderSmallBufferKeepsLittle(t *testing.T) {
	// A huge event once must not leave a megabyte behind in an idle reader.
	in := "data: " + strings.Repeat("x", 512<<10) + "\n\n"
	r := NewReaderSize(strings.NewReader(in), 64)
	if f, err := r.Next(); err != nil || len(f.Data) != 512<<10 {
		t.Fatalf("Next: %d bytes, %v", len(f.Data), err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("then %v", err)
	}
	if cap(r.line) > 64<<10 || cap(r.data) > 64<<10 {
		t.Errorf("kept %d line bytes and %d data bytes", cap(r.line), cap(r.data))
	}
}

// FuzzEventReader checks the reader against a plain reading of the grammar
// over the whole input at once, and that how the bytes arrive (one by one,
// through a tiny buffer) changes nothing. As a normal test it runs the seeds.
func FuzzEventReader(f *testing.F) {
	for _, s := range []string{
		"id: 1\nevent: presence\ndata: {\"a\":1}\n\n",
		"data: a\r\ndata: b\rdata: c\n\r\n",
		": keepalive\n\nid\n\nid: x\x00\ndata\n\n",
		"\xEF\xBB\xBFretry: 10\nevent:x\ndata:  y\r\r",
		"data: a\n\nid: 1\ndata: b",
		"\r\n\r\r\n\n:\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		want, wantErr := referenceParse(in)
		for _, r := range []*Reader{
			NewReader(bytes.NewReader(in)),
			NewReaderSize(iotest.OneByteReader(bytes.NewReader(in)), 16),
		} {
			got, err := readAll(r)
			if err != wantErr {
				t.Fatalf("ended with %v, want %v", err, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("frames\n%+v\nwant\n%+v", got, want)
			}
		}
	})
}

// referenceParse is the grammar read the slow, obvious way: split the whole
// input into lines, then interpret them. Inputs are small, so no limits.
func referenceParse(in []byte) ([]Frame, error) {
	var (
		frames           []Frame
		id, name         string
		data             []string
		hasData, started bool
	)
	for len(in) > 0 {
		i := bytes.IndexAny(in, "\r\n")
		if i < 0 {
			return frames, io.ErrUnexpectedEOF
		}
		line := string(in[:i])
		if in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n' {
			i++
		}
		in = in[i+1:]
		if !started {
			started = true
			line = strings.TrimPrefix(line, "\xEF\xBB\xBF")
		}
		switch field, value, _ := strings.Cut(line, ":"); {
		case line == "":
			if hasData {
				typ := name
				if typ == "" {
					typ = "message"
				}
				frames = append(frames, event(id, typ, strings.Join(data, "\n")))
			}
			name, data, hasData = "", nil, false
		case field == "":
			frames = append(frames, keepaliveAt(id))
		default:
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				name = value
			case "data":
				data, hasData = append(data, value), true
			case "id":
				if !strings.Contains(value, "\x00") {
					id = value
				}
			}
		}
	}
	return frames, io.EOF
}
