package validate

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/schema"
)

func registry(t *testing.T) *schema.Registry {
	t.Helper()
	reg := schema.NewRegistry()
	for v, src := range map[int]string{
		1: `{"type": "object", "required": ["host", "path"], "properties": {"host": {"type": "string"}, "path": {"type": "string"}}}`,
		2: `{"type": "object", "required": ["host", "path", "title"]}`,
	} {
		s, err := schema.Compile("page interaction", "pageview", v, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		reg.Put(s)
	}
	return reg
}

const sid = "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"

func pageview(extra, data string) string {
	return `{"session_id":"` + sid + `","category":"page interaction","name":"pageview",` + extra + `"data":` + data + `,"timestamp":"2021-01-01 00:00:00"}`
}

func TestSchemasApply(t *testing.T) {
	strictApps := map[uuid.UUID]bool{}
	strict := func(_ context.Context, app uuid.UUID) (bool, error) { return strictApps[app], nil }
	r, err := NewRelay(event.DefaultRules(), topics, &recorder{}, WithSchemas(registry(t), strict))
	if err != nil {
		t.Fatal(err)
	}
	strictApp := uuid.New()
	strictApps[strictApp] = true
	for _, tt := range []struct {
		name    string
		app     uuid.UUID
		payload string
		version int
		codes   []event.Code
		field   string
	}{
		{"conforms to the latest", uuid.New(), pageview("", `{"host":"h","path":"/","title":"t"}`), 2, nil, ""},
		{"conforms to the named version", uuid.New(), pageview(`"schema_version":1,`, `{"host":"h","path":"/"}`), 1, nil, ""},
		{"violates the latest", uuid.New(), pageview("", `{"host":"h","path":"/"}`), 2, []event.Code{event.CodeSchemaViolation}, "/data/title"},
		{"violates the named version", uuid.New(), pageview(`"schema_version":1,`, `{"host":"h","path":7}`), 1, []event.Code{event.CodeSchemaViolation}, "/data/path"},
		{"unknown version", uuid.New(), pageview(`"schema_version":9,`, `{"host":"h"}`), 0, []event.Code{event.CodeUnknownSchemaVersion}, "/schema_version"},
		{"rules and schema together", uuid.New(), `{"session_id":"` + sid + `","category":"page interaction","name":"pageview","data":{"host":"h"},"timestamp":"2999-01-01 00:00:00"}`, 2,
			[]event.Code{event.CodeFutureTimestamp, event.CodeSchemaViolation, event.CodeSchemaViolation}, "/timestamp"},
		{"type without schema", uuid.New(), `{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 00:00:00"}`, 0, nil, ""},
		{"type without schema, strict types", strictApp, `{"session_id":"` + sid + `","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 00:00:00"}`, 0,
			[]event.Code{event.CodeUnknownEventType}, ""},
		{"typed event, strict types", strictApp, pageview("", `{"host":"h","path":"/","title":"t"}`), 2, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := contract.Encode(topics.Raw, sid, &contract.RawEvent{EventID: uuid.New(), AppID: tt.app, ReceivedAt: time.Now().UTC(), Payload: contract.NewPayload([]byte(tt.payload))})
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.Process(m)
			if err != nil {
				t.Fatal(err)
			}
			if tt.codes == nil {
				var ev contract.Event
				if out.Topic != topics.Events || contract.Decode(out.Value, &ev) != nil || ev.SchemaVersion != tt.version {
					t.Fatalf("want an event with schema version %d: %s %s", tt.version, out.Topic, out.Value)
				}
				return
			}
			var er contract.Error
			if out.Topic != topics.Errors || contract.Decode(out.Value, &er) != nil {
				t.Fatalf("want an error record: %s %s", out.Topic, out.Value)
			}
			if !slices.Equal(er.Reasons.Codes(), tt.codes) || er.Reasons[0].Field != tt.field || er.SchemaVersion != tt.version {
				t.Fatalf("reasons %v, schema version %d; want %v at %s, version %d", er.Reasons, er.SchemaVersion, tt.codes, tt.field, tt.version)
			}
		})
	}
}

func TestStrictTypesLookupFailureFailsTheBatch(t *testing.T) {
	rec := &recorder{}
	down := errors.New("postgres down")
	r, _ := NewRelay(event.DefaultRules(), topics, rec, WithSchemas(registry(t), func(context.Context, uuid.UUID) (bool, error) { return false, down }))
	in := []contract.Message{
		raw(t, sid, pageview("", `{"host":"h","path":"/","title":"t"}`)), // typed: no lookup needed
		raw(t, sid, `{"session_id":"`+sid+`","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 00:00:00"}`),
	}
	if err := r.Handle(context.Background(), in); !errors.Is(err, down) || len(rec.msgs) != 0 {
		t.Fatalf("err %v, published %d", err, len(rec.msgs))
	}
}

func TestCachedStrictTypes(t *testing.T) {
	calls := 0
	strict := true
	app, unknown := uuid.New(), uuid.New()
	f := CachedStrictTypes(func(_ context.Context, id uuid.UUID) (auth.AppSettings, error) {
		calls++
		if id == unknown {
			return auth.AppSettings{}, auth.ErrUnknownApplication
		}
		return auth.AppSettings{StrictTypes: strict}, nil
	}, 50*time.Millisecond)
	ctx := context.Background()
	for range 3 {
		if s, err := f(ctx, app); err != nil || !s {
			t.Fatalf("strict: %v %v", s, err)
		}
	}
	if calls != 1 {
		t.Fatalf("%d lookups within the TTL", calls)
	}
	strict = false
	time.Sleep(60 * time.Millisecond)
	if s, _ := f(ctx, app); s {
		t.Fatal("a changed setting did not apply after the TTL")
	}
	if s, err := f(ctx, unknown); s || err != nil {
		t.Fatalf("unknown application: %v %v", s, err)
	}
}
