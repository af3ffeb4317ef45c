package client

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The tests run a scripted stand-in for the gateway: it records every
// request and answers as each test scripts, so failure modes the real
// gateway cannot be made to produce on demand (503 with Retry-After, 429,
// slow answers, dropped connections) can be exercised.

type gotEvent struct {
	ID        string         `json:"id"`
	SessionID string         `json:"session_id"`
	Category  string         `json:"category"`
	Name      string         `json:"name"`
	Data      map[string]any `json:"data"`
	Timestamp string         `json:"timestamp"`
	SentAt    string         `json:"sent_at"`
}

type gotRequest struct {
	at     time.Time
	method string
	path   string
	header http.Header
	events []gotEvent
}

func (r gotRequest) ids() []string {
	ids := make([]string, len(r.events))
	for i, e := range r.events {
		ids[i] = e.ID
	}
	return ids
}

// gateway is the scripted server. respond answers request number n (from
// 0); nil accepts every event.
type gateway struct {
	*httptest.Server
	t       *testing.T
	mu      sync.Mutex
	reqs    []gotRequest
	respond func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent)
}

func newGateway(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent)) *gateway {
	g := &gateway{t: t, respond: respond}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.Close)
	return g
}

func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	var evs []gotEvent
	if err := json.NewDecoder(body).Decode(&evs); err != nil {
		g.t.Errorf("gateway: body is not a JSON array of events: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	n := len(g.reqs)
	g.reqs = append(g.reqs, gotRequest{at: time.Now(), method: r.Method, path: r.URL.Path, header: r.Header.Clone(), events: evs})
	g.mu.Unlock()
	if g.respond == nil {
		accept(w, evs)
		return
	}
	g.respond(n, w, r, evs)
}

func (g *gateway) requests() []gotRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]gotRequest(nil), g.reqs...)
}

// ids returns every event id received, with how many requests carried it.
func (g *gateway) ids() map[string]int {
	seen := map[string]int{}
	for _, r := range g.requests() {
		for _, e := range r.events {
			seen[e.ID]++
		}
	}
	return seen
}

func (g *gateway) waitRequests(t *testing.T, n int) []gotRequest {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		reqs := g.requests()
		if len(reqs) >= n {
			return reqs
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway got %d requests, want %d", len(reqs), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// accept answers 202 with an accepted receipt per event, as the gateway
// does for an array.
func accept(w http.ResponseWriter, evs []gotEvent) {
	out := struct {
		Events []receipt `json:"events"`
	}{Events: make([]receipt, len(evs))}
	for i, e := range evs {
		out.Events[i] = receipt{ID: e.ID, Status: "accepted"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(out)
}

// fail answers status with the gateway's JSON error body.
func fail(w http.ResponseWriter, status int, code string, header ...string) {
	for i := 0; i+1 < len(header); i += 2 {
		w.Header().Set(header[i], header[i+1])
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"code":%q,"message":"scripted"}}`, code)
}

const testKey = "eye_w_test_key_000000000000000000000000"

// newClient starts a client against g with fast retries; cfg's non-zero
// fields win. It is closed at the end of the test, and its sender must have
// stopped by then (TestMain checks that no sender goroutine outlives the
// tests).
func newClient(t *testing.T, g *gateway, cfg Config) *Client {
	t.Helper()
	cfg.Endpoint = g.URL
	if cfg.WriteKey == "" {
		cfg.WriteKey = testKey
	}
	if cfg.RetryBaseDelay == 0 {
		cfg.RetryBaseDelay = time.Millisecond
	}
	if cfg.RetryMaxDelay == 0 {
		cfg.RetryMaxDelay = 10 * time.Millisecond
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil && !errors.Is(err, ErrDeliveryFailed) {
			t.Errorf("Close: %v", err)
		}
		select {
		case <-c.done:
		default:
			t.Error("the sender goroutine is still running after Close")
		}
	})
	return c
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && !settles(func() bool { return goroutinesIn("client.(*Client).run") == 0 }) {
		fmt.Fprintf(os.Stderr, "%d client sender goroutines outlived the tests\n", goroutinesIn("client.(*Client).run"))
		code = 1
	}
	os.Exit(code)
}

// assertStopped fails unless no client sender goroutine is left; only for
// tests that have closed every client they started.
func assertStopped(t *testing.T) {
	t.Helper()
	if !settles(func() bool { return goroutinesIn("client.(*Client).run") == 0 }) {
		t.Fatalf("%d client sender goroutines still running", goroutinesIn("client.(*Client).run"))
	}
}

// settles reports whether cond holds within 2 s.
func settles(cond func() bool) bool {
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

func event(session string, i int) Event {
	return Event{
		SessionID: session,
		Category:  "page interaction",
		Name:      "pageview",
		Data:      map[string]any{"host": "www.example.com", "i": i},
		Timestamp: time.Date(2021, 6, 15, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
	}
}

func track(t *testing.T, c *Client, evs ...Event) {
	t.Helper()
	for _, e := range evs {
		if err := c.Track(e); err != nil {
			t.Fatalf("Track: %v", err)
		}
	}
}

func events(n int) []Event {
	session := uuid.NewString()
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = event(session, i)
	}
	return evs
}

func closeNow(t *testing.T, c *Client) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Close(ctx)
}

func wantStats(t *testing.T, c *Client, want Stats) {
	t.Helper()
	if got := c.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
}

func TestWireFormat(t *testing.T) {
	g := newGateway(t, nil)
	c := newClient(t, g, Config{})
	session := uuid.NewString()
	ts := time.Date(2021, 6, 15, 1, 2, 3, 123456789, time.FixedZone("CEST", 2*3600))
	own := strings.ToUpper(uuid.NewString())
	track(t, c,
		Event{ID: own, SessionID: session, Category: "page interaction", Name: "pageview", Data: map[string]any{"host": "h", "n": 1}, Timestamp: ts},
		Event{SessionID: session, Category: "form interaction", Name: "submit", Data: map[string]any{"form": map[string]any{"first_name": "John"}}},
	)
	before := time.Now()
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := g.requests()
	if len(reqs) != 1 || len(reqs[0].events) != 2 {
		t.Fatalf("requests %+v, want one with two events", reqs)
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/events/" {
		t.Errorf("%s %s, want POST /events/", r.method, r.path)
	}
	for k, want := range map[string]string{"Authorization": "Bearer " + testKey, "Content-Type": "application/json", "Content-Encoding": ""} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	first, second := r.events[0], r.events[1]
	if first.ID != strings.ToLower(own) {
		t.Errorf("own id sent as %q, want %q", first.ID, strings.ToLower(own))
	}
	if id, err := uuid.Parse(second.ID); err != nil || id.Version() != 7 {
		t.Errorf("generated id %q is not a UUIDv7", second.ID)
	}
	if first.SessionID != session || first.Category != "page interaction" || first.Name != "pageview" || first.Data["host"] != "h" || first.Data["n"] != 1.0 {
		t.Errorf("first event %+v", first)
	}
	if second.Data["form"].(map[string]any)["first_name"] != "John" {
		t.Errorf("second event data %+v", second.Data)
	}
	if first.Timestamp != "2021-06-14T23:02:03.123456789Z" {
		t.Errorf("timestamp %q, want RFC 3339 with nanoseconds in UTC", first.Timestamp)
	}
	if got, err := time.Parse(time.RFC3339Nano, second.Timestamp); err != nil || got.After(before) || before.Sub(got) > 5*time.Second {
		t.Errorf("a zero timestamp became %q, want about when Track was called", second.Timestamp)
	}
	sent, err := time.Parse(time.RFC3339Nano, first.SentAt)
	if err != nil || sent.Sub(r.at).Abs() > 5*time.Second || !strings.HasSuffix(first.SentAt, "Z") || second.SentAt != first.SentAt {
		t.Errorf("sent_at %q / %q, want the attempt's time in UTC", first.SentAt, second.SentAt)
	}
	wantStats(t, c, Stats{Sent: 2})
}

func TestBatchesBySize(t *testing.T) {
	g := newGateway(t, nil)
	c := newClient(t, g, Config{BatchSize: 10, FlushInterval: time.Hour})
	evs := events(25)
	track(t, c, evs...)
	reqs := g.waitRequests(t, 2)
	time.Sleep(100 * time.Millisecond)
	if reqs = g.requests(); len(reqs) != 2 {
		t.Fatalf("%d requests before Close, want 2 full batches", len(reqs))
	}
	if err := closeNow(t, c); err != nil {
		t.Fatal(err)
	}
	reqs = g.requests()
	var sizes []int
	var ids []string
	for _, r := range reqs {
		sizes = append(sizes, len(r.events))
		ids = append(ids, r.ids()...)
	}
	if fmt.Sprint(sizes) != "[10 10 5]" {
		t.Fatalf("batch sizes %v, want [10 10 5]", sizes)
	}
	for i, r := range reqs {
		for j, e := range r.events {
			if e.Data["i"] != float64(i*10+j) {
				t.Fatalf("request %d event %d is event %v: order not kept", i, j, e.Data["i"])
			}
		}
	}
	wantStats(t, c, Stats{Sent: 25})
}

func TestBatchesByTime(t *testing.T) {
	g := newGateway(t, nil)
	c := newClient(t, g, Config{BatchSize: 100, FlushInterval: 100 * time.Millisecond})
	start := time.Now()
	track(t, c, events(3)...)
	reqs := g.waitRequests(t, 1)
	if waited := reqs[0].at.Sub(start); waited < 90*time.Millisecond || waited > 2*time.Second {
		t.Errorf("a partial batch went after %s, want about FlushInterval", waited)
	}
	if len(reqs[0].events) != 3 {
		t.Fatalf("batch of %d, want 3", len(reqs[0].events))
	}
	// The timer restarts with the next batch's first event.
	track(t, c, events(2)...)
	if reqs = g.waitRequests(t, 2); len(reqs[1].events) != 2 {
		t.Fatalf("second batch of %d, want 2", len(reqs[1].events))
	}
	wantStats(t, c, Stats{Sent: 5})
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	g := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent) {
		switch n {
		case 0:
			fail(w, http.StatusServiceUnavailable, "unavailable", "Retry-After", "1")
		case 1:
			fail(w, http.StatusTooManyRequests, "rate_limited", "Retry-After", "1")
		default:
			accept(w, evs)
		}
	})
	// Backoff alone would wait at most 10 ms.
	c := newClient(t, g, Config{BatchSize: 5, FlushInterval: time.Hour})
	track(t, c, events(5)...)
	reqs := g.waitRequests(t, 3)
	for i := 1; i < 3; i++ {
		if gap := reqs[i].at.Sub(reqs[i-1].at); gap < 990*time.Millisecond || gap > 3*time.Second {
			t.Errorf("attempt %d came %s after the previous one, want Retry-After's 1 s", i+1, gap)
		}
		if fmt.Sprint(reqs[i].ids()) != fmt.Sprint(reqs[0].ids()) {
			t.Errorf("attempt %d carried ids %v, want the same ids %v", i+1, reqs[i].ids(), reqs[0].ids())
		}
		a, _ := time.Parse(time.RFC3339Nano, reqs[i-1].events[0].SentAt)
		b, _ := time.Parse(time.RFC3339Nano, reqs[i].events[0].SentAt)
		if b.Sub(a) < 990*time.Millisecond || reqs[i].events[0].Timestamp != reqs[0].events[0].Timestamp {
			t.Errorf("attempt %d: sent_at %s after %s, timestamp %s; want a fresh sent_at and the same timestamp",
				i+1, reqs[i].events[0].SentAt, reqs[i-1].events[0].SentAt, reqs[i].events[0].Timestamp)
		}
	}
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantStats(t, c, Stats{Sent: 5, Retried: 2})
}

func TestRetryBacksOffOnServerErrorsAndNetworkErrors(t *testing.T) {
	g := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent) {
		switch n {
		case 0:
			fail(w, http.StatusServiceUnavailable, "unavailable") // no Retry-After
		case 1:
			fail(w, http.StatusInternalServerError, "internal")
		case 2:
			fail(w, http.StatusBadGateway, "bad_gateway")
		case 3: // the connection drops without an answer
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		default:
			accept(w, evs)
		}
	})
	c := newClient(t, g, Config{FlushInterval: time.Hour})
	track(t, c, events(7)...)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := g.requests()
	if len(reqs) != 5 {
		t.Fatalf("%d requests, want 5", len(reqs))
	}
	for id, n := range g.ids() {
		if n != 5 {
			t.Fatalf("id %s was in %d requests, want all 5", id, n)
		}
	}
	wantStats(t, c, Stats{Sent: 7, Retried: 4})
}

// TestSlowAnswerRetriedWithSameIDs: the gateway stores the batch but
// answers after the client's timeout; the client retries with the same ids,
// so a store keyed by id ends up with each event once.
func TestSlowAnswerRetriedWithSameIDs(t *testing.T) {
	var mu sync.Mutex
	stored := map[string]int{}
	g := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent) {
		mu.Lock()
		for _, e := range evs {
			stored[e.ID]++
		}
		mu.Unlock()
		if n%2 == 0 { // every batch's first answer is too slow
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			return
		}
		accept(w, evs)
	})
	c := newClient(t, g, Config{BatchSize: 10, FlushInterval: time.Hour, HTTPClient: &http.Client{Timeout: 150 * time.Millisecond}})
	track(t, c, events(30)...)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := g.requests()
	if len(reqs) != 6 {
		t.Fatalf("%d requests, want 6 (3 batches, each sent twice)", len(reqs))
	}
	for i := 0; i < len(reqs); i += 2 {
		if fmt.Sprint(reqs[i].ids()) != fmt.Sprint(reqs[i+1].ids()) {
			t.Fatalf("retry of batch %d carried other ids", i/2)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(stored) != 30 {
		t.Fatalf("%d distinct ids, want 30", len(stored))
	}
	wantStats(t, c, Stats{Sent: 30, Retried: 3})
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			g := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent) {
				fail(w, status, "scripted")
			})
			c := newClient(t, g, Config{FlushInterval: time.Hour})
			track(t, c, events(4)...)
			if err := c.Flush(context.Background()); !errors.Is(err, ErrDeliveryFailed) {
				t.Fatalf("Flush = %v, want ErrDeliveryFailed", err)
			}
			if n := len(g.requests()); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
			wantStats(t, c, Stats{Failed: 4})
			// The client goes on with the next batch.
			track(t, c, events(1)...)
			if err := c.Flush(context.Background()); !errors.Is(err, ErrDeliveryFailed) {
				t.Fatalf("second Flush = %v", err)
			}
			wantStats(t, c, Stats{Failed: 5})
		})
	}
}

func TestGivesUpAfterMaxRetries(t *testing.T) {
	g := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent) {
		fail(w, http.StatusServiceUnavailable, "unavailable")
	})
	c := newClient(t, g, Config{MaxRetries: 2, FlushInterval: time.Hour})
	track(t, c, events(3)...)
	if err := c.Flush(context.Background()); !errors.Is(err, ErrDeliveryFailed) {
		t.Fatalf("Flush = %v, want ErrDeliveryFailed", err)
	}
	if n := len(g.requests()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	wantStats(t, c, Stats{Failed: 3, Retried: 2})

	// Negative MaxRetries: one attempt only.
	g2 := newGateway(t, g.respond)
	c2 := newClient(t, g2, Config{MaxRetries: -1, FlushInterval: time.Hour})
	track(t, c2, events(1)...)
	if err := c2.Flush(context.Background()); !errors.Is(err, ErrDeliveryFailed) || len(g2.requests()) != 1 {
		t.Fatalf("Flush = %v after %d requests, want ErrDeliveryFailed after 1", err, len(g2.requests()))
	}
}

func TestGivesUpWhenRetryAfterPassesMaxRetryElapsed(t *testing.T) {
	g := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent) {
		fail(w, http.StatusServiceUnavailable, "unavailable", "Retry-After", "30")
	})
	c := newClient(t, g, Config{MaxRetryElapsed: time.Second, FlushInterval: time.Hour})
	track(t, c, events(2)...)
	start := time.Now()
	if err := c.Flush(context.Background()); !errors.Is(err, ErrDeliveryFailed) {
		t.Fatalf("Flush = %v, want ErrDeliveryFailed", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %s, want at once", d)
	}
	wantStats(t, c, Stats{Failed: 2})
}

func TestRejectedReceiptsAreCounted(t *testing.T) {
	g := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent) {
		out := struct {
			Events []map[string]any `json:"events"`
		}{}
		for i, e := range evs {
			rc := map[string]any{"id": e.ID, "status": "accepted"}
			if i%2 == 1 {
				rc["status"], rc["reasons"] = "rejected", []any{map[string]any{"code": "not_an_object"}}
			}
			out.Events = append(out.Events, rc)
		}
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(out)
	})
	c := newClient(t, g, Config{FlushInterval: time.Hour})
	track(t, c, events(5)...)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantStats(t, c, Stats{Sent: 3, Rejected: 2})
}

func TestBufferFullDropsNewEvents(t *testing.T) {
	release := make(chan struct{})
	g := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		accept(w, evs)
	})
	c := newClient(t, g, Config{BatchSize: 1, BufferSize: 5, FlushInterval: time.Millisecond})
	evs := events(9)
	for i := range evs {
		evs[i].ID = uuid.NewString()
	}
	track(t, c, evs[0])
	g.waitRequests(t, 1) // evs[0] is in flight, the sender is blocked
	track(t, c, evs[1:6]...)
	for _, e := range evs[6:] {
		if err := c.Track(e); !errors.Is(err, ErrBufferFull) {
			t.Fatalf("Track on a full buffer = %v, want ErrBufferFull", err)
		}
	}
	wantStats(t, c, Stats{Dropped: 3, Queued: 6})
	close(release)
	if err := closeNow(t, c); err != nil {
		t.Fatal(err)
	}
	seen := g.ids()
	for i, e := range evs {
		if kept := i < 6; (seen[e.ID] == 1) != kept {
			t.Errorf("event %d sent %d times, want kept=%v (the newest events are dropped)", i, seen[e.ID], kept)
		}
	}
	wantStats(t, c, Stats{Sent: 6, Dropped: 3})
}

func TestCloseFlushesAndStopsAccepting(t *testing.T) {
	g := newGateway(t, nil)
	c := newClient(t, g, Config{FlushInterval: time.Hour})
	track(t, c, events(10)...)
	if n := len(g.requests()); n != 0 {
		t.Fatalf("%d requests before Close", n)
	}
	if err := closeNow(t, c); err != nil {
		t.Fatal(err)
	}
	if ids := g.ids(); len(ids) != 10 {
		t.Fatalf("Close sent %d events, want 10", len(ids))
	}
	wantStats(t, c, Stats{Sent: 10})
	assertStopped(t)
	if err := c.Track(events(1)[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Track after Close = %v, want ErrClosed", err)
	}
	if err := c.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close = %v, want ErrClosed", err)
	}
	if err := closeNow(t, c); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	wantStats(t, c, Stats{Sent: 10})
}

func TestCloseRespectsDeadline(t *testing.T) {
	g := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent) {
		<-r.Context().Done() // never answers
	})
	c := newClient(t, g, Config{BatchSize: 5, FlushInterval: time.Hour})
	track(t, c, events(12)...)
	g.waitRequests(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %s past a 200 ms deadline", d)
	}
	assertStopped(t)
	wantStats(t, c, Stats{Failed: 12})
}

func TestFlushDeadlineKeepsEvents(t *testing.T) {
	release := make(chan struct{})
	g := newGateway(t, func(n int, w http.ResponseWriter, r *http.Request, evs []gotEvent) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		accept(w, evs)
	})
	c := newClient(t, g, Config{FlushInterval: time.Hour})
	track(t, c, events(3)...)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush = %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := closeNow(t, c); err != nil {
		t.Fatal(err)
	}
	wantStats(t, c, Stats{Sent: 3})
}

func TestFlushSendsEverythingQueued(t *testing.T) {
	g := newGateway(t, nil)
	c := newClient(t, g, Config{BatchSize: 100, FlushInterval: time.Hour})
	track(t, c, events(250)...)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantStats(t, c, Stats{Sent: 250})
	var sizes []int
	for _, r := range g.requests() {
		sizes = append(sizes, len(r.events))
	}
	if fmt.Sprint(sizes) != "[100 100 50]" {
		t.Fatalf("batch sizes %v", sizes)
	}
	if err := c.Flush(context.Background()); err != nil { // nothing queued
		t.Fatal(err)
	}
}

func TestGzip(t *testing.T) {
	g := newGateway(t, nil)
	c := newClient(t, g, Config{Gzip: true, FlushInterval: time.Hour})
	track(t, c, events(20)...)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := g.requests()[0]
	if r.header.Get("Content-Encoding") != "gzip" || len(r.events) != 20 {
		t.Fatalf("Content-Encoding %q with %d events", r.header.Get("Content-Encoding"), len(r.events))
	}
	wantStats(t, c, Stats{Sent: 20})
}

func TestConcurrentUse(t *testing.T) {
	g := newGateway(t, nil)
	c := newClient(t, g, Config{BatchSize: 50, FlushInterval: 5 * time.Millisecond})
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for _, e := range events(each) {
				if err := c.Track(e); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = c.Stats()
				_ = c.Flush(context.Background())
			}
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()
	if err := closeNow(t, c); err != nil {
		t.Fatal(err)
	}
	ids := g.ids()
	if len(ids) != workers*each {
		t.Fatalf("%d distinct ids, want %d", len(ids), workers*each)
	}
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("id %s sent %d times", id, n)
		}
	}
	wantStats(t, c, Stats{Sent: workers * each})
}

func TestTrackValidates(t *testing.T) {
	g := newGateway(t, nil)
	c := newClient(t, g, Config{})
	good := events(1)[0]
	for name, e := range map[string]Event{
		"no session":       {Category: "c", Name: "n", Data: map[string]any{"a": 1}},
		"id not a UUID":    {ID: "42", SessionID: good.SessionID, Data: map[string]any{"a": 1}},
		"id in braces":     {ID: "{" + uuid.NewString() + "}", SessionID: good.SessionID, Data: map[string]any{"a": 1}},
		"nil id":           {ID: uuid.Nil.String(), SessionID: good.SessionID, Data: map[string]any{"a": 1}},
		"data not encoded": {SessionID: good.SessionID, Data: map[string]any{"ch": make(chan int)}},
	} {
		if err := c.Track(e); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: Track = %v, want ErrInvalidEvent", name, err)
		}
	}
	wantStats(t, c, Stats{})
}

func TestNewValidatesConfig(t *testing.T) {
	ok := Config{Endpoint: "http://127.0.0.1:8080", WriteKey: testKey}
	for name, mod := range map[string]func(*Config){
		"no endpoint":             func(c *Config) { c.Endpoint = "" },
		"endpoint not a URL":      func(c *Config) { c.Endpoint = "://x" },
		"endpoint not http":       func(c *Config) { c.Endpoint = "ftp://h" },
		"endpoint without host":   func(c *Config) { c.Endpoint = "http:///events" },
		"endpoint with query":     func(c *Config) { c.Endpoint = "http://h/?a=1" },
		"no write key":            func(c *Config) { c.WriteKey = "" },
		"write key with newline":  func(c *Config) { c.WriteKey = "eye_w_a\r\nX-Evil: 1" },
		"negative batch size":     func(c *Config) { c.BatchSize = -1 },
		"negative buffer size":    func(c *Config) { c.BufferSize = -1 },
		"negative flush interval": func(c *Config) { c.FlushInterval = -time.Second },
		"negative retry elapsed":  func(c *Config) { c.MaxRetryElapsed = -time.Second },
		"batch over buffer":       func(c *Config) { c.BatchSize, c.BufferSize = 200, 100 },
		"max delay under base":    func(c *Config) { c.RetryBaseDelay, c.RetryMaxDelay = time.Second, time.Millisecond },
	} {
		cfg := ok
		mod(&cfg)
		c, err := New(cfg)
		if !errors.Is(err, ErrInvalidConfig) || c != nil {
			t.Errorf("%s: New = %v, %v; want ErrInvalidConfig", name, c, err)
		}
	}
	c, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	defer closeNow(t, c)
	want := Config{
		Endpoint: ok.Endpoint, WriteKey: ok.WriteKey, BatchSize: 100, FlushInterval: time.Second, BufferSize: 10000,
		MaxRetries: 10, MaxRetryElapsed: time.Minute, RetryBaseDelay: 100 * time.Millisecond, RetryMaxDelay: 10 * time.Second,
	}
	got := c.cfg
	got.Logger = nil
	if got != want || c.http == nil || c.http.Timeout == 0 || c.eventsURL != "http://127.0.0.1:8080/events/" {
		t.Fatalf("defaults: %+v, URL %s", got, c.eventsURL)
	}
	for endpoint, want := range map[string]string{
		"https://eye.example.com/":       "https://eye.example.com/events/",
		"https://eye.example.com/ingest": "https://eye.example.com/ingest/events/",
	} {
		if got, err := eventsURL(endpoint); err != nil || got != want {
			t.Errorf("eventsURL(%q) = %q, %v; want %q", endpoint, got, err, want)
		}
	}
}

func TestDefaultHTTPClientLeavesNoConnections(t *testing.T) {
	g := newGateway(t, nil)
	c := newClient(t, g, Config{})
	track(t, c, events(3)...)
	if err := closeNow(t, c); err != nil {
		t.Fatal(err)
	}
	if !settles(func() bool { return goroutinesIn("net/http.(*persistConn)") == 0 }) {
		t.Fatalf("%d HTTP client connection goroutines left after Close", goroutinesIn("net/http.(*persistConn)"))
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":      0,
		"1":     time.Second,
		" 7 ":   7 * time.Second,
		"0":     0,
		"-3":    0,
		"soon":  0,
		"99999": 24 * time.Hour,
		now.Add(3 * time.Second).Format(http.TimeFormat):  3 * time.Second,
		now.Add(-3 * time.Second).Format(http.TimeFormat): 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

func TestBackoffIsCappedFullJitter(t *testing.T) {
	c := &Client{cfg: Config{RetryBaseDelay: 100 * time.Millisecond, RetryMaxDelay: time.Second}}
	for attempt, ceiling := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		ceiling *= time.Millisecond
		var top time.Duration
		for range 200 {
			d := c.backoff(attempt)
			if d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %s, want within [0, %s]", attempt, d, ceiling)
			}
			top = max(top, d)
		}
		if top < ceiling/2 {
			t.Errorf("backoff(%d) never went over %s in 200 draws; ceiling %s", attempt, top, ceiling)
		}
	}
	if d := c.backoff(200); d > time.Second {
		t.Fatalf("backoff(200) = %s: overflowed the cap", d)
	}
}
