package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/services/query-api/internal/admin"
	"github.com/the-eye/eye/services/query-api/internal/schemas"
)

// schemaTopic is a schemas.Producer that keeps what it was given, or fails
// while down is set.
type schemaTopic struct {
	mu   sync.Mutex
	down bool
	msgs []contract.Message
}

func (s *schemaTopic) Publish(_ context.Context, msgs ...contract.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errors.New("kafka down")
	}
	s.msgs = append(s.msgs, msgs...)
	return nil
}

func (s *schemaTopic) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.msgs {
		out = append(out, string(m.Key))
	}
	return out
}

func (s *schemaTopic) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// newSchemaServer is the query API with the schema routes, publishing to
// topic; the publisher is returned to run it.
func newSchemaServer(t *testing.T, topic *schemaTopic) (http.Handler, *schemas.Publisher) {
	t.Helper()
	var pub *schemas.Publisher
	s := newTestServer(t, func(s *testServer) []Option {
		st, ss, err := newSchemas(s.db)
		if err != nil {
			t.Fatal(err)
		}
		pub, err = schemas.NewPublisher(schemas.PublisherConfig{Store: st, Producer: topic, Topic: "eye.schemas.v1", Timeout: time.Second,
			Interval: 20 * time.Millisecond, Ensure: func(context.Context) error { return nil }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return []Option{WithSchemas(ss, pub, 0)}
	})
	return s, pub
}

const pageviewSchema = `{"type": "object", "required": ["host", "path"], "properties": {"host": {"type": "string"}, "path": {"type": "string"}}}`

func TestSchemaEndpoints(t *testing.T) {
	topic := &schemaTopic{}
	h, _ := newSchemaServer(t, topic)

	res := call(t, h, "POST", "/admin/schemas/", adminKey, `{"category": "page interaction", "name": "pageview", "schema": `+pageviewSchema+`}`)
	var rec schemas.Record
	res.decode(t, &rec)
	if res.status != http.StatusCreated || rec.Version != 1 || rec.PublishedAt == nil || rec.CreatedBy == nil || rec.CreatedAt.IsZero() ||
		res.header.Get("Location") != "/admin/schemas/page%20interaction/pageview/1" || !strings.Contains(string(rec.Schema), `"required"`) {
		t.Fatalf("add: %d %v %s", res.status, res.header, res.body)
	}
	res = call(t, h, "POST", "/admin/schemas", adminKey, `{"category": "page interaction", "name": "pageview", "schema": {"required": ["host"]}}`)
	res.decode(t, &rec)
	if res.status != http.StatusCreated || rec.Version != 2 {
		t.Fatalf("add version 2: %d %s", res.status, res.body)
	}
	call(t, h, "POST", "/admin/schemas", adminKey, `{"category": "form interaction", "name": "submit", "schema": true}`)
	if got := strings.Join(topic.keys(), " "); got != "page%20interaction/pageview/1 page%20interaction/pageview/2 form%20interaction/submit/1" {
		t.Fatalf("published %s", got)
	}
	var published contract.Schema
	if err := contract.Decode(topic.msgs[1].Value, &published); err != nil || published.Version != 2 || string(published.Schema) != `{"required":["host"]}` {
		t.Fatalf("record on the topic: %v %+v", err, published)
	}

	for _, c := range []struct{ body, code, message string }{
		{`{"category": "c", "name": "n", "schema": {"type": 12}}`, "invalid_schema", "metaschema"},
		{`{"category": "c", "name": "n", "schema": {"$ref": "https://example.com/other.json"}}`, "invalid_schema", "cannot reference other documents"},
		{`{"category": "c", "name": "n", "schema": [1]}`, "invalid_schema", "JSON object"},
		{`{"category": "", "name": "n", "schema": {}}`, "invalid_schema", "category"},
		{`{"category": "c", "name": "n"}`, "invalid_body", "schema is required"},
		{`{"category": "c", "name": "n", "schema": {}, "version": 3}`, "invalid_body", ""},
		{`not json`, "invalid_body", ""},
	} {
		res := call(t, h, "POST", "/admin/schemas", adminKey, c.body)
		if res.status != http.StatusBadRequest || res.code(t) != c.code || !strings.Contains(string(res.body), c.message) {
			t.Errorf("add %s: %d %s, want 400 %s with %q", c.body, res.status, res.body, c.code, c.message)
		}
	}
	if res := call(t, h, "POST", "/admin/schemas", adminKey, `{"category": "c", "name": "n", "schema": {"description": "`+strings.Repeat("x", 300<<10)+`"}}`); res.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 300 KiB schema: %d", res.status)
	}

	res = call(t, h, "GET", "/admin/schemas/page%20interaction/pageview/2", adminKey, "")
	res.decode(t, &rec)
	if res.status != http.StatusOK || rec.Version != 2 || rec.Category != "page interaction" {
		t.Fatalf("get: %d %s", res.status, res.body)
	}
	for _, p := range []string{"/admin/schemas/page%20interaction/pageview/3", "/admin/schemas/page%20interaction/pageview/x", "/admin/schemas/c/n/0"} {
		if res := call(t, h, "GET", p, adminKey, ""); res.status != http.StatusNotFound || res.code(t) != "not_found" {
			t.Errorf("GET %s: %d %s", p, res.status, res.body)
		}
	}

	var list SchemaList
	res = call(t, h, "GET", "/admin/schemas", adminKey, "")
	res.decode(t, &list)
	if res.status != http.StatusOK || len(list.Results) != 3 || list.Next != nil || list.Results[0].Category != "form interaction" {
		t.Fatalf("list: %d %s", res.status, res.body)
	}
	res = call(t, h, "GET", "/admin/schemas/?category=page%20interaction&name=pageview&limit=1", adminKey, "")
	res.decode(t, &list)
	if len(list.Results) != 1 || list.Results[0].Version != 1 || list.Next == nil {
		t.Fatalf("first page: %s", res.body)
	}
	res = call(t, h, "GET", *list.Next, adminKey, "")
	res.decode(t, &list)
	if len(list.Results) != 1 || list.Results[0].Version != 2 || list.Next != nil || list.Previous == nil {
		t.Fatalf("second page: %s", res.body)
	}
	res = call(t, h, "GET", *list.Previous, adminKey, "")
	res.decode(t, &list)
	if len(list.Results) != 1 || list.Results[0].Version != 1 || list.Next == nil || list.Previous != nil {
		t.Fatalf("back to the first page: %s", res.body)
	}
	for q, code := range map[string]string{"?limit=0": "invalid_parameter", "?limit=1001": "invalid_parameter", "?cursor=zzz": "invalid_cursor", "?version=1": "unknown_parameter"} {
		if res := call(t, h, "GET", "/admin/schemas"+q, adminKey, ""); res.status != http.StatusBadRequest || res.code(t) != code {
			t.Errorf("list %s: %d %s, want %s", q, res.status, res.body, code)
		}
	}

	for _, k := range []struct {
		key    string
		status int
	}{{"", http.StatusUnauthorized}, {writeKey, http.StatusForbidden}} {
		for _, r := range [][2]string{{"GET", "/admin/schemas"}, {"POST", "/admin/schemas"}, {"GET", "/admin/schemas/c/n/1"}} {
			if res := call(t, h, r[0], r[1], k.key, `{"category": "c", "name": "n", "schema": {}}`); res.status != k.status {
				t.Errorf("%s %s with key %q: %d, want %d", r[0], r[1], k.key, res.status, k.status)
			}
		}
	}
}

// TestSchemaPublishedAfterKafkaReturns: a schema added while Kafka is down
// is stored (201, published_at null) and published by the publisher's
// retries once Kafka is back.
func TestSchemaPublishedAfterKafkaReturns(t *testing.T) {
	topic := &schemaTopic{down: true}
	h, pub := newSchemaServer(t, topic)
	res := call(t, h, "POST", "/admin/schemas", adminKey, `{"category": "c", "name": "n", "schema": {}}`)
	var rec schemas.Record
	res.decode(t, &rec)
	if res.status != http.StatusCreated || rec.PublishedAt != nil {
		t.Fatalf("add while Kafka is down: %d %s", res.status, res.body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { pub.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(100 * time.Millisecond)
	topic.setDown(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := call(t, h, "GET", "/admin/schemas/c/n/1", adminKey, "")
		res.decode(t, &rec)
		if rec.PublishedAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never published: %s", res.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if keys := topic.keys(); len(keys) == 0 || keys[0] != "c/n/1" {
		t.Fatalf("published %v", keys)
	}
}

func TestApplicationStrictTypes(t *testing.T) {
	h, _ := newSchemaServer(t, &schemaTopic{})
	var app admin.Application
	res := call(t, h, "POST", "/admin/applications", adminKey, `{"name": "typed", "strict_types": true}`)
	res.decode(t, &app)
	if res.status != http.StatusCreated || !app.Settings.StrictTypes || !strings.Contains(string(res.body), `"strict_types":true`) {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	res = call(t, h, "PATCH", "/admin/applications/"+app.ID.String(), adminKey, `{"name": "still typed"}`)
	res.decode(t, &app)
	if !app.Settings.StrictTypes {
		t.Fatalf("a patch without strict_types changed it: %s", res.body)
	}
	res = call(t, h, "PATCH", "/admin/applications/"+app.ID.String(), adminKey, `{"strict_types": false}`)
	res.decode(t, &app)
	if res.status != http.StatusOK || app.Settings.StrictTypes {
		t.Fatalf("patch: %d %s", res.status, res.body)
	}
}

// TestSchemaGuards: a schema that accepts nothing gets 422; a dry run
// answers 200 with how many stored events would fail and stores nothing; a
// version that stored events fail gets 409 with the same check unless
// forced.
func TestSchemaGuards(t *testing.T) {
	topic := &schemaTopic{}
	s := newTestServer(t, func(s *testServer) []Option {
		st, ss, err := newSchemas(s.db)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := schemas.NewPublisher(schemas.PublisherConfig{Store: st, Producer: topic, Topic: "eye.schemas.v1", Timeout: time.Second,
			Interval: time.Hour, Ensure: func(context.Context) error { return nil }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return []Option{WithSchemas(ss, pub, 5)}
	})
	for i, data := range []string{`{"host":"a"}`, `{"host":"a","path":"/"}`, `{"host":"a","path":"/"}`, `{"path":"/"}`, `{"host":"a","path":"/"}`, `{"host":"a"}`} {
		s.db.MustExec(`INSERT INTO events (id, app_id, session_id, category, name, data, "timestamp", received_at) VALUES ($1, $2, $3, 'page interaction', 'pageview', $4, $5, now())`,
			uuid.New(), auth.DevAppID, uuid.New(), data, time.Date(2021, 1, 1, 0, i, 0, 0, time.UTC))
	}
	add := func(query, schema string) answer {
		return call(t, s, "POST", "/admin/schemas/"+query, adminKey, `{"category": "page interaction", "name": "pageview", "schema": `+schema+`}`)
	}
	for _, nothing := range []string{`false`, `{"not": {}}`, `{"enum": []}`, `{"type": "string", "const": 1}`} {
		if res := add("?force=true", nothing); res.status != http.StatusUnprocessableEntity || res.code(t) != "schema_accepts_nothing" {
			t.Errorf("%s: %d %s, want 422 schema_accepts_nothing", nothing, res.status, res.body)
		}
	}
	// The last 5 events by timestamp: the oldest ({"host":"a"}) is not checked.
	var check schemas.Impact
	res := add("?dry_run=true", pageviewSchema)
	res.decode(t, &check)
	if res.status != http.StatusOK || check.Checked != 5 || check.Failing != 2 || len(check.Samples) != 2 ||
		check.Samples[0].Pointer != "/data/path" || check.Samples[1].Pointer != "/data/host" {
		t.Fatalf("dry run: %d %s", res.status, res.body)
	}
	var refused SchemaCheckFailure
	res = add("", pageviewSchema)
	res.decode(t, &refused)
	if res.status != http.StatusConflict || refused.Error.Code != "schema_rejects_events" || refused.Check.Failing != 2 || !strings.Contains(refused.Error.Message, "force=true") {
		t.Fatalf("unforced: %d %s", res.status, res.body)
	}
	if len(topic.keys()) != 0 {
		t.Fatalf("published after a dry run and a refusal: %v", topic.keys())
	}
	if res := add("?dry_run=maybe", pageviewSchema); res.status != http.StatusBadRequest || res.code(t) != "invalid_parameter" {
		t.Fatalf("dry_run=maybe: %d %s", res.status, res.body)
	}
	var rec schemas.Record
	res = add("?force=true", pageviewSchema)
	res.decode(t, &rec)
	if res.status != http.StatusCreated || rec.Version != 1 {
		t.Fatalf("forced: %d %s", res.status, res.body)
	}
	if res := add("", `{"type": "object"}`); res.status != http.StatusCreated {
		t.Fatalf("a version every event passes: %d %s", res.status, res.body)
	}
}
