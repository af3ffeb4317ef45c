package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

const pageview = `{
	"type": "object",
	"required": ["host", "path"],
	"properties": {"host": {"type": "string"}, "path": {"type": "string"}}
}`

func mustCompile(t *testing.T, category, name string, version int, src string) *Schema {
	t.Helper()
	s, err := Compile(category, name, version, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCompile(t *testing.T) {
	s := mustCompile(t, "page interaction", "pageview", 1, pageview)
	if s.Ref() != "page interaction/pageview/1" || s.Key() != "page%20interaction/pageview/1" {
		t.Fatalf("ref %q key %q", s.Ref(), s.Key())
	}
	if strings.ContainsAny(string(s.Source), "\n\t") {
		t.Fatalf("source not compacted: %s", s.Source)
	}
	for _, tt := range []struct {
		name, category, typ string
		version             int
		src, want           string
	}{
		{"not JSON", "c", "n", 1, `{"type":`, "not JSON"},
		{"not an object", "c", "n", 1, `[1]`, "JSON object"},
		{"bad keyword value", "c", "n", 1, `{"type": 12}`, "metaschema"},
		{"bad regexp", "c", "n", 1, `{"pattern": "("}`, "pattern"},
		{"external reference", "c", "n", 1, `{"$ref": "file:///etc/passwd"}`, "cannot reference other documents"},
		{"http reference", "c", "n", 1, `{"$ref": "https://example.com/s.json"}`, "cannot reference other documents"},
		{"empty category", "", "n", 1, `{}`, "category"},
		{"long name", "c", strings.Repeat("n", 256), 1, `{}`, "name"},
		{"version 0", "c", "n", 0, `{}`, "version"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.category, tt.typ, tt.version, []byte(tt.src))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
	// Internal references and the embedded meta-schemas need no loading.
	mustCompile(t, "c", "n", 1, `{"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/s"}}}`)
	mustCompile(t, "c", "n", 1, `{"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"a": {"type": "string"}}}`)
	mustCompile(t, "c", "n", 1, `true`)
}

func TestValidatePointsAtTheFailingField(t *testing.T) {
	s := mustCompile(t, "form interaction", "submit", 1, `{
		"type": "object",
		"required": ["host", "path", "form"],
		"additionalProperties": false,
		"properties": {
			"host": {"type": "string"},
			"path": {"type": "string", "pattern": "^/"},
			"form": {"type": "object", "properties": {"email": {"type": "string", "format": "email"}, "a/b~c": {"type": "integer"}}},
			"tags": {"type": "array", "items": {"type": "string"}}
		}
	}`)
	if r := s.Validate(json.RawMessage(`{"host":"h","path":"/","form":{}}`)); r != nil {
		t.Fatalf("a conforming object: %v", r)
	}
	got := s.Validate(json.RawMessage(`{"path":"x","form":{"email":"nope","a/b~c":"1"},"tags":["a",2],"extra":1}`))
	want := map[string]string{
		"/data/host":         "missing property",
		"/data/path":         "does not match pattern",
		"/data/form/email":   "not valid",
		"/data/form/a~1b~0c": "want integer",
		"/data/tags/1":       "want string",
		"/data/extra":        "not allowed",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d reasons, want %d: %v", len(got), len(want), got)
	}
	for _, r := range got {
		if r.Code != event.CodeSchemaViolation {
			t.Errorf("code %s", r.Code)
		}
		if w, ok := want[r.Field]; !ok || !strings.Contains(r.Message, w) {
			t.Errorf("%s: %q, want a message with %q", r.Field, r.Message, w)
		}
	}
}

func TestValidateTruncatesLongMessages(t *testing.T) {
	s := mustCompile(t, "c", "n", 1, `{"properties": {"a": {"pattern": "^x"}}}`)
	got := s.Validate(json.RawMessage(`{"a": "` + strings.Repeat("é", 5000) + `"}`))
	if len(got) != 1 || len(got[0].Message) > maxMessage+len("…") || !strings.HasSuffix(got[0].Message, "…") || !utf8.ValidString(got[0].Message) {
		t.Fatalf("%d reasons, message of %d bytes: %.80q", len(got), len(got[0].Message), got[0].Message)
	}
}

func TestValidateCapsViolations(t *testing.T) {
	var props, req []string
	for i := range 50 {
		props = append(props, fmt.Sprintf(`"p%d": {"type": "string"}`, i))
		req = append(req, fmt.Sprintf(`"p%d"`, i))
	}
	s := mustCompile(t, "c", "n", 1, `{"required": [`+strings.Join(req, ",")+`], "properties": {`+strings.Join(props, ",")+`}}`)
	got := s.Validate(json.RawMessage(`{"x": 1}`))
	if len(got) != MaxViolations || !strings.Contains(got[len(got)-1].Message, "and 30 more") {
		t.Fatalf("%d reasons, last %v", len(got), got[len(got)-1])
	}
}

func doc(t *testing.T, s string) map[string]json.RawMessage {
	t.Helper()
	obj, reason := event.DecodeObject([]byte(s))
	if reason != nil {
		t.Fatal(reason)
	}
	return obj
}

func TestRegistryVersionSelection(t *testing.T) {
	r := NewRegistry()
	r.Put(mustCompile(t, "page interaction", "pageview", 2, `{"required": ["host", "path", "title"]}`))
	r.Put(mustCompile(t, "page interaction", "pageview", 1, pageview))
	r.Put(mustCompile(t, "page interaction", "cta click", 1, `{"required": ["element"]}`))

	const head = `"category": "page interaction", "name": "pageview", `
	for _, tt := range []struct {
		name    string
		doc     string
		version int // the schema that applied, 0 for none
		codes   []event.Code
		fields  []string
		untyped bool
	}{
		{"latest applies", head + `"data": {"host": "h", "path": "/", "title": "t"}`, 2, nil, nil, false},
		{"latest fails", head + `"data": {"host": "h", "path": "/"}`, 2,
			[]event.Code{event.CodeSchemaViolation}, []string{"/data/title"}, false},
		{"named version passes", head + `"schema_version": 1, "data": {"host": "h", "path": "/"}`, 1, nil, nil, false},
		{"named version fails", head + `"schema_version": 1, "data": {"host": "h"}`, 1,
			[]event.Code{event.CodeSchemaViolation}, []string{"/data/path"}, false},
		{"null version is the latest", head + `"schema_version": null, "data": {"host": "h", "path": "/", "title": "t"}`, 2, nil, nil, false},
		{"unknown version", head + `"schema_version": 3, "data": {"host": "h"}`, 0,
			[]event.Code{event.CodeUnknownSchemaVersion}, []string{"/schema_version"}, false},
		{"malformed version", head + `"schema_version": "1", "data": {"host": "h"}`, 0,
			[]event.Code{event.CodeInvalidField}, []string{"/schema_version"}, false},
		{"fractional version", head + `"schema_version": 1.5, "data": {"host": "h"}`, 0,
			[]event.Code{event.CodeInvalidField}, []string{"/schema_version"}, false},
		{"type without schema", `"category": "c", "name": "n", "data": {"a": 1}`, 0, nil, nil, true},
		{"type without schema, version named", `"category": "c", "name": "n", "schema_version": 1, "data": {"a": 1}`, 0,
			[]event.Code{event.CodeUnknownSchemaVersion}, []string{"/schema_version"}, true},
		{"no category: left to the rules", `"name": "pageview", "data": {}`, 0, nil, nil, false},
		{"data not an object: left to the rules", head + `"data": [1]`, 2, nil, nil, false},
		{"other type's schema", `"category": "page interaction", "name": "cta click", "data": {"x": 1}`, 1,
			[]event.Code{event.CodeSchemaViolation}, []string{"/data/element"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := r.Check(doc(t, "{"+tt.doc+"}"))
			got := 0
			if res.Schema != nil {
				got = res.Schema.Version
			}
			var fields []string
			for _, x := range res.Reasons {
				fields = append(fields, x.Field)
			}
			if got != tt.version || !slices.Equal(res.Reasons.Codes(), tt.codes) || !slices.Equal(fields, tt.fields) || res.Untyped != tt.untyped {
				t.Fatalf("version %d, reasons %v, untyped %v; want %d %v %v %v", got, res.Reasons, res.Untyped, tt.version, tt.codes, tt.fields, tt.untyped)
			}
		})
	}
	if r := UnknownType(doc(t, `{"category": "c", "name": "n"}`)); r.Code != event.CodeUnknownEventType || !strings.Contains(r.Message, "c/n") {
		t.Fatalf("unknown type reason: %v", r)
	}
}

func TestRegistryPutRemoveRefs(t *testing.T) {
	r := NewRegistry()
	for _, v := range []int{3, 1, 2, 10} {
		r.Put(mustCompile(t, "c", "n", v, `{}`))
	}
	r.Put(mustCompile(t, "b", "n", 1, `{}`))
	r.Put(mustCompile(t, "c", "n", 2, `{"required": ["x"]}`)) // republished: replaced
	if s, _ := r.Lookup(Type{"c", "n"}, 0); s.Version != 10 {
		t.Fatalf("latest = %d", s.Version)
	}
	if s, _ := r.Lookup(Type{"c", "n"}, 2); string(s.Source) != `{"required":["x"]}` {
		t.Fatalf("version 2 = %s", s.Source)
	}
	if _, err := r.Lookup(Type{"c", "n"}, 4); !errors.Is(err, ErrUnknownVersion) || !strings.Contains(err.Error(), "latest: 10") {
		t.Fatalf("version 4: %v", err)
	}
	if _, err := r.Lookup(Type{"x", "y"}, 0); !errors.Is(err, ErrNoSchema) {
		t.Fatalf("unknown type: %v", err)
	}
	r.Remove(Type{"c", "n"}, 10)
	r.Remove(Type{"b", "n"}, 1)
	r.Remove(Type{"b", "n"}, 1)
	want := []Ref{{"c", "n", 1}, {"c", "n", 2}, {"c", "n", 3}}
	if got := r.Refs(); !slices.Equal(got, want) {
		t.Fatalf("refs %v, want %v", got, want)
	}
}

func TestReadDir(t *testing.T) {
	got, err := ReadDir(fstest.MapFS{
		"a%2Fb/n/10.json": {Data: []byte(`{}`)},
		"a%2Fb/n/2.json":  {Data: []byte(`{"type": "object"}`)},
		"c/n/1.json":      {Data: []byte(`{}`)},
		"README.md":       {Data: []byte(`ignored`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, s := range got {
		refs = append(refs, s.Ref())
	}
	if want := []string{"a/b/n/2", "a/b/n/10", "c/n/1"}; !slices.Equal(refs, want) {
		t.Fatalf("read %v, want %v", refs, want)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"too shallow":      {"c/1.json": {Data: []byte(`{}`)}},
		"not a version":    {"c/n/v1.json": {Data: []byte(`{}`)}},
		"version 0":        {"c/n/0.json": {Data: []byte(`{}`)}},
		"does not compile": {"c/n/1.json": {Data: []byte(`{"type": 1}`)}},
	} {
		if _, err := ReadDir(fsys); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestShippedSchemas checks deploy/schemas: they compile, accept the
// challenge's examples and reject an incomplete one.
func TestShippedSchemas(t *testing.T) {
	schemas, err := ReadDir(os.DirFS("../../deploy/schemas"))
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry()
	var refs []string
	for _, s := range schemas {
		r.Put(s)
		refs = append(refs, s.Ref())
	}
	want := []string{"form interaction/submit/1", "page interaction/cta click/1", "page interaction/pageview/1"}
	if !slices.Equal(refs, want) {
		t.Fatalf("shipped %v, want %v", refs, want)
	}
	for _, ok := range []string{
		`{"category": "page interaction", "name": "pageview", "data": {"host": "www.consumeraffairs.com", "path": "/"}}`,
		`{"category": "page interaction", "name": "cta click", "data": {"host": "www.consumeraffairs.com", "path": "/", "element": "chat bubble"}}`,
		`{"category": "form interaction", "name": "submit", "data": {"host": "www.consumeraffairs.com", "path": "/", "form": {"first_name": "John", "last_name": "Doe"}}}`,
	} {
		if res := r.Check(doc(t, ok)); res.Schema == nil || len(res.Reasons) > 0 {
			t.Errorf("%s: %+v", ok, res)
		}
	}
	res := r.Check(doc(t, `{"category": "form interaction", "name": "submit", "data": {"host": "h", "path": "/", "form": "John"}}`))
	if len(res.Reasons) != 1 || res.Reasons[0].Field != "/data/form" {
		t.Fatalf("form not an object: %v", res.Reasons)
	}
}
