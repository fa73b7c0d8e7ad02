package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

func TestDecodeStrict(t *testing.T) {
	type inner struct {
		At   time.Time `json:"at"`
		Tags []string  `json:"tags"`
	}
	type doc struct {
		Name  string           `json:"name"`
		Items []inner          `json:"items"`
		Deep  map[string]inner `json:"deep"`
		On    *bool            `json:"on"`
	}
	tests := []struct {
		body string
		msg  string // "" for success
	}{
		{`{"name":"x","items":[{"at":"2026-11-25T09:00:00Z","tags":["a"]}],"on":true}`, ""},
		{` {"name":"x"} ` + "\n", ""},
		{`{"name":"x"} {"name":"y"}`, "exactly one JSON value"},
		{`{"name":"x"} x`, "exactly one JSON value"},
		{`   `, "body is empty"},
		{`{"name":`, "ends before its value does"},
		{`{"name" "x"}`, "malformed JSON at byte"},
		{`{"name":1}`, `field "name" must be a string, not number`},
		{`{"items":[{},{"tags":[1]}]}`, `field "items[1].tags[0]" must be a string`},
		{`{"items":[{"tags":["a"]},{"at":"soon"}]}`, `field "items[1].at" must be an RFC 3339 time`},
		{`{"deep":{"k":{"at":5}}}`, `field "deep.k.at" must be an RFC 3339 time such as 2026-11-25T09:00:00Z, not number`},
		{`{"items":[{"tags":[],"colour":"red"}]}`, `unknown field "items[0].colour"`},
		{`{"items":[{"at":null},{"at":"2026-11-25T09:00:00Z"},{"at":"2026-11-25 09:00"}]}`, `field "items[2].at" must be an RFC 3339 time such as 2026-11-25T09:00:00Z, not "2026-11-25 09:00"`},
		{`{"ITEMS":[{"AT":true}]}`, `field "ITEMS[0].AT" must be an RFC 3339 time such as 2026-11-25T09:00:00Z, not boolean`},
		{`{"on":"yes"}`, `field "on" must be true or false`},
		{`"x"`, "body must be an object, not string"},
		{`{"na\u006de":5}`, `field "name" must be a string, not number`},
		{`{"deep":{"k":{"tags":[],"colour":"red"}}}`, `unknown field "deep.k.colour"`},
		{`{"deep":{"colour":{}},"items":[{"colour":1}]}`, `unknown field "items[0].colour"`}, // a map's key of that name is known
		{`{"items":[{"at":"` + strings.Repeat("x", 500) + `"}]}`, `not "` + strings.Repeat("x", maxValueLen) + `…"`},
		{`{"` + strings.Repeat("k", 500) + `":1}`, `unknown field "` + strings.Repeat("k", maxPathLen) + `…"`},
	}
	for _, tt := range tests {
		var d doc
		err := decodeStrict([]byte(tt.body), &d)
		switch {
		case tt.msg == "" && err != nil:
			t.Errorf("%s: %v", tt.body, err)
		case tt.msg != "" && (presence.ErrorCode(err) != presence.EINVALID || !strings.Contains(presence.ErrorMessage(err), tt.msg)):
			t.Errorf("%s: %v, want invalid with %q", tt.body, err, tt.msg)
		}
	}
}
