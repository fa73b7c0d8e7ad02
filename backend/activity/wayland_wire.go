//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The Wayland wire format, as far as the idle protocols need it. A message
// is a header of two 32-bit words in the host's byte order: the object it is
// sent to or from, then the message size in bytes (header included, always a
// multiple of 4) in the high 16 bits and the opcode in the low 16. The
// arguments follow, each a 32-bit word except strings (a length counting the
// terminating NUL, 0 for a null string, then the bytes padded to 4). None of
// the messages used here carries a file descriptor or an array.
const (
	wlHeaderSize = 8
	// wlMaxMessage bounds one message, as libwayland does on both sides
	// (WL_MAX_MESSAGE_SIZE): a larger size in a header is a broken or
	// hostile peer, refused before anything is read or allocated for it.
	wlMaxMessage = 4096
)

// errWlProtocol is wrapped by every error that means the peer broke the
// protocol (as opposed to the connection failing).
var errWlProtocol = errors.New("wayland protocol error")

// wlOrder is the byte order of the wire: the host's.
var wlOrder = binary.NativeEndian

// wlMessage is one decoded message. body aliases the reader's buffer and is
// valid only until the next read.
type wlMessage struct {
	object uint32
	opcode uint16
	body   []byte
}

// wlReader reads messages into one fixed buffer, so a peer cannot make it
// allocate: whatever it sends, memory stays at one buffer.
type wlReader struct {
	r   io.Reader
	buf [wlMaxMessage]byte
}

// next reads one message. A clean end of the stream between messages is
// io.EOF; an end inside one is io.ErrUnexpectedEOF.
func (r *wlReader) next() (wlMessage, error) {
	if _, err := io.ReadFull(r.r, r.buf[:wlHeaderSize]); err != nil {
		return wlMessage{}, err
	}
	object := wlOrder.Uint32(r.buf[0:])
	word := wlOrder.Uint32(r.buf[4:])
	size, opcode := int(word>>16), uint16(word)
	if size < wlHeaderSize || size > wlMaxMessage || size%4 != 0 {
		return wlMessage{}, fmt.Errorf("message %d to object %d claims %d bytes: %w", opcode, object, size, errWlProtocol)
	}
	if object == 0 {
		return wlMessage{}, fmt.Errorf("message %d to object 0: %w", opcode, errWlProtocol)
	}
	if _, err := io.ReadFull(r.r, r.buf[wlHeaderSize:size]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return wlMessage{}, err
	}
	return wlMessage{object: object, opcode: opcode, body: r.buf[wlHeaderSize:size]}, nil
}

// wlArgs decodes a message's arguments in order. The first failure sticks:
// later reads return zero values and end reports it, so a handler reads
// every argument and checks once.
type wlArgs struct {
	b   []byte
	err error
}

func (a *wlArgs) fail(format string, args ...any) {
	if a.err == nil {
		a.err = fmt.Errorf(format+": %w", append(args, errWlProtocol)...)
	}
}

// uint reads a uint, object or new_id argument.
func (a *wlArgs) uint() uint32 {
	if a.err != nil {
		return 0
	}
	if len(a.b) < 4 {
		a.fail("argument cut short")
		return 0
	}
	v := wlOrder.Uint32(a.b)
	a.b = a.b[4:]
	return v
}

// str reads a string argument without copying it: the bytes alias the
// message (compare them, or copy what must outlive it). A null string reads
// as nil.
func (a *wlArgs) str() []byte {
	size := a.uint()
	if a.err != nil || size == 0 {
		return nil
	}
	// Compared before any conversion: a length near 2^32 must not wrap
	// around on a 32-bit int.
	if uint64(size) > uint64(len(a.b)) || (size+3)&^3 > uint32(len(a.b)) {
		a.fail("string of %d bytes in %d", size, len(a.b))
		return nil
	}
	n, padded := int(size), int((size+3)&^3)
	s := a.b[:n]
	a.b = a.b[padded:]
	if s[n-1] != 0 {
		a.fail("string without its terminating NUL")
		return nil
	}
	return s[:n-1]
}

// end checks that every argument was read and none failed.
func (a *wlArgs) end() error {
	if a.err == nil && len(a.b) != 0 {
		a.fail("%d bytes after the last argument", len(a.b))
	}
	return a.err
}

// wlRequest builds one request. The requests sent here are a few words and
// short interface names, far inside wlMaxMessage.
type wlRequest struct {
	b      []byte
	opcode uint16
}

func newWlRequest(object uint32, opcode uint16) *wlRequest {
	r := &wlRequest{b: make([]byte, wlHeaderSize, 32), opcode: opcode}
	wlOrder.PutUint32(r.b, object)
	return r
}

// uint appends a uint, object or new_id argument.
func (r *wlRequest) uint(v uint32) *wlRequest {
	r.b = wlOrder.AppendUint32(r.b, v)
	return r
}

// str appends a (non-null) string argument.
func (r *wlRequest) str(s string) *wlRequest {
	r.b = wlOrder.AppendUint32(r.b, uint32(len(s)+1))
	r.b = append(r.b, s...)
	r.b = append(r.b, 0)
	for len(r.b)%4 != 0 {
		r.b = append(r.b, 0)
	}
	return r
}

// bytes finishes the header and returns the message.
func (r *wlRequest) bytes() []byte {
	wlOrder.PutUint32(r.b[4:], uint32(len(r.b))<<16|uint32(r.opcode))
	return r.b
}
