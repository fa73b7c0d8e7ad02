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
		return explainDecode(body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return presence.Errorf(presence.EINVALID, "body must hold exactly one JSON value (more follows at byte %d)", dec.InputOffset())
	}
	return nil
}

// explainDecode turns encoding/json's errors into messages that name the
// field by its path (beats[3].at), which encoding/json itself only does in
// part: it drops array indexes and says nothing for a bad time.
func explainDecode(body []byte, err error) error {
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		parse   *time.ParseError
		unknown = strings.TrimPrefix(err.Error(), `json: unknown field "`)
	)
	switch {
	case errors.As(err, &syntax):
		return presence.Errorf(presence.EINVALID, "malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return presence.Errorf(presence.EINVALID, "malformed JSON: the body ends before its value does")
	case errors.As(err, &typ):
		path := pathAt(body, typ.Offset)
		if path == "" {
			return presence.Errorf(presence.EINVALID, "body must be a JSON %s, not %s", jsonKind(typ.Type), typ.Value)
		}
		return presence.Errorf(presence.EINVALID, "field %q must be %s, not %s", path, jsonKind(typ.Type), typ.Value)
	case errors.As(err, &parse):
		path := pathOfString(body, parse.Value)
		if path == "" {
			path = "a time field"
		}
		return presence.Errorf(presence.EINVALID, "field %q must be an RFC 3339 time such as 2026-11-25T09:00:00Z, not %q", path, parse.Value)
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
// order with its path, the key that named it (if any), the token and the
// offset just past it. visit returns true to stop. It is only used to explain
// an error, never on the success path.
func walkJSON(body []byte, visit func(path, key string, tok json.Token, end int64) bool) {
	type frame struct {
		array bool
		index int
		key   string
		base  string
		atKey bool // in an object, the next string token is a key
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []frame
	pathHere := func() (string, string) {
		if len(stack) == 0 {
			return "", ""
		}
		f := stack[len(stack)-1]
		if f.array {
			return f.base + "[" + strconv.Itoa(f.index) + "]", ""
		}
		if f.base == "" {
			return f.key, f.key
		}
		return f.base + "." + f.key, f.key
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
			p, _ := pathHere()
			if visit(p, name, nil, end) {
				return
			}
			continue
		}
		path, key := pathHere()
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if visit(path, key, tok, end) {
				return
			}
			stack = append(stack, frame{array: tok == json.Delim('['), base: path, atKey: true})
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			advance()
			continue
		}
		if visit(path, key, tok, end) {
			return
		}
		advance()
	}
}

// pathAt is the path of the value that ends at or after offset.
func pathAt(body []byte, offset int64) string {
	var found string
	walkJSON(body, func(path, _ string, tok json.Token, end int64) bool {
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

// pathOfString is the path of the first string value equal to s.
func pathOfString(body []byte, s string) string {
	var found string
	walkJSON(body, func(path, _ string, tok json.Token, _ int64) bool {
		if v, ok := tok.(string); ok && v == s {
			found = path
			return true
		}
		return false
	})
	return found
}

// pathOfKey is the path of the first object member named name.
func pathOfKey(body []byte, name string) string {
	var found string
	walkJSON(body, func(path, key string, tok json.Token, _ int64) bool {
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
