package httpapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func post(h http.Handler, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/events/", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestEventsAreCountedByStatusAndReason(t *testing.T) {
	cfg := testConfig()
	h := newTestServer(t, cfg)
	const sid = "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"
	if w := post(h, `[{"session_id":"`+sid+`"},{"session_id":"`+sid+`"},7]`); w.Code != http.StatusAccepted {
		t.Fatalf("batch: %d %s", w.Code, w.Body)
	}
	if w := post(h, `nope`); w.Code != http.StatusBadRequest {
		t.Fatalf("invalid: %d", w.Code)
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	out := w.Body.String()
	for _, want := range []string{
		`eye_gateway_events_total{reason="",service="test",status="accepted"} 2`,
		`eye_gateway_events_total{reason="not_an_object",service="test",status="rejected"} 1`,
		`eye_gateway_events_total{reason="invalid_json",service="test",status="rejected"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestUnsupportedEncodingAndCORSPreflight(t *testing.T) {
	h := newTestServer(t, testConfig())
	if w := post(h, `{}`, "Content-Encoding", "br"); w.Code != http.StatusUnsupportedMediaType {
		t.Fatalf("br: %d", w.Code)
	}
	req := httptest.NewRequest(http.MethodOptions, "/events", bytes.NewReader(nil))
	req.Header.Set("Origin", "https://shop.example")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	if w := post(h, `{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"}`, "Origin", "https://other.example"); w.Code != http.StatusForbidden {
		t.Fatalf("origin not allowed: %d", w.Code)
	}
}

// Bodies the gateway cannot read get 415 naming the accepted types; the
// types it reads, including the text/plain of navigator.sendBeacon, pass.
func TestContentTypes(t *testing.T) {
	h := newTestServer(t, testConfig())
	const ev = `{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"c","name":"n","data":{"a":1},"timestamp":"2021-01-01 00:00:00"}`
	for _, ct := range []string{"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "text/html", "not a type"} {
		w := post(h, ev, "Content-Type", ct)
		if w.Code != http.StatusUnsupportedMediaType || !strings.Contains(w.Body.String(), "unsupported_media_type") || !strings.Contains(w.Body.String(), "application/json") {
			t.Errorf("%s: %d %s, want 415 naming the accepted types", ct, w.Code, w.Body)
		}
	}
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "text/plain;charset=UTF-8", "application/x-ndjson", "Application/JSON"} {
		if w := post(h, ev, "Content-Type", ct); w.Code != http.StatusAccepted {
			t.Errorf("%q: %d %s, want 202", ct, w.Code, w.Body)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/sessions/", strings.NewReader("id=x"))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("form-encoded session: %d %s", w.Code, w.Body)
	}
}
