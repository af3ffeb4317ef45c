package contract_test

// The published contract of the topics (docs/asyncapi.yaml, the JSON
// Schemas in docs/schemas/topics, docs/topics.md) checked against this
// package: adding a topic, an envelope type, a header, a field or a reason
// code without updating them fails here.

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/topicschema"
)

const docsDir = "../../docs"

// envelopes maps every envelope type to its Go type.
var envelopes = map[string]any{
	contract.TypeRawEvent:  contract.RawEvent{},
	contract.TypeEvent:     contract.Event{},
	contract.TypeError:     contract.Error{},
	contract.TypeTombstone: contract.Tombstone{},
	contract.TypeSchema:    contract.Schema{},
}

// topicMessages maps every field of contract.Topics to the AsyncAPI message
// its channel carries.
var topicMessages = map[string]string{
	"Raw":        contract.TypeRawEvent,
	"Events":     contract.TypeEvent,
	"Errors":     contract.TypeError,
	"DeadLetter": topicschema.DeadLetterMessage,
	"Erasures":   contract.TypeTombstone,
	"Schemas":    contract.TypeSchema,
}

func checker(t *testing.T) *topicschema.Checker {
	t.Helper()
	c, err := topicschema.Load(docsDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// constants returns the string constants of a Go file whose name starts
// with prefix (or, with prefix "", whose declared type is typ), by name.
// httpOnlyCodes are reason codes the services answer over HTTP but never put
// on a topic, so the topic contract does not list them.
var httpOnlyCodes = []string{
	string(event.CodeUnknownApplication), // a replay's answer: the record's application is unknown
}

// topicCodes are pkg/event's reason codes that error records can carry.
func topicCodes(t *testing.T) map[string]string {
	codes := constants(t, "../event/event.go", "", "Code")
	for name, v := range codes {
		if slices.Contains(httpOnlyCodes, v) {
			delete(codes, name)
		}
	}
	return codes
}

func constants(t *testing.T, file, prefix, typ string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			declared := ""
			if id, ok := vs.Type.(*ast.Ident); ok {
				declared = id.Name
			}
			for i, n := range vs.Names {
				if i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				if (prefix != "" && strings.HasPrefix(n.Name, prefix)) || (typ != "" && declared == typ) {
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out[n.Name] = v
				}
			}
		}
	}
	return out
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// readSchema reads the JSON Schema file of an envelope type as a generic map.
func readSchema(t *testing.T, typ string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(docsDir, topicschema.SchemaFile(typ)))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGoldenFilesMatchTheJSONSchemas: every golden envelope validates
// against the JSON Schema of its type, and every type has a golden file.
func TestGoldenFilesMatchTheJSONSchemas(t *testing.T) {
	c := checker(t)
	files, err := filepath.Glob("testdata/*.golden.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var head struct{ Type string }
		if err := json.Unmarshal(b, &head); err != nil {
			t.Fatal(err)
		}
		if err := c.Value(head.Type, b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		seen[head.Type] = true
	}
	if got, want := keys(seen), keys(envelopes); !slices.Equal(got, want) {
		t.Errorf("golden files cover types %v, want %v", got, want)
	}
}

// TestJSONSchemasRejectBrokenEnvelopes: the schemas are strict where the
// contract is (required fields, canonical UUIDs, UTC timestamps, enums,
// bounds) and let unknown fields through, as consumers must.
func TestJSONSchemasRejectBrokenEnvelopes(t *testing.T) {
	c := checker(t)
	golden := func(name string) map[string]any {
		b, err := os.ReadFile(filepath.Join("testdata", name+".golden.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	reason := func(m map[string]any) map[string]any { return m["reasons"].([]any)[0].(map[string]any) }
	cases := []struct {
		name   string
		golden string
		edit   func(m map[string]any)
		valid  bool
	}{
		{"an unknown field is tolerated", "event", func(m map[string]any) { m["added_later"] = 1 }, true},
		{"an unknown reason field is tolerated", "error", func(m map[string]any) { reason(m)["hint"] = "x" }, true},
		{"a record without schema_version", "event_with_schema", func(m map[string]any) { delete(m, "schema_version") }, true},
		{"a whole-second timestamp", "event", func(m map[string]any) { m["timestamp"] = "2021-01-01T09:15:27Z" }, true},
		{"version 2", "event", func(m map[string]any) { m["v"] = 2 }, false},
		{"another type", "event", func(m map[string]any) { m["type"] = "error" }, false},
		{"no session_id", "event", func(m map[string]any) { delete(m, "session_id") }, false},
		{"an upper-case UUID", "event", func(m map[string]any) { m["session_id"] = strings.ToUpper(m["session_id"].(string)) }, false},
		{"a UUID without dashes", "event", func(m map[string]any) { m["id"] = strings.ReplaceAll(m["id"].(string), "-", "") }, false},
		{"a timestamp with an offset", "event", func(m map[string]any) { m["timestamp"] = "2021-01-01T10:15:27.24386+01:00" }, false},
		{"a timestamp with a trailing zero", "event", func(m map[string]any) { m["timestamp"] = "2021-01-01T09:15:27.243860Z" }, false},
		{"a timestamp in nanoseconds", "event", func(m map[string]any) { m["timestamp"] = "2021-01-01T09:15:27.243860001Z" }, false},
		{"empty data", "event", func(m map[string]any) { m["data"] = map[string]any{} }, false},
		{"data not an object", "event", func(m map[string]any) { m["data"] = []any{1} }, false},
		{"an empty category", "event", func(m map[string]any) { m["category"] = "" }, false},
		{"a 256-character name", "event", func(m map[string]any) { m["name"] = strings.Repeat("é", 256) }, false},
		{"schema_version 0", "event", func(m map[string]any) { m["schema_version"] = 0 }, false},
		{"a replay attempt 0", "raw_event_replay", func(m map[string]any) { m["replay_of"].(map[string]any)["attempt"] = 0 }, false},
		{"a replay without error_id", "event_replay", func(m map[string]any) { delete(m["replay_of"].(map[string]any), "error_id") }, false},
		{"a payload encoding other than utf8/base64", "raw_event", func(m map[string]any) { m["payload"].(map[string]any)["encoding"] = "hex" }, false},
		{"corrupt base64", "error_binary", func(m map[string]any) { m["payload"].(map[string]any)["data"] = "//5" }, false},
		{"a payload without data", "raw_event", func(m map[string]any) { delete(m["payload"].(map[string]any), "data") }, false},
		{"no session_id on an error (it is null, not absent)", "error", func(m map[string]any) { delete(m, "session_id") }, false},
		{"no reasons", "error", func(m map[string]any) { m["reasons"] = []any{} }, false},
		{"an unknown stage", "error", func(m map[string]any) { m["stage"] = "elsewhere" }, false},
		{"an unknown reason code", "error", func(m map[string]any) { reason(m)["code"] = "no_such_code" }, false},
		{"a reason without message", "error", func(m map[string]any) { delete(reason(m), "message") }, false},
		{"an empty reason field", "error", func(m map[string]any) { reason(m)["field"] = "" }, false},
		{"a reason field that is no JSON pointer", "error", func(m map[string]any) { reason(m)["field"] = "data" }, false},
		{"a tombstone without app_id", "tombstone", func(m map[string]any) { delete(m, "app_id") }, false},
		{"schema version 0", "schema", func(m map[string]any) { m["version"] = 0 }, false},
		{"a schema that is a string", "schema", func(m map[string]any) { m["schema"] = "{}" }, false},
		{"a boolean schema", "schema", func(m map[string]any) { m["schema"] = true }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := golden(tc.golden)
			tc.edit(m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Value(m["type"].(string), b)
			if tc.valid && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tc.valid && err == nil {
				t.Fatalf("accepted %s", b)
			}
		})
	}
}

// TestJSONSchemasDeclareEveryField: the properties of each envelope's
// schema (and of its nested objects) are exactly the JSON fields of its Go
// type, and the required ones exactly those without omitempty.
func TestJSONSchemasDeclareEveryField(t *testing.T) {
	for typ, v := range envelopes {
		t.Run(typ, func(t *testing.T) {
			doc := readSchema(t, typ)
			compareFields(t, doc, doc, reflect.TypeOf(v), typ)
		})
	}
}

var opaque = map[reflect.Type]bool{reflect.TypeOf(time.Time{}): true, reflect.TypeOf(uuid.UUID{}): true}

// compareFields compares schema node s (of document doc) with struct type
// rt, recursing into nested structs.
func compareFields(t *testing.T, doc, s map[string]any, rt reflect.Type, path string) {
	t.Helper()
	s = objectSchema(t, doc, s, path)
	props, _ := s["properties"].(map[string]any)
	var required []string
	for _, r := range s["required"].([]any) {
		required = append(required, r.(string))
	}
	var fields, wantRequired []string
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		fields = append(fields, name)
		if !strings.Contains(opts, "omitempty") {
			wantRequired = append(wantRequired, name)
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && !opaque[ft] {
			p, ok := props[name].(map[string]any)
			if !ok {
				continue // reported below
			}
			if f.Type.Kind() == reflect.Slice {
				p = objectSchema(t, doc, p, path+"/"+name)
				p, _ = p["items"].(map[string]any)
			}
			compareFields(t, doc, p, ft, path+"/"+name)
		}
	}
	sort.Strings(fields)
	sort.Strings(wantRequired)
	sort.Strings(required)
	if got := keys(props); !slices.Equal(got, fields) {
		t.Errorf("%s: schema properties %v, Go fields %v", path, got, fields)
	}
	if !slices.Equal(required, wantRequired) {
		t.Errorf("%s: schema requires %v, Go always writes %v", path, required, wantRequired)
	}
}

// objectSchema resolves s to the schema of an object: it follows local
// $refs and picks the object (or array) alternative of an anyOf.
func objectSchema(t *testing.T, doc, s map[string]any, path string) map[string]any {
	t.Helper()
	for range 10 {
		if ref, ok := s["$ref"].(string); ok {
			name, ok := strings.CutPrefix(ref, "#/$defs/")
			if !ok {
				t.Fatalf("%s: $ref %s is not local", path, ref)
			}
			s = doc["$defs"].(map[string]any)[name].(map[string]any)
			continue
		}
		if alts, ok := s["anyOf"].([]any); ok {
			for _, a := range alts {
				if a := a.(map[string]any); a["type"] != "null" {
					s = a
				}
			}
			continue
		}
		return s
	}
	t.Fatalf("%s: $ref chain too long", path)
	return nil
}

// TestAsyncAPIListsTheContract: the AsyncAPI document has one channel per
// topic (addresses as NewTopics names them), one message per envelope type
// (plus the dead letter) with its eye-type and eye-version headers and its
// JSON Schema as payload, and declares exactly the headers of the package;
// the schema files agree with the package's version, types, stages and
// reason codes.
func TestAsyncAPIListsTheContract(t *testing.T) {
	doc, err := topicschema.LoadAsyncAPI(filepath.Join(docsDir, topicschema.AsyncAPIFile))
	if err != nil {
		t.Fatal(err)
	}
	types := constants(t, "contract.go", "Type", "")
	headerConsts := constants(t, "contract.go", "Header", "")
	stages := constants(t, "contract.go", "Stage", "")
	codes := topicCodes(t)
	if len(types) == 0 || len(headerConsts) == 0 || len(stages) == 0 || len(codes) == 0 {
		t.Fatalf("constants not found: %v %v %v %v", types, headerConsts, stages, codes)
	}
	if got, want := keys(envelopes), values(types); !slices.Equal(got, want) {
		t.Fatalf("this test knows types %v, the package declares %v", got, want)
	}

	messages, err := topicschema.Messages(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(messages), append(values(types), topicschema.DeadLetterMessage); !sameSet(got, want) {
		t.Errorf("messages %v, want %v", got, want)
	}
	headerNames := map[string]bool{}
	for name, m := range messages {
		h, _ := m["headers"].(map[string]any)
		props, _ := h["properties"].(map[string]any)
		for k := range props {
			headerNames[k] = true
		}
		if name == topicschema.DeadLetterMessage {
			continue
		}
		if ref := m["payload"].(map[string]any)["$ref"]; ref != "./"+topicschema.SchemaFile(name) {
			t.Errorf("message %s: payload $ref %v", name, ref)
		}
		if r := h["required"]; !reflect.DeepEqual(r, []any{contract.HeaderType, contract.HeaderVersion}) {
			t.Errorf("message %s: required headers %v", name, r)
		}
		if c := props[contract.HeaderType].(map[string]any)["const"]; c != name {
			t.Errorf("message %s: %s const %v", name, contract.HeaderType, c)
		}
		if c := props[contract.HeaderVersion].(map[string]any)["const"]; c != strconv.Itoa(contract.Version) {
			t.Errorf("message %s: %s const %v", name, contract.HeaderVersion, c)
		}
	}
	if got, want := keys(headerNames), values(headerConsts); !slices.Equal(got, want) {
		t.Errorf("headers declared %v, the package's %v", got, want)
	}

	// Channels: one per field of Topics.
	topics := reflect.ValueOf(contract.NewTopics("{prefix}"))
	byAddress := map[string]map[string]any{}
	channels, _ := doc["channels"].(map[string]any)
	for _, ch := range channels {
		ch := ch.(map[string]any)
		byAddress[ch["address"].(string)] = ch
	}
	if len(channels) != topics.NumField() {
		t.Errorf("%d channels, contract.Topics has %d topics", len(channels), topics.NumField())
	}
	for i := range topics.NumField() {
		field, address := topics.Type().Field(i).Name, topics.Field(i).String()
		want, ok := topicMessages[field]
		if !ok {
			t.Errorf("topic %s (%s): this test does not know its message", field, address)
			continue
		}
		ch := byAddress[address]
		if ch == nil {
			t.Errorf("topic %s: no channel with address %s", field, address)
			continue
		}
		msgs, _ := ch["messages"].(map[string]any)
		if len(msgs) != 1 || msgs[want] == nil || msgs[want].(map[string]any)["$ref"] != "#/components/messages/"+want {
			t.Errorf("channel %s: messages %v, want only %s", address, msgs, want)
		}
	}

	// The schema files.
	shared := map[string]any{}
	for typ := range envelopes {
		s := readSchema(t, typ)
		props := s["properties"].(map[string]any)
		if v := props["v"].(map[string]any)["const"]; v != float64(contract.Version) {
			t.Errorf("%s: v const %v", typ, v)
		}
		if v := props["type"].(map[string]any)["const"]; v != typ {
			t.Errorf("%s: type const %v", typ, v)
		}
		defs := s["$defs"].(map[string]any)
		for name, d := range defs {
			if prev, ok := shared[name]; ok && !reflect.DeepEqual(prev, d) {
				t.Errorf("$defs/%s differs between the schema files (%s)", name, typ)
			}
			shared[name] = d
		}
		if typ != contract.TypeError {
			continue
		}
		var stageEnum, codeEnum []string
		for _, v := range props["stage"].(map[string]any)["enum"].([]any) {
			stageEnum = append(stageEnum, v.(string))
		}
		for _, v := range defs["knownReasonCode"].(map[string]any)["enum"].([]any) {
			codeEnum = append(codeEnum, v.(string))
		}
		if !sameSet(stageEnum, values(stages)) {
			t.Errorf("error stage enum %v, the package's stages %v", stageEnum, values(stages))
		}
		if !sameSet(codeEnum, values(codes)) {
			t.Errorf("knownReasonCode %v, pkg/event's codes %v", codeEnum, values(codes))
		}
	}
	if _, ok := codes["CodeInvalidJSON"]; !ok || codes["CodeInvalidJSON"] != string(event.CodeInvalidJSON) {
		t.Errorf("reason codes read from pkg/event: %v", codes)
	}
}

// TestTopicsDocNamesTheContract: docs/topics.md names every topic, envelope
// type, header and reason code.
func TestTopicsDocNamesTheContract(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(docsDir, "topics.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var names []string
	names = append(names, values(constants(t, "contract.go", "Type", ""))...)
	names = append(names, values(constants(t, "contract.go", "Header", ""))...)
	names = append(names, values(topicCodes(t))...)
	topics := reflect.ValueOf(contract.NewTopics("eye."))
	for i := range topics.NumField() {
		names = append(names, topics.Field(i).String())
	}
	for _, n := range names {
		if !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("docs/topics.md does not name `%s`", n)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}
