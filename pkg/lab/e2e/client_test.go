package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/client"
)

// idRecorder is an http.RoundTripper in front of the real gateway that
// notes which event ids each request carried, so the test knows the ids
// the SDK generated.
type idRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	sent map[string]float64 // event id → the event's data.i
}

func (r *idRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	var plain io.Reader = bytes.NewReader(b)
	if req.Header.Get("Content-Encoding") == "gzip" {
		if plain, err = gzip.NewReader(plain); err != nil {
			return nil, fmt.Errorf("recorder: %w", err)
		}
	}
	var evs []struct {
		ID   string         `json:"id"`
		Data map[string]any `json:"data"`
	}
	if err := json.NewDecoder(plain).Decode(&evs); err != nil {
		return nil, fmt.Errorf("recorder: request body is not an array of events: %w", err)
	}
	r.mu.Lock()
	for _, e := range evs {
		r.sent[e.ID], _ = e.Data["i"].(float64)
	}
	r.mu.Unlock()
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(b))
	return r.next.RoundTrip(out)
}

// TestClientSDKDeliversEveryEventOnce tracks 1 000 events over four
// sessions with the SDK against the real gateway, and checks that each is
// stored exactly once, under the id the SDK gave it (or the caller's own);
// once with plain JSON bodies, once gzipped.
func TestClientSDKDeliversEveryEventOnce(t *testing.T) {
	p := startPipeline(t, pipelineOpts{})
	t.Run("json", func(t *testing.T) { deliverWithSDK(t, p, false) })
	t.Run("gzip", func(t *testing.T) { deliverWithSDK(t, p, true) })
}

func deliverWithSDK(t *testing.T, p *pipeline, gzipped bool) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	rec := &idRecorder{next: transport, sent: map[string]float64{}}
	c, err := client.New(client.Config{
		Endpoint:      p.gateway,
		WriteKey:      writeKey,
		FlushInterval: 100 * time.Millisecond,
		HTTPClient:    &http.Client{Transport: rec, Timeout: 30 * time.Second},
		Gzip:          gzipped,
	})
	if err != nil {
		t.Fatal(err)
	}

	const total, nSessions = 1000, 4
	sessions := make([]string, nSessions)
	for i := range sessions {
		sessions[i] = uuid.NewString()
	}
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	own := map[string]int{} // caller-chosen ids (every tenth event) → i
	for i := range total {
		e := client.Event{
			SessionID: sessions[i%nSessions],
			Category:  "page interaction",
			Name:      "pageview",
			Data:      map[string]any{"host": "www.consumeraffairs.com", "i": i},
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		}
		if i%10 == 0 {
			e.ID = uuid.NewString() // a v4: any UUID the application brings
			own[e.ID] = i
		}
		if err := c.Track(e); err != nil {
			t.Fatalf("Track %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s := c.Stats(); s.Sent != total || s.Rejected != 0 || s.Dropped != 0 || s.Failed != 0 || s.Queued != 0 {
		t.Fatalf("Stats() = %+v, want %d sent and nothing else outstanding", s, total)
	}
	rec.mu.Lock()
	sent := rec.sent
	rec.mu.Unlock()
	if len(sent) != total {
		t.Fatalf("the SDK sent %d distinct ids, want %d", len(sent), total)
	}
	for id, i := range own {
		if sent[id] != float64(i) {
			t.Fatalf("event %d's own id %s was not sent with it", i, id)
		}
	}

	for _, session := range sessions {
		var s sessionRow
		p.eventually(60*time.Second, "session "+session+" counts its 250 events", func() bool {
			do(t, "GET", p.query+"/sessions/"+session, adminKey, nil).json(t, &s)
			return s.EventCount >= total/nSessions
		})
		if s.EventCount != total/nSessions {
			t.Fatalf("session %s counts %d events, want %d", session, s.EventCount, total/nSessions)
		}
	}

	stored := map[string]bool{}
	var foreign []string
	for _, session := range sessions {
		var pg page[storedEvent]
		res := do(t, "GET", p.query+"/events/?limit=1000&session="+session, adminKey, nil)
		if res.status != http.StatusOK {
			t.Fatalf("GET /events/: %d %s", res.status, res.body)
		}
		res.json(t, &pg)
		if len(pg.Results) != total/nSessions || pg.Next != nil {
			t.Fatalf("session %s lists %d events (next %v), want %d on one page", session, len(pg.Results), pg.Next, total/nSessions)
		}
		for _, e := range pg.Results {
			if stored[e.ID] {
				t.Fatalf("event %s stored twice", e.ID)
			}
			stored[e.ID] = true
			i, ok := sent[e.ID]
			if !ok {
				foreign = append(foreign, e.ID)
				continue
			}
			want := base.Add(time.Duration(i) * time.Millisecond)
			if e.Data["i"] != i || e.SessionID != session || e.Category != "page interaction" || e.Name != "pageview" ||
				e.Timestamp.Sub(want).Abs() > 5*time.Second {
				t.Fatalf("event %s stored as %+v, want event %v at about %s", e.ID, e, i, want)
			}
		}
	}
	if len(foreign) > 0 {
		t.Fatalf("%d of %d stored events have an id the SDK did not send (e.g. %s): the gateway does not store events under the client's id",
			len(foreign), len(stored), foreign[0])
	}
	if len(stored) != total {
		t.Fatalf("%d events stored, want %d", len(stored), total)
	}
}
