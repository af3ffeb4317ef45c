package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/lab/harness"
)

type schemaRecord struct {
	Category    string     `json:"category"`
	Name        string     `json:"name"`
	Version     int        `json:"version"`
	PublishedAt *time.Time `json:"published_at"`
}

type schemaReason struct {
	Code    string `json:"code"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// TestSchemas drives the per-type JSON Schemas through the running
// pipeline: the shipped schemas loaded from EYE_SCHEMA_DIR, a schema added
// through the admin API applied by the validator, a new version picked up
// without a restart, version selection, and strict types.
func TestSchemas(t *testing.T) {
	dir, err := filepath.Abs("../../../deploy/schemas")
	if err != nil {
		t.Fatal(err)
	}
	p := startPipeline(t, pipelineOpts{env: []string{"EYE_SCHEMA_DIR=" + dir}})
	validatorPID := p.Instance(harness.Validator).Pid()

	// post sends one event with key and returns its receipt id.
	post := func(t *testing.T, key string, ev map[string]any) string {
		t.Helper()
		res := do(t, "POST", p.gateway+"/events/", key, ev)
		var rc receipt
		res.json(t, &rc)
		if res.status != http.StatusAccepted || rc.Status != "accepted" {
			t.Fatalf("POST /events/: %d %s", res.status, res.body)
		}
		return rc.ID
	}
	event := func(category, name string, data map[string]any, extra ...any) map[string]any {
		ev := map[string]any{"session_id": uuid.NewString(), "category": category, "name": name, "data": data,
			"timestamp": "2021-06-15T00:00:00Z"}
		for i := 0; i+1 < len(extra); i += 2 {
			ev[extra[i].(string)] = extra[i+1]
		}
		return ev
	}
	// rejected waits for the error record of id and returns its reasons.
	rejected := func(t *testing.T, id string) []schemaReason {
		t.Helper()
		var e struct{ Reasons []schemaReason }
		p.eventually(15*time.Second, "error record "+id, func() bool {
			res := do(t, "GET", p.query+"/errors/"+id, adminKey, nil)
			if res.status != http.StatusOK {
				return false
			}
			res.json(t, &e)
			return true
		})
		return e.Reasons
	}
	landed := func(t *testing.T, id string) {
		t.Helper()
		p.eventually(15*time.Second, "event "+id+" stored", func() bool {
			if do(t, "GET", p.query+"/errors/"+id, adminKey, nil).status == http.StatusOK {
				t.Fatalf("event %s became an error record", id)
			}
			return do(t, "GET", p.query+"/events/"+id, adminKey, nil).status == http.StatusOK
		})
	}
	// validatorHas reports whether the validator applies category/name/version.
	validatorHas := func(t *testing.T, category, name string, version int) bool {
		var held page[schemaRecord]
		res := do(t, "GET", p.validate+"/schemas", "", nil)
		if res.status != http.StatusOK {
			return false
		}
		res.json(t, &held)
		return slices.ContainsFunc(held.Results, func(r schemaRecord) bool {
			return r.Category == category && r.Name == name && r.Version == version
		})
	}
	// addSchemaQuery adds a schema version with query (e.g. "?force=true").
	addSchemaQuery := func(t *testing.T, query, category, name, schema string) schemaRecord {
		t.Helper()
		res := do(t, "POST", p.query+"/admin/schemas"+query, adminKey, `{"category": "`+category+`", "name": "`+name+`", "schema": `+schema+`}`)
		var rec schemaRecord
		res.json(t, &rec)
		// published_at may still be null: the schema is stored, and query-api
		// publishes it to the validators as soon as the schemas topic is up.
		if res.status != http.StatusCreated {
			t.Fatalf("add schema: %d %s", res.status, res.body)
		}
		return rec
	}
	addSchema := func(t *testing.T, category, name, schema string) schemaRecord {
		t.Helper()
		return addSchemaQuery(t, "", category, name, schema)
	}
	codes := func(rs []schemaReason) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Code+" "+r.Field)
		}
		return strings.Join(out, ", ")
	}

	t.Run("shipped schemas are loaded from EYE_SCHEMA_DIR and applied", func(t *testing.T) {
		var list page[schemaRecord]
		do(t, "GET", p.query+"/admin/schemas/", adminKey, nil).json(t, &list)
		if len(list.Results) != 3 {
			t.Fatalf("stored schemas %+v", list.Results)
		}
		p.eventually(15*time.Second, "the validator holds the shipped schemas", func() bool {
			return validatorHas(t, "page interaction", "cta click", 1) && validatorHas(t, "form interaction", "submit", 1)
		})
		landed(t, post(t, writeKey, event("page interaction", "cta click",
			map[string]any{"host": "www.consumeraffairs.com", "path": "/", "element": "chat bubble"})))
		reasons := rejected(t, post(t, writeKey, event("page interaction", "cta click",
			map[string]any{"host": "www.consumeraffairs.com", "element": "chat bubble"})))
		if got := codes(reasons); got != "schema_violation /data/path" || !strings.Contains(reasons[0].Message, "path") {
			t.Fatalf("cta click without a path: %v", reasons)
		}
	})

	t.Run("a schema added through the API applies, then its new version without a restart", func(t *testing.T) {
		rec := addSchema(t, "e2e shop", "checkout", `{"type": "object", "required": ["host", "path"],
			"properties": {"host": {"type": "string"}, "path": {"type": "string"}, "amount": {"type": "number", "minimum": 0}}}`)
		if rec.Version != 1 {
			t.Fatalf("version %d", rec.Version)
		}
		p.eventually(15*time.Second, "the validator holds e2e shop/checkout/1", func() bool { return validatorHas(t, "e2e shop", "checkout", 1) })

		reasons := rejected(t, post(t, writeKey, event("e2e shop", "checkout", map[string]any{"host": "h", "amount": "12"})))
		if got := codes(reasons); got != "schema_violation /data/path, schema_violation /data/amount" {
			t.Fatalf("violations: %s (%v)", got, reasons)
		}
		conforming := map[string]any{"host": "h", "path": "/cart", "amount": 12.5}
		landed(t, post(t, writeKey, event("e2e shop", "checkout", conforming)))

		// Version 2 also requires a currency, which the stored checkout
		// lacks: refused unless forced. The validator is not restarted.
		v2 := `{"type": "object", "required": ["host", "path", "currency"]}`
		if res := do(t, "POST", p.query+"/admin/schemas", adminKey, `{"category": "e2e shop", "name": "checkout", "schema": `+v2+`}`); res.status != http.StatusConflict {
			t.Fatalf("a version the stored checkout fails, unforced: %d %s", res.status, res.body)
		}
		start := time.Now()
		if rec := addSchemaQuery(t, "?force=true", "e2e shop", "checkout", v2); rec.Version != 2 {
			t.Fatalf("version %d", rec.Version)
		}
		p.eventually(15*time.Second, "the validator holds version 2", func() bool { return validatorHas(t, "e2e shop", "checkout", 2) })
		t.Logf("version 2 applied by the validator %s after it was added", time.Since(start).Round(time.Millisecond))
		if pid := p.Instance(harness.Validator).Pid(); pid != validatorPID {
			t.Fatal("the validator was restarted")
		}
		reasons = rejected(t, post(t, writeKey, event("e2e shop", "checkout", conforming)))
		if got := codes(reasons); got != "schema_violation /data/currency" {
			t.Fatalf("the latest version applies: %s", got)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("version 2 took %s to apply", d)
		}
		landed(t, post(t, writeKey, event("e2e shop", "checkout", conforming, "schema_version", 1)))
		reasons = rejected(t, post(t, writeKey, event("e2e shop", "checkout", conforming, "schema_version", 7)))
		if got := codes(reasons); got != "unknown_schema_version /schema_version" {
			t.Fatalf("an unknown version: %s", got)
		}
		reasons = rejected(t, post(t, writeKey, event("e2e shop", "checkout", conforming, "schema_version", "1")))
		if got := codes(reasons); got != "invalid_field /schema_version" {
			t.Fatalf("a version that is not an integer: %s", got)
		}
	})

	t.Run("strict types: a type without a schema is an error only for such applications", func(t *testing.T) {
		res := do(t, "POST", p.query+"/admin/applications", adminKey, map[string]any{"name": "typed", "strict_types": true})
		var app struct {
			ID       string
			Settings struct {
				StrictTypes bool `json:"strict_types"`
			}
		}
		res.json(t, &app)
		if res.status != http.StatusCreated || !app.Settings.StrictTypes {
			t.Fatalf("create a strict-types application: %d %s", res.status, res.body)
		}
		res = do(t, "POST", p.query+"/admin/applications/"+app.ID+"/keys", adminKey, map[string]any{"scopes": []string{"write"}})
		var k apiKey
		res.json(t, &k)
		if res.status != http.StatusCreated {
			t.Fatalf("create key: %d %s", res.status, res.body)
		}
		untyped := map[string]any{"anything": true}
		reasons := rejected(t, post(t, k.Key, event("e2e shop", "untyped", untyped)))
		if len(reasons) != 1 || reasons[0].Code != "unknown_event_type" || !strings.Contains(reasons[0].Message, "e2e shop/untyped") {
			t.Fatalf("strict types: %v", reasons)
		}
		landed(t, post(t, k.Key, event("e2e shop", "checkout", map[string]any{"host": "h", "path": "/", "currency": "EUR"})))
		landed(t, post(t, writeKey, event("e2e shop", "untyped", untyped)))

		// Turning it off applies within the settings cache TTL (5 s).
		if res := do(t, "PATCH", p.query+"/admin/applications/"+app.ID, adminKey, map[string]any{"strict_types": false}); res.status != http.StatusOK {
			t.Fatalf("patch: %d %s", res.status, res.body)
		}
		p.eventually(30*time.Second, "an untyped event of the application lands", func() bool {
			id := post(t, k.Key, event("e2e shop", "untyped", untyped))
			var stored bool
			p.eventually(15*time.Second, fmt.Sprintf("event %s handled", id), func() bool {
				stored = do(t, "GET", p.query+"/events/"+id, adminKey, nil).status == http.StatusOK
				return stored || do(t, "GET", p.query+"/errors/"+id, adminKey, nil).status == http.StatusOK
			})
			return stored
		})
	})
}
