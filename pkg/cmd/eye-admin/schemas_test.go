package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

const schemaJSON = `{"category": "page interaction", "name": "pageview", "version": 2, "schema": {"required": ["host"]}, "created_at": "2026-01-02T03:04:05Z", "published_at": null}`

func TestSchemasCommands(t *testing.T) {
	f, base := newFake(t, map[string]string{
		"POST /admin/schemas": schemaJSON,
		"GET /admin/schemas?category=page+interaction&limit=1000":           `{"results": [` + schemaJSON + `], "next": "https://query.example/admin/schemas?category=page+interaction&cursor=c1&limit=1000"}`,
		"GET /admin/schemas?category=page+interaction&cursor=c1&limit=1000": `{"results": [], "next": null}`,
		"GET /admin/schemas/page%20interaction/pageview/2":                  schemaJSON,
		"POST /admin/applications":                                          appJSON,
		"PATCH /admin/applications/0192f0c0-0000-7000-8000-000000000001":    appJSON,
	})
	ctx := context.Background()
	stdin = strings.NewReader(`{"required": ["host"]}`)
	var out bytes.Buffer
	if err := run(ctx, append(base, "schemas", "add", "-category", "page interaction", "-name", "pageview", "-"), &out); err != nil {
		t.Fatal(err)
	}
	req := f.requests[0]
	if req.body["category"] != "page interaction" || req.body["name"] != "pageview" || req.body["schema"].(map[string]any)["required"] == nil ||
		!strings.Contains(out.String(), "not yet") {
		t.Fatalf("add: %+v\n%s", req, out.String())
	}
	out.Reset()
	if err := run(ctx, append(base, "schemas", "list", "-category", "page interaction"), &out); err != nil {
		t.Fatal(err)
	}
	if len(f.requests) != 3 || !strings.Contains(out.String(), "pageview") {
		t.Fatalf("list: %d requests\n%s", len(f.requests), out.String())
	}
	out.Reset()
	if err := run(ctx, append(base, "schemas", "get", "page interaction", "pageview", "2"), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"required"`) {
		t.Fatalf("get printed %s", out.String())
	}
	if err := run(ctx, append(base, "schemas", "add", "-name", "pageview", "-"), &out); err == nil {
		t.Fatal("add without -category succeeded")
	}

	if err := run(ctx, append(base, "apps", "create", "-name", "typed", "-strict-types"), &out); err != nil {
		t.Fatal(err)
	}
	if b := f.requests[len(f.requests)-1].body; b["strict_types"] != true || b["strict_sessions"] != false {
		t.Fatalf("create body %v", b)
	}
	if err := run(ctx, append(base, "apps", "update", "-strict-types=false", "0192f0c0-0000-7000-8000-000000000001"), &out); err != nil {
		t.Fatal(err)
	}
	if b := f.requests[len(f.requests)-1].body; len(b) != 1 || b["strict_types"] != false {
		t.Fatalf("update body %v", b)
	}
}

func TestSchemasAddDryRunAndForce(t *testing.T) {
	f, base := newFake(t, map[string]string{
		"POST /admin/schemas?dry_run=true": `{"category": "page interaction", "name": "pageview", "checked": 10, "failing": 1, "samples": [{"event_id": "0192f0c0-0000-7000-8000-0000000000ee", "pointer": "/data/path", "message": "missing property 'path'"}]}`,
		"POST /admin/schemas?force=true":   schemaJSON,
	})
	ctx := context.Background()
	stdin = strings.NewReader(`{"required": ["path"]}`)
	var out bytes.Buffer
	if err := run(ctx, append(base, "schemas", "add", "-category", "page interaction", "-name", "pageview", "-dry-run", "-"), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1 of the type's last 10 stored events would fail") || !strings.Contains(out.String(), "/data/path") {
		t.Fatalf("dry run printed %s", out.String())
	}
	stdin = strings.NewReader(`{"required": ["path"]}`)
	out.Reset()
	if err := run(ctx, append(base, "schemas", "add", "-category", "page interaction", "-name", "pageview", "-force", "-"), &out); err != nil {
		t.Fatal(err)
	}
	if len(f.requests) != 2 || !strings.Contains(out.String(), "pageview") {
		t.Fatalf("force: %d requests\n%s", len(f.requests), out.String())
	}
}
