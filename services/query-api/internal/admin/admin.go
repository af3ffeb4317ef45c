// Package admin is the domain of tenancy administration:
// applications with their ingestion settings, and their API keys — created,
// listed without key material, rotated with an overlap, revoked. Key
// material exists only in the answer to a creation or rotation; Postgres
// keeps SHA-256 hashes (see package auth). Storage is declared here (Store)
// and implemented by package postgres.
package admin

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
)

// Settings are an application's ingestion settings (see auth.AppSettings).
type Settings struct {
	AllowedOrigins []string `json:"allowed_origins" example:"https://shop.example"`
	RateLimit      float64  `json:"rate_limit" example:"50"`
	RateBurst      int      `json:"rate_burst" example:"100"`
	StrictSessions bool     `json:"strict_sessions"`
	// StrictTypes makes events of a type without a JSON Schema errors
	// (unknown_event_type).
	StrictTypes bool `json:"strict_types"`
}

// Application is a tenant: everything it ingests and reads is its own.
type Application struct {
	ID         uuid.UUID     `json:"id"`
	Name       string        `json:"name" example:"web shop"`
	Settings   Settings      `json:"settings"`
	CreatedAt  apitime.Time  `json:"created_at"`
	DisabledAt *apitime.Time `json:"disabled_at" extensions:"x-nullable"`
}

// NewApplication is what creating an application takes.
type NewApplication struct {
	Name     string
	Settings Settings
}

// ApplicationChange is a partial update: nil fields are left as they are.
type ApplicationChange struct {
	Name           *string
	AllowedOrigins *[]string
	RateLimit      *float64
	RateBurst      *int
	StrictSessions *bool
	StrictTypes    *bool
}

// Key is an API key as listed: everything but the key material.
type Key struct {
	ID            uuid.UUID     `json:"id"`
	ApplicationID uuid.UUID     `json:"application_id"`
	Prefix        string        `json:"prefix" example:"eye_w_AbCd"`
	Label         string        `json:"label" example:"checkout page"`
	Scopes        []auth.Scope  `json:"scopes" swaggertype:"array,string" example:"write"`
	CreatedAt     apitime.Time  `json:"created_at"`
	ExpiresAt     *apitime.Time `json:"expires_at" extensions:"x-nullable"`
	RevokedAt     *apitime.Time `json:"revoked_at" extensions:"x-nullable"`
}

// CreatedKey is a key just created or rotated: the only time its material
// (Secret) is available.
type CreatedKey struct {
	Key
	Secret string `json:"key" example:"eye_w_AbCdEfGhIjKlMnOpQrStUvWxYz012345"`
}

// NewKey is what creating a key takes.
type NewKey struct {
	Scopes []auth.Scope
	Label  string
}

// Errors of administration. Invalid input is an *InvalidError.
var (
	ErrNotFound       = errors.New("not found")
	ErrKeyRevoked     = errors.New("the key is revoked")
	ErrKeyExpired     = errors.New("the key has expired")
	ErrOwnApplication = errors.New("the key making this request belongs to this application")
)

// InvalidError is input that breaks a rule; Code is a stable identifier
// (invalid_name, invalid_origin, invalid_rate, invalid_scope, invalid_label,
// invalid_overlap).
type InvalidError struct {
	Code    string
	Message string
}

// Error returns the message.
func (e *InvalidError) Error() string { return e.Message }

func invalid(code, format string, args ...any) error {
	return &InvalidError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Limits of the inputs.
const (
	MaxNameLen   = 200
	MaxLabelLen  = 200
	MaxOrigins   = 100
	MaxOverlap   = 365 * 24 * time.Hour
	maxOriginLen = 255
	maxRateBurst = 1 << 30
	maxRateLimit = 1e9
)

// validName trims name and checks it.
func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalid("invalid_name", "name must not be empty")
	case utf8.RuneCountInString(name) > MaxNameLen:
		return "", invalid("invalid_name", "name is longer than %d characters", MaxNameLen)
	case !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		return "", invalid("invalid_name", "name is not valid text")
	}
	return name, nil
}

// normalize checks s and returns it with origins in canonical form
// (lowercase scheme and host, no duplicates).
func (s Settings) normalize() (Settings, error) {
	if len(s.AllowedOrigins) > MaxOrigins {
		return s, invalid("invalid_origin", "at most %d allowed origins", MaxOrigins)
	}
	origins := make([]string, 0, len(s.AllowedOrigins))
	for _, o := range s.AllowedOrigins {
		c, err := canonicalOrigin(o)
		if err != nil {
			return s, err
		}
		if !slices.Contains(origins, c) {
			origins = append(origins, c)
		}
	}
	s.AllowedOrigins = origins
	if math.IsNaN(s.RateLimit) || s.RateLimit < 0 || s.RateLimit > maxRateLimit {
		return s, invalid("invalid_rate", "rate_limit must be between 0 (the gateway's default) and %g events per second", float64(maxRateLimit))
	}
	if s.RateBurst < 0 || s.RateBurst > maxRateBurst {
		return s, invalid("invalid_rate", "rate_burst must be between 0 (the gateway's default) and %d", maxRateBurst)
	}
	return s, nil
}

// canonicalOrigin accepts "*" or scheme://host[:port] as browsers send it in
// the Origin header: no path (not even "/"), query, fragment or user info,
// no wildcard in the host. Scheme and host are lowercased and a default port
// (80 for http, 443 for https) dropped, since browsers send them so.
func canonicalOrigin(o string) (string, error) {
	if o == "*" {
		return o, nil
	}
	bad := invalid("invalid_origin", "allowed origin %q is not \"*\" or scheme://host[:port] (no path, not even a trailing slash)", o)
	u, err := url.Parse(o)
	if err != nil || len(o) > maxOriginLen || u.Scheme == "" || u.Opaque != "" || u.User != nil ||
		u.Host == "" || u.Path != "" || strings.ContainsAny(o, "?#*") || strings.HasSuffix(u.Host, ":") {
		return "", bad
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return "", bad
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", bad
		}
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// normalize checks a new key's scopes and label; scopes are returned
// deduplicated in a fixed order.
func (k NewKey) normalize() (NewKey, error) {
	if len(k.Scopes) == 0 {
		return k, invalid("invalid_scope", "scopes must name at least one of write, read, admin")
	}
	var scopes []auth.Scope
	for _, s := range []auth.Scope{auth.ScopeWrite, auth.ScopeRead, auth.ScopeAdmin} {
		if slices.Contains(k.Scopes, s) {
			scopes = append(scopes, s)
		}
	}
	for _, s := range k.Scopes {
		if !s.Valid() {
			return k, invalid("invalid_scope", "unknown scope %q: use write, read or admin", s)
		}
	}
	if slices.Contains(scopes, auth.ScopeWrite) && len(scopes) > 1 {
		return k, invalid("invalid_scope", "a write key is shipped to clients: it cannot also read or administer")
	}
	k.Scopes = scopes
	k.Label = strings.TrimSpace(k.Label)
	if utf8.RuneCountInString(k.Label) > MaxLabelLen || !utf8.ValidString(k.Label) || strings.ContainsRune(k.Label, 0) {
		return k, invalid("invalid_label", "label must be text of at most %d characters", MaxLabelLen)
	}
	return k, nil
}

// ParseOverlap reads a rotation overlap ("24h", "90m", "0s"); "" gives def.
func ParseOverlap(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > MaxOverlap {
		return 0, invalid("invalid_overlap", "overlap must be a duration such as 24h or 30m, between 0s and %s", MaxOverlap)
	}
	return d, nil
}
