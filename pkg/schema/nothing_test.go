package schema

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckAcceptsSomething(t *testing.T) {
	for _, tc := range []struct{ src, why string }{
		{`false`, "the schema is false"},
		{`{"not": {}}`, `"not" of a schema that accepts everything`},
		{`{"not": true}`, `"not"`},
		{`{"enum": []}`, "enum is empty"},
		{`{"type": "string"}`, "excludes objects"},
		{`{"type": ["array", "null"]}`, "excludes objects"},
		{`{"type": "object", "const": 3}`, "const is a integer"},
		{`{"const": "x"}`, "const is a string"},
		{`{"type": "object", "enum": [1, "a", null]}`, "no enum value"},
		{`{"minProperties": 3, "maxProperties": 2}`, "minProperties 3 is over maxProperties 2"},
		{`{"required": ["a", "b"], "maxProperties": 1}`, "2 properties are required"},
		{`{"type": "object", "properties": {"path": false}, "required": ["path"]}`, `/properties/path: the schema is false (and "path" is required)`},
		{`{"properties": {"n": {"type": "integer", "const": "x"}}, "required": ["n"]}`, "/properties/n: const is a string"},
		{`{"allOf": [{"type": "object"}, {"not": {}}]}`, "/allOf/1"},
		{`{"anyOf": [false, {"enum": []}]}`, "no branch of anyOf"},
		{`{"oneOf": [{"type": "string"}, {"type": "number"}]}`, "no branch of oneOf"},
	} {
		err := CheckAcceptsSomething([]byte(tc.src))
		if !errors.Is(err, ErrAcceptsNothing) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v, want ErrAcceptsNothing saying %q", tc.src, err, tc.why)
		}
	}
	for _, src := range []string{
		`true`, `{}`, `{"type": "object"}`, `{"type": ["object", "null"]}`,
		`{"type": "object", "properties": {"path": false}}`,
		`{"properties": {"n": {"type": "number", "const": 3}}, "required": ["n"]}`,
		`{"enum": [{"a": 1}, 2]}`, `{"anyOf": [false, {"type": "object"}]}`,
		`{"not": {"type": "string"}}`, `{"$ref": "#/$defs/x", "$defs": {"x": false}}`, // refs are not followed
		`{"minProperties": 1, "maxProperties": 1, "required": ["a"]}`, `not json`,
	} {
		if err := CheckAcceptsSomething([]byte(src)); err != nil {
			t.Errorf("%s: %v, want nil", src, err)
		}
	}
}
