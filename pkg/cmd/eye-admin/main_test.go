package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeAPI records requests and answers from a table keyed by "METHOD path".
type fakeAPI struct {
	t        *testing.T
	answers  map[string]string
	requests []recorded
}

type recorded struct {
	method, path, auth string
	body               map[string]any
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec := recorded{method: r.Method, path: r.URL.RequestURI(), auth: r.Header.Get("Authorization")}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &rec.body); err != nil {
			f.t.Errorf("body %s: %v", b, err)
		}
	}
	f.requests = append(f.requests, rec)
	ans, ok := f.answers[r.Method+" "+r.URL.RequestURI()]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error": {"code": "not_found", "message": "no such resource"}}`)
		return
	}
	io.WriteString(w, ans)
}

func newFake(t *testing.T, answers map[string]string) (*fakeAPI, []string) {
	f := &fakeAPI{t: t, answers: answers}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, []string{"-url", srv.URL, "-key", "eye_a_test"}
}

const appJSON = `{"id": "0192f0c0-0000-7000-8000-000000000001", "name": "shop", "settings": {"allowed_origins": ["https://shop.example"], "rate_limit": 50, "rate_burst": 0, "strict_sessions": true}, "created_at": "2026-01-02T03:04:05Z", "disabled_at": null}`

func TestAppsCreateAndList(t *testing.T) {
	f, base := newFake(t, map[string]string{
		"POST /admin/applications":                                              appJSON,
		"GET /admin/applications?limit=1000":                                    `{"results": [` + appJSON + `], "next": "http://query.example/admin/applications/?cursor=c1&limit=1000", "previous": null}`,
		"GET /admin/applications/?cursor=c1&limit=1000":                         `{"results": [{"id": "0192f0c0-0000-7000-8000-000000000002", "name": "blog", "settings": {}, "created_at": "2026-01-02T03:04:05Z", "disabled_at": "2026-01-03T00:00:00Z"}], "next": null}`,
		"POST /admin/applications/0192f0c0-0000-7000-8000-000000000001/disable": appJSON,
		"PATCH /admin/applications/0192f0c0-0000-7000-8000-000000000001":        appJSON,
	})
	var out bytes.Buffer
	err := run(context.Background(), append(base, "apps", "create", "-name", "shop", "-origins", "https://shop.example, http://localhost:3000", "-rate", "50", "-strict"), &out)
	if err != nil {
		t.Fatal(err)
	}
	req := f.requests[0]
	if req.method != "POST" || req.auth != "Bearer eye_a_test" || req.body["name"] != "shop" || req.body["rate_limit"] != 50.0 ||
		req.body["strict_sessions"] != true || len(req.body["allowed_origins"].([]any)) != 2 {
		t.Fatalf("request %+v", req)
	}
	if s := out.String(); !strings.Contains(s, "NAME") || !strings.Contains(s, "shop") || !strings.Contains(s, "https://shop.example") {
		t.Fatalf("output:\n%s", s)
	}

	out.Reset()
	if err := run(context.Background(), append(base, "apps", "list"), &out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "shop") || !strings.Contains(s, "blog") || !strings.Contains(s, "disabled") || strings.Count(s, "\n") != 3 {
		t.Fatalf("list output (both pages):\n%s", s)
	}
	out.Reset()
	if err := run(context.Background(), append(base, "-json", "apps", "list"), &out); err != nil {
		t.Fatal(err)
	}
	var apps []application
	if err := json.Unmarshal(out.Bytes(), &apps); err != nil || len(apps) != 2 || apps[1].Name != "blog" {
		t.Fatalf("json list: %v\n%s", err, out.String())
	}

	out.Reset()
	if err := run(context.Background(), append(base, "apps", "disable", "0192f0c0-0000-7000-8000-000000000001"), &out); err != nil {
		t.Fatal(err)
	}
	n := len(f.requests)
	if err := run(context.Background(), append(base, "apps", "update", "0192f0c0-0000-7000-8000-000000000001", "-rate", "0", "-strict=false"), &out); err != nil {
		t.Fatal(err)
	}
	if b := f.requests[n].body; len(b) != 2 || b["rate_limit"] != 0.0 || b["strict_sessions"] != false {
		t.Fatalf("update sends only the flags given: %v", b)
	}
}

func TestKeys(t *testing.T) {
	const created = `{"id": "k2", "application_id": "a1", "key": "eye_w_SECRETSECRETSECRETSECRETSECRET12", "prefix": "eye_w_SECR", "label": "site", "scopes": ["write"], "created_at": "2026-01-02T03:04:05Z", "expires_at": null, "revoked_at": null}`
	const rotated = `{"id": "k3", "application_id": "a1", "key": "eye_w_NEWNEWNEWNEWNEWNEWNEWNEWNEWNEW12", "prefix": "eye_w_NEWN", "label": "site", "scopes": ["write"], "created_at": "2026-01-02T03:04:05Z", "expires_at": null, "revoked_at": null,
		"previous": {"id": "k2", "prefix": "eye_w_SECR", "scopes": ["write"], "created_at": "2026-01-02T03:04:05Z", "expires_at": "2026-01-03T03:04:05Z", "revoked_at": null}}`
	f, base := newFake(t, map[string]string{
		"POST /admin/applications/a1/keys": created,
		"GET /admin/applications/a1/keys":  `{"results": [{"id": "k1", "prefix": "eye_r_AAAA", "label": "", "scopes": ["read", "admin"], "created_at": "2026-01-02T03:04:05Z", "expires_at": null, "revoked_at": "2026-01-02T04:00:00Z"}, {"id": "k2", "prefix": "eye_w_SECR", "label": "site", "scopes": ["write"], "created_at": "2026-01-02T03:04:05Z", "expires_at": null, "revoked_at": null}], "next": null}`,
		"POST /admin/keys/k2/rotate":       rotated,
		"POST /admin/keys/k2/revoke":       `{"id": "k2", "prefix": "eye_w_SECR", "scopes": ["write"], "created_at": "2026-01-02T03:04:05Z", "revoked_at": "2026-01-02T05:00:00Z"}`,
	})
	var out bytes.Buffer
	if err := run(context.Background(), append(base, "keys", "create", "-app", "a1", "-scopes", "read,admin", "-label", "site"), &out); err != nil {
		t.Fatal(err)
	}
	if b := f.requests[0].body; len(b["scopes"].([]any)) != 2 || b["label"] != "site" {
		t.Fatalf("request %v", b)
	}
	if s := out.String(); !strings.Contains(s, "eye_w_SECRETSECRETSECRETSECRETSECRET12") || !strings.Contains(s, "only this once") {
		t.Fatalf("create output:\n%s", s)
	}

	out.Reset()
	if err := run(context.Background(), append(base, "keys", "list", "-app", "a1"), &out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "eye_r_AAAA") || !strings.Contains(s, "revoked") || !strings.Contains(s, "active") || strings.Contains(s, "SECRETSECRET") {
		t.Fatalf("list output:\n%s", s)
	}

	// Flags after the positional argument work too.
	out.Reset()
	if err := run(context.Background(), append(base, "keys", "rotate", "k2", "-overlap", "1h"), &out); err != nil {
		t.Fatal(err)
	}
	if b := f.requests[len(f.requests)-1].body; b["overlap"] != "1h" {
		t.Fatalf("rotate body %v", b)
	}
	if s := out.String(); !strings.Contains(s, "eye_w_NEWN") || !strings.Contains(s, "keeps working until 2026-01-03T03:04:05Z") {
		t.Fatalf("rotate output:\n%s", s)
	}
	out.Reset()
	if err := run(context.Background(), append(base, "-json", "keys", "rotate", "k2"), &out); err != nil {
		t.Fatal(err)
	}
	if f.requests[len(f.requests)-1].body != nil {
		t.Fatal("rotate without -overlap sends a body (the server's default must apply)")
	}
	var k key
	if err := json.Unmarshal(out.Bytes(), &k); err != nil || k.Secret == "" || k.Previous == nil {
		t.Fatalf("rotate -json: %v\n%s", err, out.String())
	}

	out.Reset()
	if err := run(context.Background(), append(base, "keys", "revoke", "k2"), &out); err != nil || !strings.Contains(out.String(), "revoked k2") {
		t.Fatalf("revoke: %v %s", err, out.String())
	}
}

func TestErrors(t *testing.T) {
	_, base := newFake(t, nil)
	var out bytes.Buffer
	for _, args := range [][]string{{}, {"apps"}, {"apps", "explode"}, {"apps", "create"}, {"apps", "disable"},
		{"apps", "disable", "a", "b"}, {"keys", "create", "-scopes", "write"}, {"keys", "list"}, {"apps", "list", "-bogus"}} {
		if err := run(context.Background(), append(base, args...), &out); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	err := run(context.Background(), append(base, "apps", "get", "nope"), &out)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "not_found" || !strings.Contains(err.Error(), "not_found") {
		t.Errorf("API error: %v", err)
	}
	t.Setenv("EYE_ADMIN_KEY", "")
	if err := run(context.Background(), []string{"-url", "http://127.0.0.1:1", "apps", "list"}, &out); err == nil || !strings.Contains(err.Error(), "EYE_ADMIN_KEY") {
		t.Errorf("no key: %v", err)
	}
	if err := run(context.Background(), []string{"-url", "localhost:8081", "-key", "k", "apps", "list"}, &out); err == nil || !strings.Contains(err.Error(), "URL") {
		t.Errorf("bad URL: %v", err)
	}
}
