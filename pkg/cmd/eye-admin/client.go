package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client calls query-api's admin endpoints with an admin key.
type client struct {
	base string // e.g. http://localhost:8081
	key  string
	http *http.Client
}

func newClient(base, key string) *client {
	return &client{base: strings.TrimSuffix(base, "/"), key: key, http: &http.Client{Timeout: 30 * time.Second}}
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// call sends body (nil for none) as JSON and returns the raw answer of a
// 2xx response; other statuses become an *apiError.
func (c *client) call(ctx context.Context, method, path string, body any) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if res.StatusCode/100 != 2 {
		e := &apiError{Status: res.StatusCode}
		var eb struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(b, &eb) == nil {
			e.Code, e.Message = eb.Error.Code, eb.Error.Message
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, e)
	}
	return b, nil
}

// settings are an application's settings as the API shows them.
type settings struct {
	AllowedOrigins []string `json:"allowed_origins"`
	RateLimit      float64  `json:"rate_limit"`
	RateBurst      int      `json:"rate_burst"`
	StrictSessions bool     `json:"strict_sessions"`
}

// application is an application as the API shows it.
type application struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Settings   settings   `json:"settings"`
	CreatedAt  time.Time  `json:"created_at"`
	DisabledAt *time.Time `json:"disabled_at"`
}

// key is a key as the API lists it; Secret is set only when it was just
// created or rotated.
type key struct {
	ID            string     `json:"id"`
	ApplicationID string     `json:"application_id"`
	Secret        string     `json:"key,omitempty"`
	Prefix        string     `json:"prefix"`
	Label         string     `json:"label"`
	Scopes        []string   `json:"scopes"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     *time.Time `json:"expires_at"`
	RevokedAt     *time.Time `json:"revoked_at"`
	Previous      *key       `json:"previous,omitempty"`
}

// list is a page of a list answer (Django REST framework's cursor
// pagination: next is the URL of the next page, null after the last).
type list[T any] struct {
	Results []T     `json:"results"`
	Next    *string `json:"next"`
}

// all reads every page of the list at path, following each page's next
// URL. Its path and query are taken relative to the client's base URL: a
// proxy in front may serve the API under another host or path prefix.
func (c *client) all(ctx context.Context, path string) ([]json.RawMessage, error) {
	all := []json.RawMessage{}
	for {
		raw, err := c.call(ctx, "GET", path, nil)
		if err != nil {
			return nil, err
		}
		var page list[json.RawMessage]
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		all = append(all, page.Results...)
		if page.Next == nil {
			break
		}
		u, err := url.Parse(*page.Next)
		if err != nil {
			return nil, fmt.Errorf("GET %s: next page: %w", path, err)
		}
		path = u.RequestURI()
	}
	return all, nil
}
