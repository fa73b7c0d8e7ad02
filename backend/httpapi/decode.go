package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

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
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return presence.Errorf(presence.ETOOLARGE, "body exceeds %s", byteSize(limit))
		}
		return fmt.Errorf("read body: %w", err)
	}
	return decodeStrict(body, dst)
}

func decodeStrict(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return presence.Errorf(presence.EINVALID, "body is empty: want a JSON object")
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
// part: it drops array indexes and says nothing for a bad time.
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
		if path := pathOfKey(body, name); path != "" {
			name = path
		}
		return presence.Errorf(presence.EINVALID, "unknown field %q", name)
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

// walkJSON visits every value of a well-formed prefix of body in document
// order with its path, the key that named it (if any, with a nil token), the
// token, the Go type that the value decodes into (nil when unknown) and the
// offset just past it. visit returns true to stop. It is only used to
// explain an error, never on the success path.
func walkJSON(body []byte, root reflect.Type, visit func(path, key string, tok json.Token, typ reflect.Type, end int64) bool) {
	type frame struct {
		array bool
		index int
		key   string
		base  string
		typ   reflect.Type // the container's Go type
		atKey bool         // in an object, the next string token is a key
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []frame
	here := func() (path, key string, typ reflect.Type) {
		if len(stack) == 0 {
			return "", "", deref(root)
		}
		f := stack[len(stack)-1]
		if f.array {
			return f.base + "[" + strconv.Itoa(f.index) + "]", "", elemType(f.typ)
		}
		path = f.key
		if f.base != "" {
			path = f.base + "." + f.key
		}
		return path, f.key, memberType(f.typ, f.key)
	}
	advance := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].atKey = true
			}
		}
	}
	for range 1 << 20 { // bounded: a 1 MiB body has fewer tokens than this
		tok, err := dec.Token()
		if err != nil {
			return
		}
		end := dec.InputOffset()
		if n := len(stack); n > 0 && !stack[n-1].array && stack[n-1].atKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				advance()
				continue
			}
			name, _ := tok.(string)
			stack[n-1].key, stack[n-1].atKey = name, false
			p, _, typ := here()
			if visit(p, name, nil, typ, end) {
				return
			}
			continue
		}
		path, key, typ := here()
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if visit(path, key, tok, typ, end) {
				return
			}
			stack = append(stack, frame{array: tok == json.Delim('['), base: path, typ: typ, atKey: true})
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			advance()
			continue
		}
		if visit(path, key, tok, typ, end) {
			return
		}
		advance()
	}
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

// memberType is the type of an object member as encoding/json finds it: a
// map's element, or the struct field tagged (or named) key, exactly or else
// case-insensitively.
func memberType(t reflect.Type, key string) reflect.Type {
	switch {
	case t == nil:
		return nil
	case t.Kind() == reflect.Map:
		return deref(t.Elem())
	case t.Kind() != reflect.Struct:
		return nil
	}
	var loose reflect.Type
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
		if name == key {
			return deref(f.Type)
		}
		if loose == nil && strings.EqualFold(name, key) {
			loose = deref(f.Type)
		}
	}
	return loose
}

// pathAt is the path of the value that ends at or after offset.
func pathAt(body []byte, offset int64) string {
	var found string
	walkJSON(body, nil, func(path, _ string, tok json.Token, _ reflect.Type, end int64) bool {
		if tok == nil {
			return false // a key, not a value
		}
		if end >= offset {
			found = path
			return true
		}
		return false
	})
	return found
}

// pathOfBadTime is the path of the first value bound for a time.Time that
// is not an RFC 3339 string, and what it holds.
func pathOfBadTime(body []byte, dst any) (path, value string) {
	timeType := reflect.TypeFor[time.Time]()
	walkJSON(body, reflect.TypeOf(dst), func(p, _ string, tok json.Token, typ reflect.Type, _ int64) bool {
		if tok == nil || typ != timeType {
			return false
		}
		switch v := tok.(type) {
		case string:
			if _, err := time.Parse(time.RFC3339, v); err != nil {
				path, value = p, strconv.Quote(v)
				return true
			}
			return false
		case nil:
			return false // null leaves a time alone
		case json.Delim:
			path, value = p, map[json.Delim]string{'{': "object", '[': "array"}[v]
		case bool:
			path, value = p, "boolean"
		default:
			path, value = p, "number"
		}
		return true
	})
	return path, value
}

// pathOfKey is the path of the first object member named name.
func pathOfKey(body []byte, name string) string {
	var found string
	walkJSON(body, nil, func(path, key string, tok json.Token, _ reflect.Type, _ int64) bool {
		if tok == nil && key == name {
			found = path
			return true
		}
		return false
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
