package httpx_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/httpx"
)

// keys is a KeyStore of fixed keys.
type keys map[auth.Hash]auth.Principal

func (k keys) LookupKey(_ context.Context, h auth.Hash) (auth.Principal, error) {
	if p, ok := k[h]; ok {
		return p, nil
	}
	return auth.Principal{}, auth.ErrUnknownKey
}

const (
	testWrite = "eye_w_httpx_test_write_key"
	testRead  = "eye_r_httpx_test_read_key"
)

// authEngine serves POST /w (write scope, failures limited by f) and GET /a
// (admin scope).
func authEngine(t *testing.T, f *httpx.FailureLimiter) http.Handler {
	t.Helper()
	a, err := auth.NewAuthenticator(keys{
		auth.HashKey(testWrite): {Scopes: []auth.Scope{auth.ScopeWrite}},
		auth.HashKey(testRead):  {Scopes: []auth.Scope{auth.ScopeRead}},
	}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := newEngine(t)
	ok := func(c *gin.Context) { c.JSON(http.StatusAccepted, gin.H{"ok": true}) }
	r.POST("/w", httpx.RequireScopeLimited(a, auth.ScopeWrite, f), ok)
	r.GET("/a", httpx.RequireScope(a, auth.ScopeAdmin), ok)
	return r
}

func send(h http.Handler, method, path, authorization string) (int, httpx.ErrorBody, http.Header) {
	req := httptest.NewRequest(method, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.RemoteAddr = "192.0.2.7:5555"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var e httpx.ErrorBody
	json.Unmarshal(w.Body.Bytes(), &e)
	return w.Code, e, w.Header()
}

func TestAuthorizationHeaderMessages(t *testing.T) {
	h := authEngine(t, httpx.NewFailureLimiter(time.Millisecond, 1000))
	for _, tc := range []struct{ header, want string }{
		{"", "missing Authorization header"},
		{"Token abc", "Authorization scheme must be Bearer (got Token)"},
		{"Basic dXNlcjpwYXNz", "Authorization scheme must be Bearer (got Basic)"},
		{"Bearer", "missing key after Bearer"},
		{"Bearer    ", "missing key after Bearer"},
		{testWrite, "Authorization scheme must be Bearer (got a bare key)"},
		{"Bearer eye_w_nope", "unknown, revoked or expired API key"},
	} {
		status, e, hdr := send(h, http.MethodPost, "/w", tc.header)
		if status != http.StatusUnauthorized || e.Error.Code != "unauthorized" || !strings.HasPrefix(e.Error.Message, tc.want) {
			t.Errorf("%q: %d %+v, want 401 %q", tc.header, status, e, tc.want)
		}
		if strings.Contains(e.Error.Message, "httpx_test") {
			t.Errorf("%q: the message echoes key material: %q", tc.header, e.Error.Message)
		}
		if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%q: WWW-Authenticate %q", tc.header, hdr.Get("WWW-Authenticate"))
		}
	}
	for _, header := range []string{"Bearer " + testWrite, "bearer " + testWrite, "BEARER  " + testWrite + " "} {
		if status, e, _ := send(h, http.MethodPost, "/w", header); status != http.StatusAccepted {
			t.Errorf("%q: %d %+v", header, status, e)
		}
	}
}

func TestForbiddenNamesTheMissingScope(t *testing.T) {
	h := authEngine(t, httpx.NewFailureLimiter(time.Second, 20))
	status, e, _ := send(h, http.MethodGet, "/a", "Bearer "+testRead)
	if status != http.StatusForbidden || e.Error.Code != "forbidden" || !strings.Contains(e.Error.Message, "'admin' scope") || !strings.Contains(e.Error.Message, "eye_a_") {
		t.Fatalf("read key on an admin route: %d %+v", status, e)
	}
}

// One misconfigured client must not lock out the others behind its
// address: after its failures, a valid key is still served at once, while
// further failures are held and answered 429.
func TestFailureLimiterNeverRefusesAValidKey(t *testing.T) {
	const every = 200 * time.Millisecond
	h := authEngine(t, httpx.NewFailureLimiter(every, 20))
	for i := range 20 {
		if status, _, _ := send(h, http.MethodPost, "/w", "Bearer eye_w_wrong"); status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, status)
		}
	}
	start := time.Now()
	status, e, hdr := send(h, http.MethodPost, "/w", "Token eye_w_wrong")
	if status != http.StatusTooManyRequests || e.Error.Code != "rate_limited" || hdr.Get("Retry-After") == "" {
		t.Fatalf("21st failure: %d %+v", status, e)
	}
	if held := time.Since(start); held < every/2 {
		t.Fatalf("21st failure answered after %s: a limited address's failures must be held", held)
	}
	for range 5 {
		start := time.Now()
		if status, e, _ := send(h, http.MethodPost, "/w", "Bearer "+testWrite); status != http.StatusAccepted {
			t.Fatalf("valid key from a limited address: %d %+v", status, e)
		}
		if d := time.Since(start); d > every/2 {
			t.Fatalf("valid key held %s", d)
		}
	}
}
