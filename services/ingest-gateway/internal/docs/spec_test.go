package docs

import (
	"encoding/json"
	"testing"
)

// Every gateway operation that takes a key lists the statuses its
// middleware answers: 401 (no valid key), 403 (no write scope, origin not
// allowed), 413, 415 (Content-Encoding), 429 (failed authentications) and
// 503 (keys cannot be checked, Kafka away).
func TestWriteOperationsListMiddlewareStatuses(t *testing.T) {
	var s struct {
		Paths map[string]map[string]struct {
			Security  []map[string][]string `json:"security"`
			Responses map[string]any        `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(SwaggerInfo.ReadDoc()), &s); err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, ops := range s.Paths {
		for method, op := range ops {
			if len(op.Security) == 0 {
				continue
			}
			n++
			for _, status := range []string{"400", "401", "403", "413", "415", "429", "503"} {
				if _, ok := op.Responses[status]; !ok {
					t.Errorf("%s %s does not list %s", method, path, status)
				}
			}
		}
	}
	if n != 2 {
		t.Errorf("%d authenticated operations, want 2 (POST /events/, POST /sessions/)", n)
	}
}
