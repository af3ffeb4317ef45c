package validate

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

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

// rawEvent is a raw event of app carrying payload, as the gateway writes it.
func rawEvent(app uuid.UUID, payload string, replay *contract.Replay) contract.RawEvent {
	return contract.RawEvent{EventID: uuid.Must(uuid.NewV7()), AppID: app, ReceivedAt: time.Now().UTC(),
		Payload: contract.NewPayload([]byte(payload)), ReplayOf: replay}
}

// validate has v judge raw.
func validate(t *testing.T, v *Validator, raw contract.RawEvent) (Outcome, error) {
	t.Helper()
	p, err := raw.Payload.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return v.Validate(context.Background(), raw, p)
}

func TestSchemasApply(t *testing.T) {
	strictApps := map[uuid.UUID]bool{}
	strict := func(_ context.Context, app uuid.UUID) (bool, error) { return strictApps[app], nil }
	v := New(event.DefaultRules(), WithSchemas(registry(t), strict))
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
			out, err := validate(t, v, rawEvent(tt.app, tt.payload, nil))
			if err != nil {
				t.Fatal(err)
			}
			if tt.codes == nil {
				if out.Event == nil || out.Error != nil || out.Event.SchemaVersion != tt.version {
					t.Fatalf("want an event with schema version %d: %+v", tt.version, out)
				}
				return
			}
			if out.Error == nil || out.Event != nil {
				t.Fatalf("want an error record: %+v", out)
			}
			er := out.Error
			if !slices.Equal(er.Reasons.Codes(), tt.codes) || er.Reasons[0].Field != tt.field || er.SchemaVersion != tt.version {
				t.Fatalf("reasons %v, schema version %d; want %v at %s, version %d", er.Reasons, er.SchemaVersion, tt.codes, tt.field, tt.version)
			}
		})
	}
}

func TestStrictTypesLookupFailureIsAnError(t *testing.T) {
	down := errors.New("postgres down")
	v := New(event.DefaultRules(), WithSchemas(registry(t), func(context.Context, uuid.UUID) (bool, error) { return false, down }))
	// Typed: no lookup needed.
	if out, err := validate(t, v, rawEvent(uuid.New(), pageview("", `{"host":"h","path":"/","title":"t"}`), nil)); err != nil || out.Event == nil {
		t.Fatalf("typed event: %+v %v", out, err)
	}
	out, err := validate(t, v, rawEvent(uuid.New(), `{"session_id":"`+sid+`","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 00:00:00"}`, nil))
	if !errors.Is(err, down) || out.Event != nil || out.Error != nil {
		t.Fatalf("untyped event, settings unreadable: %+v %v", out, err)
	}
}

func TestCachedStrictTypes(t *testing.T) {
	calls := 0
	strict := true
	app, unknown := uuid.New(), uuid.New()
	down := errors.New("postgres down")
	f := CachedStrictTypes(func(_ context.Context, id uuid.UUID) (bool, error) {
		calls++
		if id == unknown {
			return false, down
		}
		return strict, nil
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
	before := calls
	for range 2 {
		if _, err := f(ctx, unknown); !errors.Is(err, down) {
			t.Fatalf("failed lookup: %v", err)
		}
	}
	if calls != before+2 {
		t.Fatal("a failed lookup was cached")
	}
}
