package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

type application struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Settings struct {
		AllowedOrigins []string `json:"allowed_origins"`
		RateLimit      float64  `json:"rate_limit"`
		RateBurst      int      `json:"rate_burst"`
		StrictSessions bool     `json:"strict_sessions"`
	} `json:"settings"`
	DisabledAt *time.Time `json:"disabled_at"`
}

type apiKey struct {
	ID        string     `json:"id"`
	Key       string     `json:"key"`
	Prefix    string     `json:"prefix"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	Previous  *apiKey    `json:"previous"`
}

type storedEventApp struct {
	ID            string `json:"id"`
	ApplicationID string `json:"application_id"`
}

// TestApplicationsAndKeys drives tenancy administration through the running
// pipeline: an application and its keys made with the dev read key (which
// has admin), ingestion and reads confined to the application, scopes,
// rotation overlap, revocation and disabling within the key cache TTL.
func TestApplicationsAndKeys(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})

	res := do(t, "POST", p.query+"/admin/applications/", adminKey, map[string]any{"name": "e2e shop"})
	if res.status != http.StatusCreated {
		t.Fatalf("create application: %d %s", res.status, res.body)
	}
	var app application
	res.json(t, &app)
	if _, err := uuid.Parse(app.ID); err != nil || app.Name != "e2e shop" {
		t.Fatalf("application %s", res.body)
	}
	keysURL := p.query + "/admin/applications/" + app.ID + "/keys"
	newKey := func(scopes ...string) apiKey {
		t.Helper()
		res := do(t, "POST", keysURL, adminKey, map[string]any{"scopes": scopes, "label": "e2e"})
		if res.status != http.StatusCreated {
			t.Fatalf("create %v key: %d %s", scopes, res.status, res.body)
		}
		var k apiKey
		res.json(t, &k)
		return k
	}
	w, r := newKey("write"), newKey("read")
	if !strings.HasPrefix(w.Key, "eye_w_") || !strings.HasPrefix(r.Key, "eye_r_") || w.Prefix != w.Key[:10] {
		t.Fatalf("keys %+v %+v", w, r)
	}

	t.Run("bad input and unknown ids", func(t *testing.T) {
		for _, c := range []struct {
			url  string
			body any
			code string
		}{
			{p.query + "/admin/applications", map[string]any{"name": ""}, "invalid_name"},
			{p.query + "/admin/applications", map[string]any{"name": "x", "allowed_origins": []string{"https://x.example/path"}}, "invalid_origin"},
			{p.query + "/admin/applications", map[string]any{"name": "x", "rate_limit": -1}, "invalid_rate"},
			{keysURL, map[string]any{"scopes": []string{"superuser"}}, "invalid_scope"},
		} {
			if res := do(t, "POST", c.url, adminKey, c.body); res.status != http.StatusBadRequest || res.errorCode(t) != c.code {
				t.Errorf("POST %s %v: %d %s, want 400 %s", c.url, c.body, res.status, res.body, c.code)
			}
		}
		for _, u := range []string{"/admin/applications/" + uuid.NewString(), "/admin/applications/" + uuid.NewString() + "/keys"} {
			if res := do(t, "GET", p.query+u, adminKey, nil); res.status != http.StatusNotFound {
				t.Errorf("GET %s: %d", u, res.status)
			}
		}
		if res := do(t, "POST", p.query+"/admin/keys/"+uuid.NewString()+"/revoke", adminKey, nil); res.status != http.StatusNotFound {
			t.Errorf("revoke an unknown key: %d", res.status)
		}
	})

	t.Run("keys are listed without their material", func(t *testing.T) {
		res := do(t, "GET", keysURL, adminKey, nil)
		var l page[apiKey]
		res.json(t, &l)
		if res.status != http.StatusOK || len(l.Results) != 2 || strings.Contains(string(res.body), w.Key) ||
			strings.Contains(string(res.body), r.Key) || l.Results[0].Prefix != w.Prefix {
			t.Fatalf("keys: %d %s", res.status, res.body)
		}
	})

	t.Run("only admin keys administer", func(t *testing.T) {
		for _, key := range []string{w.Key, r.Key, writeKey} {
			for _, c := range []struct{ method, url string }{
				{"GET", p.query + "/admin/applications/"}, {"POST", p.query + "/admin/applications"},
				{"POST", keysURL}, {"POST", p.query + "/admin/keys/" + w.ID + "/revoke"},
			} {
				if res := do(t, c.method, c.url, key, map[string]any{"name": "x"}); res.status != http.StatusForbidden {
					t.Errorf("%s %s with %s: %d %s, want 403", c.method, c.url, key[:10], res.status, res.body)
				}
			}
		}
	})

	t.Run("each application ingests and reads only its own events", func(t *testing.T) {
		own, devSession := uuid.NewString(), uuid.NewString()
		res := do(t, "POST", p.gateway+"/events/", w.Key, seedEvent(own, "2021-06-15 00:00:00"))
		if res.status != http.StatusAccepted {
			t.Fatalf("ingest with the new write key: %d %s", res.status, res.body)
		}
		var ownReceipt, devReceipt receipt
		res.json(t, &ownReceipt)
		do(t, "POST", p.gateway+"/events/", writeKey, seedEvent(devSession, "2021-06-15 00:00:00")).json(t, &devReceipt)
		p.eventually(10*time.Second, "both events are stored", func() bool {
			return do(t, "GET", p.query+"/events/"+ownReceipt.ID, adminKey, nil).status == http.StatusOK &&
				do(t, "GET", p.query+"/events/"+devReceipt.ID, adminKey, nil).status == http.StatusOK
		})
		var l page[storedEventApp]
		res = do(t, "GET", p.query+"/events/", r.Key, nil)
		res.json(t, &l)
		if res.status != http.StatusOK || len(l.Results) != 1 || l.Results[0].ID != ownReceipt.ID || l.Results[0].ApplicationID != app.ID {
			t.Fatalf("the new read key lists %d %s, want only its own event", res.status, res.body)
		}
		if res := do(t, "GET", p.query+"/events/"+ownReceipt.ID, r.Key, nil); res.status != http.StatusOK {
			t.Errorf("own event: %d", res.status)
		}
		for _, u := range []string{"/events/" + devReceipt.ID, "/sessions/" + devSession} {
			if res := do(t, "GET", p.query+u, r.Key, nil); res.status != http.StatusNotFound {
				t.Errorf("another application's %s: %d %s, want 404", u, res.status, res.body)
			}
		}
		if res := do(t, "GET", p.query+"/events/?session="+devSession, r.Key, nil); !strings.Contains(string(res.body), `"results":[]`) {
			t.Errorf("another application's session filter: %s", res.body)
		}
	})

	t.Run("rotation: both keys work during the overlap", func(t *testing.T) {
		res := do(t, "POST", p.query+"/admin/keys/"+r.ID+"/rotate", adminKey, map[string]any{"overlap": "1h"})
		if res.status != http.StatusCreated {
			t.Fatalf("rotate: %d %s", res.status, res.body)
		}
		var r2 apiKey
		res.json(t, &r2)
		if !strings.HasPrefix(r2.Key, "eye_r_") || r2.Key == r.Key || r2.Previous == nil || r2.Previous.ExpiresAt == nil ||
			time.Until(*r2.Previous.ExpiresAt) < 59*time.Minute {
			t.Fatalf("rotated %s", res.body)
		}
		for _, k := range []string{r.Key, r2.Key} {
			if res := do(t, "GET", p.query+"/events/", k, nil); res.status != http.StatusOK {
				t.Errorf("during the overlap, %s: %d %s", k[:10], res.status, res.body)
			}
		}
		// A short overlap ends: the old write key stops, the new one goes on.
		res = do(t, "POST", p.query+"/admin/keys/"+w.ID+"/rotate", adminKey, map[string]any{"overlap": "2s"})
		var w2 apiKey
		res.json(t, &w2)
		if res.status != http.StatusCreated || w2.Key == "" {
			t.Fatalf("rotate the write key: %d %s", res.status, res.body)
		}
		for _, k := range []string{w.Key, w2.Key} {
			if res := do(t, "POST", p.gateway+"/sessions/", k, nil); !succeeded(res) {
				t.Errorf("during the overlap, %s: %d %s", k[:10], res.status, res.body)
			}
		}
		p.eventually(10*time.Second, "the old write key stops after its overlap", func() bool {
			return do(t, "POST", p.gateway+"/sessions/", w.Key, nil).status == http.StatusUnauthorized
		})
		if res := do(t, "POST", p.gateway+"/sessions/", w2.Key, nil); !succeeded(res) {
			t.Errorf("the new write key after the overlap: %d %s", res.status, res.body)
		}
		w = w2
	})

	t.Run("a revoked key stops within seconds", func(t *testing.T) {
		if res := do(t, "POST", p.gateway+"/events/", w.Key, seedEvent(uuid.NewString(), "2021-06-15 00:00:00")); res.status != http.StatusAccepted {
			t.Fatalf("before: %d %s", res.status, res.body)
		}
		res := do(t, "POST", p.query+"/admin/keys/"+w.ID+"/revoke/", adminKey, nil)
		var k apiKey
		res.json(t, &k)
		if res.status != http.StatusOK || k.RevokedAt == nil {
			t.Fatalf("revoke: %d %s", res.status, res.body)
		}
		start := time.Now()
		p.eventually(10*time.Second, "the gateway refuses the revoked key", func() bool {
			return do(t, "POST", p.gateway+"/events/", w.Key, seedEvent(uuid.NewString(), "2021-06-15 00:00:00")).status == http.StatusUnauthorized
		})
		t.Logf("revoked key refused after %s", time.Since(start).Round(10*time.Millisecond))
		if res := do(t, "POST", p.query+"/admin/keys/"+w.ID+"/rotate", adminKey, nil); res.status != http.StatusConflict {
			t.Errorf("rotate a revoked key: %d %s", res.status, res.body)
		}
	})

	t.Run("disabling an application stops its keys; enabling restores them", func(t *testing.T) {
		if res := do(t, "POST", p.query+"/admin/applications/"+app.ID+"/disable", adminKey, nil); res.status != http.StatusOK {
			t.Fatalf("disable: %d %s", res.status, res.body)
		}
		p.eventually(10*time.Second, "the disabled application's read key is refused", func() bool {
			return do(t, "GET", p.query+"/events/", r.Key, nil).status == http.StatusUnauthorized
		})
		if res := do(t, "POST", p.query+"/admin/applications/"+app.ID+"/enable", adminKey, nil); res.status != http.StatusOK {
			t.Fatalf("enable: %d %s", res.status, res.body)
		}
		p.eventually(10*time.Second, "the read key works again", func() bool {
			return do(t, "GET", p.query+"/events/", r.Key, nil).status == http.StatusOK
		})
	})

	t.Run("the CLI creates and lists applications and keys", func(t *testing.T) {
		bin := buildAdminCLI(t)
		cli := func(args ...string) string {
			t.Helper()
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "EYE_ADMIN_URL="+p.query, "EYE_ADMIN_KEY="+adminKey)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("eye-admin %v: %v\n%s", args, err, out)
			}
			return string(out)
		}
		out := cli("apps", "create", "-name", "cli app", "-origins", "https://cli.example,http://localhost:3000", "-rate", "5", "-burst", "10", "-strict")
		if !strings.Contains(out, "cli app") || !strings.Contains(out, "https://cli.example") {
			t.Fatalf("apps create:\n%s", out)
		}
		if out := cli("apps", "list"); !strings.Contains(out, "cli app") || !strings.Contains(out, "e2e shop") || !strings.Contains(out, "dev") {
			t.Fatalf("apps list:\n%s", out)
		}
		var apps []application
		if err := json.Unmarshal([]byte(cli("-json", "apps", "list")), &apps); err != nil {
			t.Fatal(err)
		}
		var created *application
		for i := range apps {
			if apps[i].Name == "cli app" {
				created = &apps[i]
			}
		}
		if created == nil || created.Settings.RateLimit != 5 || created.Settings.RateBurst != 10 || !created.Settings.StrictSessions ||
			len(created.Settings.AllowedOrigins) != 2 {
			t.Fatalf("apps list -json: %+v", apps)
		}
		var k apiKey
		if err := json.Unmarshal([]byte(cli("-json", "keys", "create", "-app", created.ID, "-scopes", "read")), &k); err != nil || !strings.HasPrefix(k.Key, "eye_r_") {
			t.Fatalf("keys create: %+v %v", k, err)
		}
		if res := do(t, "GET", p.query+"/events/", k.Key, nil); res.status != http.StatusOK {
			t.Errorf("the CLI's key: %d %s", res.status, res.body)
		}
		if out := cli("keys", "list", "-app", created.ID); !strings.Contains(out, k.Prefix) || strings.Contains(out, k.Key) {
			t.Fatalf("keys list:\n%s", out)
		}
		if out := cli("keys", "revoke", k.ID); !strings.Contains(out, "revoked "+k.ID) {
			t.Fatalf("keys revoke:\n%s", out)
		}
	})
}

// succeeded reports a 2xx answer (registering a session may answer 201 or 202).
func succeeded(res response) bool { return res.status/100 == 2 }

var (
	adminCLIOnce sync.Once
	adminCLIErr  error
)

// buildAdminCLI builds eye-admin next to the service binaries, once.
func buildAdminCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "eye-admin")
	adminCLIOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/eye-admin")
		cmd.Dir = "../.." // pkg: the runtime module
		if out, err := cmd.CombinedOutput(); err != nil {
			adminCLIErr = &buildError{err: err, out: string(out)}
		}
	})
	if adminCLIErr != nil {
		t.Fatal(adminCLIErr)
	}
	return bin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "build eye-admin: " + e.err.Error() + "\n" + e.out }
