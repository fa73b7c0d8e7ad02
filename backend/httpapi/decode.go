package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lastseen/lastseen/backend/apierror"
	"github.com/lastseen/lastseen/backend/presence"
)

// maxBodyBytes caps every request body but a heartbeat batch.
const maxBodyBytes = 64 << 10

// decodeBody reads r's body (at most limit bytes) into dst strictly: exactly
// one JSON value, no unknown fields, no wrong types. Every refusal is an
// EINVALID (or ETOOLARGE) error whose message names the offending field, so
// an agent author can fix a request from the answer alone.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return bodyReadError(err, limit)
	}
	return decodeStrict(body, dst)
}

// bodyReadError says why a body could not be read. Each cause is the
// caller's (too big, too slow, cut off), never the service's: none is a 500
// or an error in the log, since anyone can cause them without signing in.
func bodyReadError(err error, limit int64) error {
	var (
		tooLarge *http.MaxBytesError
		netErr   net.Error
	)
	switch {
	case errors.As(err, &tooLarge):
		return presence.Errorf(presence.ETOOLARGE, "body exceeds %s", byteSize(limit))
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		// The server's read timeout passed with the body still coming.
		return apierror.WithStatus(http.StatusRequestTimeout,
			presence.Errorf(presence.EINVALID, "the request body did not arrive in time"))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return presence.Errorf(presence.EINVALID, "the request body ended early (connection closed before its declared length)")
	}
	// A reset connection, a broken chunked encoding: either way the
	// body is the caller's problem.
	return presence.Errorf(presence.EINVALID, "the request body could not be read: %s", clip(err.Error(), maxPathLen))
}

// decodeStrict decodes body into dst (see decodeBody). A body past the
// shape limits (checkShape) is refused before decoding.
func decodeStrict(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return presence.Errorf(presence.EINVALID, "body is empty: want a JSON object")
	}
	if err := checkShape(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return explainDecode(body, dst, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return presence.Errorf(presence.EINVALID, "body must hold exactly one JSON value (more follows at byte %d)", dec.InputOffset())
	}
	return nil
}

// explainDecode turns encoding/json's errors into messages that name the
// field by its path (beats[3].at), which encoding/json itself only does in
// part: it drops array indexes and says nothing for a bad time. Naming the
// field walks the body once more (walkJSON), in time and memory
// proportional to the body.
func explainDecode(body []byte, dst any, err error) error {
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		parse   *time.ParseError
		unknown = strings.TrimPrefix(err.Error(), `json: unknown field "`)
	)
	// time.Time's own decoder names no field, whether the value is not a
	// string or not a time: find the first value bound for a time that is bad.
	if errors.As(err, &parse) || strings.Contains(err.Error(), "Time.UnmarshalJSON") {
		if path, value := pathOfBadTime(body, dst); path != "" {
			return presence.Errorf(presence.EINVALID, "field %q must be an RFC 3339 time such as 2026-11-25T09:00:00Z, not %s", path, value)
		}
		return presence.Errorf(presence.EINVALID, "a time field must be an RFC 3339 time such as 2026-11-25T09:00:00Z")
	}
	switch {
	case errors.As(err, &syntax):
		return presence.Errorf(presence.EINVALID, "malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return presence.Errorf(presence.EINVALID, "malformed JSON: the body ends before its value does")
	case errors.As(err, &typ):
		path := pathAt(body, typ.Offset)
		if path == "" {
			return presence.Errorf(presence.EINVALID, "body must be %s, not %s", jsonKind(typ.Type), typ.Value)
		}
		return presence.Errorf(presence.EINVALID, "field %q must be %s, not %s", path, jsonKind(typ.Type), typ.Value)
	case unknown != err.Error():
		name := strings.TrimSuffix(unknown, `"`)
		if path := pathOfKey(body, dst, name); path != "" {
			name = path
		}
		return presence.Errorf(presence.EINVALID, "unknown field %q", clip(name, maxPathLen))
	}
	return presence.Errorf(presence.EINVALID, "malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names what JSON a Go type wants.
func jsonKind(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() {
		return "an RFC 3339 time string"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "something else"
}

// Shape limits, checked before a body is decoded. A heartbeat batch is
// three levels deep (batch, beats, beat) and no other body is more than
// two; a batch holds at most presence.MaxBatchBeats beats. Anything past
// these is refused in one cheap pass, so no body makes the decoder, or the
// error explanation below, work or allocate in proportion to its depth or
// to a mass of tiny elements.
const (
	maxDepth = 16
	// maxArrayLen leaves room above MaxBatchBeats, so a batch a little too
	// big still hears how many beats it may hold.
	maxArrayLen = 4 * presence.MaxBatchBeats
)

// checkShape refuses a body that nests deeper than maxDepth or has an array
// of more than maxArrayLen elements. It is one pass over the bytes (strings
// skipped) and allocates nothing.
func checkShape(body []byte) error {
	var (
		depth  int
		array  [maxDepth + 1]bool // whether each open container is an array
		commas [maxDepth + 1]int  // its separators so far
	)
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			i = stringEnd(body, i)
		case '{', '[':
			if depth++; depth > maxDepth {
				return presence.Errorf(presence.EINVALID, "body nests deeper than %d levels (at byte %d); a request needs at most 3", maxDepth, i)
			}
			array[depth], commas[depth] = body[i] == '[', 0
		case ',':
			if depth > 0 && array[depth] {
				if commas[depth]++; commas[depth] >= maxArrayLen {
					return presence.Errorf(presence.ETOOLARGE, "an array in the body holds more than %d elements (at byte %d): split it", maxArrayLen, i)
				}
			}
		case '}', ']':
			depth = max(depth-1, 0)
		}
	}
	return nil
}

// stringEnd is the index of the quote that closes the JSON string opening
// at body[i], or len(body) when it is not closed.
func stringEnd(body []byte, i int) int {
	for i++; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(body)
}

// tokenKind is what walkJSON found.
type tokenKind uint8

const (
	tokKey    tokenKind = iota // an object member's name (not a value)
	tokObject                  // the start of an object
	tokArray                   // the start of an array
	tokString
	tokNumber
	tokBool
	tokNull
)

// container is one open container on walkJSON's stack: a path segment, kept as
// the member name's raw bytes or the element index, never as a string.
type container struct {
	array bool
	index int          // array: the current element
	key   []byte       // object: the current member's name as in the body, quotes off
	atKey bool         // object: the next string is a member name
	typ   reflect.Type // the container's Go type, nil when unknown
}

// cursor is walkJSON's position: the containers it is in.
type cursor struct {
	stack []container
	root  reflect.Type
	types typeCache
}

// maxPathLen bounds a path quoted back in an error message: member names
// come from the caller and may be huge.
const maxPathLen = 200

// path renders the position as it is named in errors (beats[3].at). It is
// built once, for the value being reported, so naming a field costs no more
// than walking to it.
func (c *cursor) path() string {
	var b strings.Builder
	for i, f := range c.stack {
		if f.array {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.index))
			b.WriteByte(']')
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(unquoteKey(f.key))
		if b.Len() > maxPathLen {
			break
		}
	}
	return clip(b.String(), maxPathLen)
}

// typeHere is the Go type the value at the cursor decodes into (nil when unknown).
func (c *cursor) typeHere() reflect.Type {
	n := len(c.stack)
	if n == 0 {
		return c.root
	}
	f := &c.stack[n-1]
	if f.array {
		return elemType(f.typ)
	}
	return c.types.member(f.typ, f.key)
}

// advance moves past a value in the innermost container.
func (c *cursor) advance() {
	if n := len(c.stack); n > 0 {
		if c.stack[n-1].array {
			c.stack[n-1].index++
		} else {
			c.stack[n-1].atKey = true
		}
	}
}

// walkJSON visits every token of a well-formed prefix of body in document
// order: member names, container starts and scalar values, each with the
// Go type it decodes into (when root is given), its raw bytes (scalars, and
// names without quotes) and the offset just past it. visit returns true to
// stop. It is only used to explain an error, never on the success path; it
// costs one pass over the body and allocates only for the path it is asked
// for and for the few names it must unescape.
//
// With typedOnly, containers that decode into no known Go type (and so
// hold nothing typed) are passed over unvisited, in one quick scan.
func walkJSON(body []byte, root reflect.Type, typedOnly bool, visit func(c *cursor, kind tokenKind, raw []byte, typ reflect.Type, end int) bool) {
	c := &cursor{root: deref(root)}
	for i := 0; i < len(body); {
		ch := body[i]
		switch ch {
		case ' ', '\t', '\n', '\r', ',', ':':
			i++
			continue
		}
		n := len(c.stack)
		if n > 0 && !c.stack[n-1].array && c.stack[n-1].atKey {
			if ch == '}' {
				c.stack = c.stack[:n-1]
				c.advance()
				i++
				continue
			}
			end := stringEnd(body, i)
			if ch != '"' || end >= len(body) {
				return
			}
			f := &c.stack[n-1]
			f.key, f.atKey = body[i+1:end], false
			i = end + 1
			if visit(c, tokKey, f.key, c.typeHere(), i) {
				return
			}
			continue
		}
		typ := c.typeHere()
		switch ch {
		case '{', '[':
			if n >= maxDepth*2 {
				return // checkShape keeps bodies shallower; this is only a backstop
			}
			if typedOnly && typ == nil {
				i = containerEnd(body, i)
				c.advance()
				continue
			}
			i++
			kind := tokObject
			if ch == '[' {
				kind = tokArray
			}
			if visit(c, kind, nil, typ, i) {
				return
			}
			c.stack = append(c.stack, container{array: ch == '[', atKey: true, typ: typ})
			continue
		case ']', '}':
			if n == 0 {
				return
			}
			c.stack = c.stack[:n-1]
			c.advance()
			i++
			continue
		}
		start, kind := i, tokNumber
		switch ch {
		case '"':
			end := stringEnd(body, i)
			if end >= len(body) {
				return
			}
			i, kind = end+1, tokString
		case 't', 'f', 'n':
			for i < len(body) && body[i] >= 'a' && body[i] <= 'z' {
				i++
			}
			kind = tokBool
			if ch == 'n' {
				kind = tokNull
			}
		default:
			for i < len(body) && numberByte[body[i]] {
				i++
			}
			if i == start {
				return // not JSON
			}
		}
		if visit(c, kind, body[start:i], typ, i) {
			return
		}
		c.advance()
	}
}

// containerEnd is the offset just past the object or array opening at
// body[i] (len(body) when it does not close).
func containerEnd(body []byte, i int) int {
	depth := 0
	for ; i < len(body); i++ {
		switch body[i] {
		case '"':
			i = stringEnd(body, i)
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(body)
}

// numberByte tells the bytes a JSON number is made of.
var numberByte = func() (t [256]bool) {
	for _, b := range []byte("+-0123456789.eE") {
		t[b] = true
	}
	return t
}()

// unquoteKey is a member name as encoding/json reads it.
func unquoteKey(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var s string
	if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s); err != nil {
		return string(raw)
	}
	return s
}

// keyIs reports whether a raw member name reads as name.
func keyIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name // compared in place, not copied
	}
	return unquoteKey(raw) == name
}

// unquote is a string value as encoding/json reads it.
func unquote(raw []byte) string {
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// clip shortens s to at most n bytes (on a rune boundary), marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func elemType(t reflect.Type) reflect.Type {
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		return deref(t.Elem())
	}
	return nil
}

// typeCache remembers each struct's members for one walk, so a body of a
// thousand beats looks at the Beat type once.
type typeCache map[reflect.Type]*members

type members struct {
	exact map[string]reflect.Type
	names []string // in field order, for the case-insensitive match
}

// member is the type of an object member as encoding/json finds it: a map's
// element, or the struct field tagged (or named) key, exactly or else
// case-insensitively.
func (tc *typeCache) member(t reflect.Type, rawKey []byte) reflect.Type {
	switch {
	case t == nil:
		return nil
	case t.Kind() == reflect.Map:
		return deref(t.Elem())
	case t.Kind() != reflect.Struct:
		return nil
	}
	if *tc == nil {
		*tc = typeCache{}
	}
	m := (*tc)[t]
	if m == nil {
		m = &members{exact: map[string]reflect.Type{}}
		for _, f := range reflect.VisibleFields(t) {
			if !f.IsExported() || f.Anonymous {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if _, dup := m.exact[name]; !dup {
				m.exact[name] = deref(f.Type)
				m.names = append(m.names, name)
			}
		}
		(*tc)[t] = m
	}
	if bytes.IndexByte(rawKey, '\\') < 0 {
		if typ, ok := m.exact[string(rawKey)]; ok { // no allocation: a map lookup by []byte
			return typ
		}
	}
	key := unquoteKey(rawKey)
	if typ, ok := m.exact[key]; ok {
		return typ
	}
	for _, name := range m.names {
		if strings.EqualFold(name, key) {
			return m.exact[name]
		}
	}
	return nil
}

// pathAt is the path of the value that ends at or after offset.
func pathAt(body []byte, offset int64) string {
	var found string
	walkJSON(body, nil, false, func(c *cursor, kind tokenKind, _ []byte, _ reflect.Type, end int) bool {
		if kind == tokKey || int64(end) < offset {
			return false
		}
		found = c.path()
		return true
	})
	return found
}

// maxValueLen bounds a bad value quoted back in an error message.
const maxValueLen = 64

// pathOfBadTime is the path of the first value bound for a time.Time that
// is not an RFC 3339 string, and what it holds.
func pathOfBadTime(body []byte, dst any) (path, value string) {
	timeType := reflect.TypeFor[time.Time]()
	walkJSON(body, reflect.TypeOf(dst), true, func(c *cursor, kind tokenKind, raw []byte, typ reflect.Type, _ int) bool {
		if kind == tokKey || typ != timeType {
			return false
		}
		switch kind {
		case tokString:
			v := unquote(raw)
			if _, err := time.Parse(time.RFC3339, v); err == nil {
				return false
			}
			value = strconv.Quote(clip(v, maxValueLen))
		case tokNull:
			return false // null leaves a time alone
		case tokObject:
			value = "object"
		case tokArray:
			value = "array"
		case tokBool:
			value = "boolean"
		default:
			value = "number"
		}
		path = c.path()
		return true
	})
	return path, value
}

// pathOfKey is the path of the member named name that encoding/json found
// unknown: the first one named so in a struct that has no such field, else
// the first one named so at all.
func pathOfKey(body []byte, dst any, name string) string {
	var found string
	walkJSON(body, reflect.TypeOf(dst), false, func(c *cursor, kind tokenKind, raw []byte, typ reflect.Type, _ int) bool {
		if kind != tokKey || !keyIs(raw, name) {
			return false
		}
		parent := c.stack[len(c.stack)-1].typ
		unknown := parent != nil && parent.Kind() == reflect.Struct && typ == nil
		if found == "" || unknown {
			found = c.path()
		}
		return unknown
	})
	return found
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
