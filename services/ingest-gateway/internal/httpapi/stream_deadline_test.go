package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/services/ingest-gateway/internal/ingest"
)

// An NDJSON stream may last as long as StreamTimeout allows, even past the
// server's read and write timeouts, which bound every other request: here
// a stream sends one line every 250 ms for 3 s through a server whose
// timeouts are 1 s, within a stream timeout of 5 s, and is accepted whole.
func TestSlowStreamOutlivesServerTimeouts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- httpx.ServeListener(ctx, ln, newTestServer(t, testConfig()), slog.New(slog.NewTextHandler(io.Discard, nil)),
			httpx.Timeouts{ReadHeader: time.Second, Read: time.Second, Write: time.Second, Idle: time.Second})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	if cfg := testConfig(); cfg.StreamTimeout < 5*time.Second {
		t.Fatalf("stream timeout %s: the test needs 5 s", cfg.StreamTimeout)
	}

	const lines = 12
	body, w := io.Pipe()
	go func() {
		for i := range lines {
			time.Sleep(250 * time.Millisecond)
			fmt.Fprintf(w, `{"session_id":"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058","category":"c","name":"n%d","data":{},"timestamp":"2021-01-01 00:00:00"}`+"\n", i)
		}
		w.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/events", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/x-ndjson")
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(res.Body)
	var got ingest.StreamResult
	if res.StatusCode != http.StatusAccepted || json.Unmarshal(answer, &got) != nil || got.Accepted != lines {
		t.Fatalf("after %s: %d %s, want 202 with %d accepted", time.Since(start).Round(time.Millisecond), res.StatusCode, answer, lines)
	}
}
