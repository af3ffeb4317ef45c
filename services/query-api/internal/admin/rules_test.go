package admin

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/the-eye/eye/pkg/auth"
)

func code(err error) string {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

func TestOrigins(t *testing.T) {
	for in, want := range map[string]string{
		"*":                          "*",
		"https://shop.example":       "https://shop.example",
		"HTTPS://Shop.Example":       "https://shop.example",
		"http://localhost:3000":      "http://localhost:3000",
		"https://shop.example:443":   "https://shop.example",
		"http://shop.example:80":     "http://shop.example",
		"http://[::1]:8080":          "http://[::1]:8080",
		"chrome-extension://abcdef":  "chrome-extension://abcdef",
		"https://shop.example/":      "",
		"https://shop.example/path":  "",
		"shop.example":               "",
		"https://":                   "",
		"https://user@shop.example":  "",
		"https://shop.example?x=1":   "",
		"https://shop.example#top":   "",
		"https://*.shop.example":     "",
		"https://shop.example:0":     "",
		"https://shop.example:99999": "",
		"https://shop.example:":      "",
		"https://shop example":       "",
		"":                           "",
		"**":                         "",
	} {
		got, err := canonicalOrigin(in)
		if want == "" {
			if code(err) != "invalid_origin" {
				t.Errorf("%q: accepted as %q (%v)", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
}

func TestInputRules(t *testing.T) {
	if _, err := validName("  "); code(err) != "invalid_name" {
		t.Errorf("blank name: %v", err)
	}
	if n, err := validName("  shop "); n != "shop" || err != nil {
		t.Errorf("name is trimmed: %q %v", n, err)
	}
	if _, err := validName(strings.Repeat("x", MaxNameLen+1)); code(err) != "invalid_name" {
		t.Errorf("long name: %v", err)
	}
	for _, s := range []Settings{{RateLimit: -1}, {RateBurst: -1}, {RateLimit: 2e9}} {
		if _, err := s.normalize(); code(err) != "invalid_rate" {
			t.Errorf("%+v: %v", s, err)
		}
	}
	s, err := Settings{AllowedOrigins: []string{"https://a.example", "HTTPS://A.EXAMPLE", "*"}}.normalize()
	if err != nil || !slices.Equal(s.AllowedOrigins, []string{"https://a.example", "*"}) {
		t.Errorf("origins deduplicated: %+v %v", s, err)
	}
	for _, scopes := range [][]auth.Scope{nil, {"owner"}, {auth.ScopeWrite, auth.ScopeRead}, {auth.ScopeWrite, auth.ScopeAdmin}} {
		if _, err := (NewKey{Scopes: scopes}).normalize(); code(err) != "invalid_scope" {
			t.Errorf("scopes %v: %v", scopes, err)
		}
	}
	k, err := NewKey{Scopes: []auth.Scope{auth.ScopeAdmin, auth.ScopeRead, auth.ScopeAdmin}, Label: " ops "}.normalize()
	if err != nil || !slices.Equal(k.Scopes, []auth.Scope{auth.ScopeRead, auth.ScopeAdmin}) || k.Label != "ops" {
		t.Errorf("scopes normalised: %+v %v", k, err)
	}
	for in, want := range map[string]time.Duration{"": 7 * time.Minute, "24h": 24 * time.Hour, "0s": 0, "90m": 90 * time.Minute} {
		if d, err := ParseOverlap(in, 7*time.Minute); d != want || err != nil {
			t.Errorf("overlap %q: %s %v", in, d, err)
		}
	}
	for _, in := range []string{"-1h", "tomorrow", "9000h", "24"} {
		if _, err := ParseOverlap(in, time.Hour); code(err) != "invalid_overlap" {
			t.Errorf("overlap %q: %v", in, err)
		}
	}
}
