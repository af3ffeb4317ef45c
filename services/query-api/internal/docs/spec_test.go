package docs

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// spec is the part of swagger.json these tests read.
type spec struct {
	Paths map[string]map[string]struct {
		Security  []map[string][]string `json:"security"`
		Responses map[string]any        `json:"responses"`
	} `json:"paths"`
	Definitions map[string]struct {
		Enum       []string                  `json:"enum"`
		Properties map[string]map[string]any `json:"properties"`
	} `json:"definitions"`
}

func load(t *testing.T) spec {
	t.Helper()
	var s spec
	if err := json.Unmarshal([]byte(SwaggerInfo.ReadDoc()), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// definition finds a definition by the end of its name (swag prefixes
// internal types with their package path).
func (s spec) definition(t *testing.T, suffix string) map[string]map[string]any {
	t.Helper()
	for name, d := range s.Definitions {
		if strings.HasSuffix(name, suffix) {
			return d.Properties
		}
	}
	t.Fatalf("no definition %s", suffix)
	return nil
}

// Every authenticated operation can answer 401 (no valid key), 403 (the
// key lacks the scope) and 503 (keys cannot be checked).
func TestAuthenticatedOperationsListAuthStatuses(t *testing.T) {
	for path, ops := range load(t).Paths {
		for method, op := range ops {
			if len(op.Security) == 0 {
				continue
			}
			for _, status := range []string{"401", "403", "503"} {
				if _, ok := op.Responses[status]; !ok {
					t.Errorf("%s %s does not list %s", method, path, status)
				}
			}
		}
	}
}

func TestNullableFieldsAreNullable(t *testing.T) {
	s := load(t)
	for def, fields := range map[string][]string{
		"query.Event":        {"client_timestamp", "updated_at", "replayed_from"},
		"query.Session":      {"registered_at", "first_event_at", "last_event_at"},
		"query.Error":        {"session_id", "category", "name", "schema_version", "replay_of", "replayed_as", "replayed_at"},
		"query.AuditEntry":   {"after"},
		"admin.Application":  {"disabled_at"},
		"admin.Key":          {"expires_at", "revoked_at"},
		"schemas.Record":     {"created_by", "published_at"},
		"httpapi.EventList":  {"next", "previous"},
		"query.ErrorGroup":   {"category", "name", "schema_version", "stage"},
		"httpapi.SchemaList": {"next", "previous"},
	} {
		props := s.definition(t, def)
		for _, f := range fields {
			if props[f]["x-nullable"] != true {
				t.Errorf("%s.%s is not x-nullable: %v", def, f, props[f])
			}
		}
	}
}

func TestSchemaBodiesAreAnyJSON(t *testing.T) {
	s := load(t)
	for _, def := range []string{"schemas.Record", "httpapi.SchemaRequest"} {
		if typ, ok := s.definition(t, def)["schema"]["type"]; ok {
			t.Errorf("%s.schema is typed %v: a JSON Schema may be true or false", def, typ)
		}
	}
}

func TestReasonCodesIncludeReplayCodes(t *testing.T) {
	s := load(t)
	if !slices.Contains(s.Definitions["event.Code"].Enum, "unknown_application") {
		t.Errorf("event.Code enum lacks unknown_application: %v", s.Definitions["event.Code"].Enum)
	}
}
