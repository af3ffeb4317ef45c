package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
	"github.com/the-eye/eye/services/query-api/internal/admin"
	"github.com/the-eye/eye/services/query-api/internal/postgres"
	"github.com/the-eye/eye/services/query-api/internal/query"
	"github.com/the-eye/eye/services/query-api/internal/schemas"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

const (
	adminKey = "eye_a_httpapi_admin_test_key_000000000"
	readKey  = "eye_r_httpapi_read_test_key_0000000000"
	writeKey = "eye_w_httpapi_write_test_key_000000000"
)

// testServer is the query API on a fresh database with the dev keys:
// adminKey (read + admin), readKey (read only) and writeKey.
type testServer struct {
	http.Handler
	db    *sqlx.DB
	keys  *auth.PGStore
	store *query.Service
	// pg is the query domain's storage the features (erasure, replay) use.
	pg *postgres.Store
}

// newTestServer builds the API; features, when given, returns the options
// that switch on what a test needs (erasure, replay, schemas), built on the
// server's database and store.
func newTestServer(t *testing.T, features func(s *testServer) []Option) *testServer {
	t.Helper()
	ctx := context.Background()
	db, err := pg.Open(ctx, testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &testServer{db: db}
	if s.keys, err = auth.NewPGStore(db); err != nil {
		t.Fatal(err)
	}
	if err := s.keys.RegisterDevKeys(ctx, auth.DevKeys{Write: writeKey, Read: readKey, Admin: adminKey}); err != nil {
		t.Fatal(err)
	}
	authn, _ := auth.NewAuthenticator(s.keys, 50*time.Millisecond)
	if s.pg, err = postgres.NewStore(db, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if s.store, err = query.NewService(s.pg, event.DefaultRules()); err != nil {
		t.Fatal(err)
	}
	adminStorage, err := postgres.NewAdmin(db, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	admins, err := admin.NewService(adminStorage, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var opts []Option
	if features != nil {
		opts = features(s)
	}
	api, err := New(s.store, admins, authn, func(c *gin.Context) { c.Status(http.StatusOK) }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.TestMode)
	r := gin.New()
	api.Register(r)
	s.Handler = r
	return s
}

// addReader gives app a read key on s.
func (s *testServer) addReader(t *testing.T, app uuid.UUID, key string) {
	t.Helper()
	ctx := context.Background()
	if err := s.keys.EnsureApplication(ctx, app, "reader"); err != nil {
		t.Fatal(err)
	}
	if err := s.keys.PutKey(ctx, app, key, "reader", auth.ScopeRead); err != nil {
		t.Fatal(err)
	}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

func (a answer) code(t *testing.T) string {
	t.Helper()
	var e struct{ Error struct{ Code string } }
	a.decode(t, &e)
	return e.Error.Code
}

func call(t *testing.T, h http.Handler, method, path, key, body string) answer {
	t.Helper()
	return callWith(t, h, method, path, key, body)
}

// callWith is call with extra request headers (name, value, …).
func callWith(t *testing.T, h http.Handler, method, path, key, body string, headers ...string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return answer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// cursorOf is the cursor parameter of a page URL.
func cursorOf(t *testing.T, pageURL string) string {
	t.Helper()
	u, err := url.Parse(pageURL)
	if err != nil || u.Query().Get("cursor") == "" {
		t.Fatalf("page URL %q: %v", pageURL, err)
	}
	return u.Query().Get("cursor")
}

func TestAdminApplications(t *testing.T) {
	h := newTestServer(t, nil)
	res := call(t, h, "POST", "/admin/applications/", adminKey,
		`{"name": "shop", "allowed_origins": ["https://Shop.example", "http://localhost:3000"], "rate_limit": 20, "rate_burst": 40, "strict_sessions": true}`)
	if res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	var app admin.Application
	res.decode(t, &app)
	if app.Name != "shop" || app.Settings.AllowedOrigins[0] != "https://shop.example" || app.Settings.RateBurst != 40 ||
		!app.Settings.StrictSessions || app.DisabledAt != nil || app.CreatedAt.IsZero() {
		t.Fatalf("created %s", res.body)
	}
	for _, want := range []string{`"settings":{`, `"disabled_at":null`, `"created_at":`} {
		if !bytes.Contains(res.body, []byte(want)) {
			t.Errorf("answer %s lacks %s", res.body, want)
		}
	}

	for _, c := range []struct{ body, code string }{
		{`{"name": ""}`, "invalid_name"},
		{`{"name": "   "}`, "invalid_name"},
		{`{"name": "x", "allowed_origins": ["https://shop.example/"]}`, "invalid_origin"},
		{`{"name": "x", "allowed_origins": ["shop.example"]}`, "invalid_origin"},
		{`{"name": "x", "rate_limit": -1}`, "invalid_rate"},
		{`{"name": "x", "rate_burst": -5}`, "invalid_rate"},
		{`{"name": "x", "owner": "me"}`, "invalid_body"},
		{`{"name": "x", "rate_burst": 1.5}`, "invalid_body"},
		{`not json`, "invalid_body"},
		{``, "invalid_body"},
		{`{"name": "x"} {"name": "y"}`, "invalid_body"},
	} {
		if res := call(t, h, "POST", "/admin/applications", adminKey, c.body); res.status != http.StatusBadRequest || res.code(t) != c.code {
			t.Errorf("create %s: %d %s, want 400 %s", c.body, res.status, res.body, c.code)
		}
	}

	path := "/admin/applications/" + app.ID.String()
	if res := call(t, h, "GET", path, adminKey, ""); res.status != http.StatusOK {
		t.Fatalf("get: %d %s", res.status, res.body)
	}
	for _, p := range []string{"/admin/applications/" + uuid.NewString(), "/admin/applications/nope"} {
		if res := call(t, h, "GET", p, adminKey, ""); res.status != http.StatusNotFound || res.code(t) != "not_found" {
			t.Errorf("GET %s: %d %s", p, res.status, res.body)
		}
	}

	res = call(t, h, "PATCH", path+"/", adminKey, `{"name": "web shop", "allowed_origins": ["*"], "rate_limit": 0}`)
	var patched admin.Application
	res.decode(t, &patched)
	if res.status != http.StatusOK || patched.Name != "web shop" || len(patched.Settings.AllowedOrigins) != 1 ||
		patched.Settings.AllowedOrigins[0] != "*" || patched.Settings.RateLimit != 0 || patched.Settings.RateBurst != 40 || !patched.Settings.StrictSessions {
		t.Fatalf("patch: %d %s", res.status, res.body)
	}
	if res := call(t, h, "PATCH", path, adminKey, `{"name": ""}`); res.status != http.StatusBadRequest || res.code(t) != "invalid_name" {
		t.Errorf("patch empty name: %d %s", res.status, res.body)
	}
	if res := call(t, h, "PATCH", "/admin/applications/"+uuid.NewString(), adminKey, `{"name": "x"}`); res.status != http.StatusNotFound {
		t.Errorf("patch unknown: %d %s", res.status, res.body)
	}

	var list ApplicationList
	res = call(t, h, "GET", "/admin/applications", adminKey, "")
	res.decode(t, &list)
	if res.status != http.StatusOK || len(list.Results) != 2 || list.Next != nil || !bytes.Contains(res.body, []byte(`"next":null`)) {
		t.Fatalf("list (dev + shop): %d %s", res.status, res.body)
	}
	res = call(t, h, "GET", "/admin/applications/?limit=1", adminKey, "")
	res.decode(t, &list)
	if len(list.Results) != 1 || list.Next == nil {
		t.Fatalf("first page of 1: %s", res.body)
	}
	if list.Previous != nil || *list.Next != "http://example.com/admin/applications/?cursor="+cursorOf(t, *list.Next)+"&limit=1" {
		t.Fatalf("first page of 1: %s", res.body)
	}
	res = call(t, h, "GET", *list.Next, adminKey, "")
	res.decode(t, &list)
	if len(list.Results) != 1 || list.Results[0].ID != app.ID || list.Next != nil || list.Previous == nil {
		t.Fatalf("second page: %s", res.body)
	}
	res = call(t, h, "GET", *list.Previous, adminKey, "")
	res.decode(t, &list)
	if len(list.Results) != 1 || list.Results[0].ID != auth.DevAppID || list.Next == nil || list.Previous != nil {
		t.Fatalf("back to the first page: %s", res.body)
	}
	for _, q := range []string{"?limit=0", "?cursor=zzz", "?name=shop"} {
		if res := call(t, h, "GET", "/admin/applications"+q, adminKey, ""); res.status != http.StatusBadRequest {
			t.Errorf("list %s: %d", q, res.status)
		}
	}

	res = call(t, h, "POST", path+"/disable", adminKey, "")
	var disabled admin.Application
	res.decode(t, &disabled)
	if res.status != http.StatusOK || disabled.DisabledAt == nil {
		t.Fatalf("disable: %d %s", res.status, res.body)
	}
	res = call(t, h, "POST", path+"/enable/", adminKey, "")
	var enabled admin.Application
	res.decode(t, &enabled)
	if res.status != http.StatusOK || enabled.DisabledAt != nil {
		t.Fatalf("enable: %d %s", res.status, res.body)
	}
	if res := call(t, h, "POST", "/admin/applications/"+auth.DevAppID.String()+"/disable", adminKey, ""); res.status != http.StatusConflict || res.code(t) != "own_application" {
		t.Errorf("disable own application: %d %s", res.status, res.body)
	}
	if res := call(t, h, "POST", "/admin/applications/"+uuid.NewString()+"/disable", adminKey, ""); res.status != http.StatusNotFound {
		t.Errorf("disable unknown: %d %s", res.status, res.body)
	}
}

func TestAdminKeys(t *testing.T) {
	h := newTestServer(t, nil)
	var app admin.Application
	call(t, h, "POST", "/admin/applications", adminKey, `{"name": "shop"}`).decode(t, &app)
	keysPath := "/admin/applications/" + app.ID.String() + "/keys"

	res := call(t, h, "POST", keysPath, adminKey, `{"scopes": ["write"], "label": "checkout"}`)
	if res.status != http.StatusCreated || res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create key: %d %v %s", res.status, res.header, res.body)
	}
	var w admin.CreatedKey
	res.decode(t, &w)
	if !strings.HasPrefix(w.Secret, "eye_w_") || w.Prefix != w.Secret[:10] || w.ID == uuid.Nil || w.Label != "checkout" ||
		len(w.Scopes) != 1 || w.CreatedAt.IsZero() {
		t.Fatalf("created key %s", res.body)
	}
	var r admin.CreatedKey
	call(t, h, "POST", keysPath+"/", adminKey, `{"scopes": ["read"]}`).decode(t, &r)
	if !strings.HasPrefix(r.Secret, "eye_r_") {
		t.Fatalf("read key %+v", r)
	}
	for _, c := range []struct{ body, code string }{
		{`{"scopes": ["owner"]}`, "invalid_scope"},
		{`{"scopes": []}`, "invalid_scope"},
		{`{"scopes": ["write", "read"]}`, "invalid_scope"},
		{`{"scopes": "write"}`, "invalid_body"},
	} {
		if res := call(t, h, "POST", keysPath, adminKey, c.body); res.status != http.StatusBadRequest || res.code(t) != c.code {
			t.Errorf("create key %s: %d %s, want 400 %s", c.body, res.status, res.body, c.code)
		}
	}
	if res := call(t, h, "POST", "/admin/applications/"+uuid.NewString()+"/keys", adminKey, `{"scopes": ["read"]}`); res.status != http.StatusNotFound {
		t.Errorf("key for an unknown application: %d %s", res.status, res.body)
	}

	// The new keys work at once, with their application's scope.
	if res := call(t, h, "GET", "/events/", r.Secret, ""); res.status != http.StatusOK {
		t.Fatalf("new read key: %d %s", res.status, res.body)
	}

	res = call(t, h, "GET", keysPath, adminKey, "")
	var list KeyList
	res.decode(t, &list)
	if res.status != http.StatusOK || len(list.Results) != 2 || list.Results[0].Prefix != w.Prefix || list.Next != nil ||
		bytes.Contains(res.body, []byte(w.Secret)) || bytes.Contains(res.body, []byte(`"key"`)) {
		t.Fatalf("list keys: %d %s", res.status, res.body)
	}
	if res := call(t, h, "GET", "/admin/applications/"+uuid.NewString()+"/keys", adminKey, ""); res.status != http.StatusNotFound {
		t.Errorf("keys of an unknown application: %d", res.status)
	}

	// Rotation: default overlap with no body, or the one asked for.
	res = call(t, h, "POST", "/admin/keys/"+r.ID.String()+"/rotate", adminKey, "")
	var rot admin.RotatedKey
	res.decode(t, &rot)
	if res.status != http.StatusCreated || !strings.HasPrefix(rot.Secret, "eye_r_") || rot.Previous.ID != r.ID ||
		rot.Previous.ExpiresAt == nil || time.Until(rot.Previous.ExpiresAt.Time) < 119*time.Minute || res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate: %d %s", res.status, res.body)
	}
	for _, k := range []string{r.Secret, rot.Secret} {
		if res := call(t, h, "GET", "/events/", k, ""); res.status != http.StatusOK {
			t.Fatalf("during the overlap, %s: %d", k[:10], res.status)
		}
	}
	if res := call(t, h, "POST", "/admin/keys/"+w.ID.String()+"/rotate/", adminKey, `{"overlap": "soon"}`); res.status != http.StatusBadRequest || res.code(t) != "invalid_overlap" {
		t.Errorf("bad overlap: %d %s", res.status, res.body)
	}
	res = call(t, h, "POST", "/admin/keys/"+w.ID.String()+"/rotate", adminKey, `{"overlap": "30m"}`)
	res.decode(t, &rot)
	if res.status != http.StatusCreated || time.Until(rot.Previous.ExpiresAt.Time) > 31*time.Minute {
		t.Fatalf("rotate with overlap: %d %s", res.status, res.body)
	}
	if res := call(t, h, "POST", "/admin/keys/"+uuid.NewString()+"/rotate", adminKey, ""); res.status != http.StatusNotFound {
		t.Errorf("rotate unknown: %d", res.status)
	}

	// Revocation: the key stops within the cache TTL; it cannot be rotated.
	res = call(t, h, "POST", "/admin/keys/"+r.ID.String()+"/revoke", adminKey, "")
	var rev admin.Key
	res.decode(t, &rev)
	if res.status != http.StatusOK || rev.RevokedAt == nil || bytes.Contains(res.body, []byte(r.Secret)) {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	deadline := time.Now().Add(2 * time.Second)
	for call(t, h, "GET", "/events/", r.Secret, "").status != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("revoked key still works")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res := call(t, h, "POST", "/admin/keys/"+r.ID.String()+"/rotate", adminKey, ""); res.status != http.StatusConflict || res.code(t) != "key_revoked" {
		t.Errorf("rotate a revoked key: %d %s", res.status, res.body)
	}
	if res := call(t, h, "POST", "/admin/keys/"+uuid.NewString()+"/revoke", adminKey, ""); res.status != http.StatusNotFound {
		t.Errorf("revoke unknown: %d", res.status)
	}
}

func TestAdminNeedsTheAdminScope(t *testing.T) {
	h := newTestServer(t, nil)
	var app admin.Application
	call(t, h, "POST", "/admin/applications", adminKey, `{"name": "shop"}`).decode(t, &app)
	var r admin.CreatedKey
	call(t, h, "POST", "/admin/applications/"+app.ID.String()+"/keys", adminKey, `{"scopes": ["read"]}`).decode(t, &r)
	id := uuid.NewString()
	routes := []struct{ method, path string }{
		{"POST", "/admin/applications"}, {"GET", "/admin/applications"}, {"GET", "/admin/applications/" + id},
		{"PATCH", "/admin/applications/" + id}, {"POST", "/admin/applications/" + id + "/disable"},
		{"POST", "/admin/applications/" + id + "/enable"}, {"POST", "/admin/applications/" + id + "/keys"},
		{"GET", "/admin/applications/" + id + "/keys"}, {"POST", "/admin/keys/" + id + "/rotate"},
		{"POST", "/admin/keys/" + id + "/revoke"},
	}
	for _, rt := range routes {
		for key, want := range map[string]int{"": http.StatusUnauthorized, "eye_a_unknown": http.StatusUnauthorized,
			writeKey: http.StatusForbidden, r.Secret: http.StatusForbidden} {
			if res := call(t, h, rt.method, rt.path, key, `{}`); res.status != want {
				t.Errorf("%s %s with %.10q: %d, want %d", rt.method, rt.path, key, res.status, want)
			}
		}
	}
}

// newSchemas returns schema storage on db and the schemas domain on it.
func newSchemas(db *sqlx.DB) (*postgres.Schemas, *schemas.Service, error) {
	st, err := postgres.NewSchemas(db, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	svc, err := schemas.NewService(st)
	return st, svc, err
}
