package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// session is one client session's events: sequence numbers 1, 2, … in
// data.seq, each with its own client-generated UUIDv7, sent in order. The
// next request of a session is sent only once the previous one got its 202,
// so everything up to acked is acknowledged and nothing after sent was
// ever sent.
type session struct {
	id       uuid.UUID
	batch    int           // events per request (1: a single object, else a JSON array)
	interval time.Duration // between requests
	stream   bool          // sent as an NDJSON stream, not by the load loop

	ids   []uuid.UUID  // ids[seq-1]; written by the session's goroutine only
	sent  atomic.Int64 // highest seq sent at least once
	acked atomic.Int64 // highest seq acknowledged (202, receipt "accepted")
}

// load posts events to the gateway at a fixed rate from many sessions,
// retrying network errors, 429 and 5xx with the same ids, as pkg/client
// does. It keeps per-event knowledge of what got a 202, which pkg/client
// does not expose, so it is written here rather than built on it.
type load struct {
	url      string // gateway events URL
	http     *http.Client
	epoch    time.Time // event timestamp = epoch + seq ms
	pad      string
	sessions []*session

	stop   chan struct{}      // closed: send no new request
	giveUp context.Context    // cancelled: abandon in-flight retries
	cancel context.CancelFunc // cancels giveUp
	wg     sync.WaitGroup
	once   sync.Once

	requests, retries    atomic.Int64
	timeouts, connErrors atomic.Int64 // attempts with no answer within 10 s; other transport errors
	mu                   sync.Mutex
	statuses             map[int]int // answers other than 202, by status
	failures             []string    // answers that are neither success nor retryable
}

// newLoad prepares n sessions sending rate events/s in total against the
// gateway at base. Half the sessions send single events, half JSON arrays
// of 10.
func newLoad(base string, n int, rate float64) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{
		url: base + "/events/",
		http: &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: n + 16,
			IdleConnTimeout:     30 * time.Second,
		}},
		epoch:    time.Now().Add(-2 * time.Hour).Truncate(time.Second),
		pad:      strings.Repeat("x", 120),
		stop:     make(chan struct{}),
		giveUp:   ctx,
		cancel:   cancel,
		statuses: map[int]int{},
	}
	perSession := rate / float64(n)
	for k := range n {
		batch := 1
		if k%2 == 1 {
			batch = 10
		}
		interval := time.Duration(float64(batch) / perSession * float64(time.Second))
		l.sessions = append(l.sessions, &session{id: uuid.New(), batch: batch, interval: interval})
	}
	return l
}

// Start starts one goroutine per session.
func (l *load) Start() {
	for _, s := range l.sessions {
		if s.stream {
			continue
		}
		l.wg.Go(func() { l.run(s) })
	}
}

// Stop stops sending new requests and waits up to grace for the requests
// in flight to be acknowledged, retrying as usual; after that it abandons
// them (their events count as sent but not acknowledged).
func (l *load) Stop(grace time.Duration) {
	l.once.Do(func() {
		close(l.stop)
		done := make(chan struct{})
		go func() { l.wg.Wait(); close(done) }()
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			l.cancel()
			<-done
		}
		l.cancel()
		l.http.CloseIdleConnections()
	})
}

// run sends session s's requests, one at a time, every s.interval.
func (l *load) run(s *session) {
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	// Spread the sessions' first requests over one interval.
	first := time.NewTimer(rand.N(s.interval))
	select {
	case <-l.stop:
		first.Stop()
		return
	case <-first.C:
	}
	for {
		from := s.sent.Load() + 1
		to := from + int64(s.batch) - 1
		for range s.batch {
			id, err := uuid.NewV7()
			if err != nil {
				l.fail(fmt.Sprintf("session %s: new id: %v", s.id, err))
				return
			}
			s.ids = append(s.ids, id)
		}
		s.sent.Store(to)
		if !l.deliver(s, from, to) {
			return
		}
		s.acked.Store(to)
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
	}
}

// wireEvent is an event as the client sends it.
type wireEvent struct {
	ID        uuid.UUID      `json:"id"`
	SessionID uuid.UUID      `json:"session_id"`
	Category  string         `json:"category"`
	Name      string         `json:"name"`
	Data      map[string]any `json:"data"`
	Timestamp string         `json:"timestamp"`
}

// event encodes event seq of s: about 300 bytes, with data.seq = seq and
// timestamp = epoch + seq ms (so "seq ≤ n" is an index range in Postgres).
func (l *load) event(s *session, seq int64) []byte {
	b, err := json.Marshal(wireEvent{
		ID: s.ids[seq-1], SessionID: s.id, Category: "page interaction", Name: "pageview",
		Data:      map[string]any{"host": "faults.example.com", "path": "/p/" + strconv.FormatInt(seq, 10), "seq": seq, "pad": l.pad},
		Timestamp: l.Timestamp(seq).Format(time.RFC3339Nano),
	})
	if err != nil {
		panic(err) // only plain values: cannot happen
	}
	return b
}

// Timestamp is the event time of sequence number seq.
func (l *load) Timestamp(seq int64) time.Time {
	return l.epoch.Add(time.Duration(seq) * time.Millisecond).UTC()
}

// receipt is the gateway's answer for one event.
type receipt struct {
	ID     uuid.UUID `json:"id"`
	Status string    `json:"status"`
}

// deliver posts events from..to of s until they get a 202, retrying with
// the same ids. It returns false if they were given up (Stop's grace ran
// out) or refused for good (recorded in failures).
func (l *load) deliver(s *session, from, to int64) bool {
	var body []byte
	if s.batch == 1 {
		body = l.event(s, from)
	} else {
		parts := make([][]byte, 0, to-from+1)
		for seq := from; seq <= to; seq++ {
			parts = append(parts, l.event(s, seq))
		}
		body = append(append([]byte{'['}, bytes.Join(parts, []byte{','})...), ']')
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			l.retries.Add(1)
		}
		status, answer, retryAfter, err := l.post(body)
		switch {
		case err == nil && status == http.StatusAccepted:
			if problem := checkReceipts(s, from, to, answer); problem != "" {
				l.fail(problem)
				return false
			}
			return true
		case err != nil && errors.Is(err, context.DeadlineExceeded):
			l.timeouts.Add(1)
		case err != nil:
			l.connErrors.Add(1)
		case status == http.StatusTooManyRequests || status >= 500:
			l.mu.Lock()
			l.statuses[status]++
			l.mu.Unlock()
		default:
			l.mu.Lock()
			l.statuses[status]++
			l.mu.Unlock()
			l.fail(fmt.Sprintf("session %s seq %d-%d: %d %s", s.id, from, to, status, answer))
			return false
		}
		wait := min(time.Second, 50*time.Millisecond<<min(attempt, 5))
		wait = wait/2 + rand.N(wait/2+1)
		if retryAfter > 0 {
			wait = min(retryAfter, time.Second)
		}
		timer := time.NewTimer(wait)
		select {
		case <-l.giveUp.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
}

// checkReceipts checks that a 202 accepted every event with its own id.
func checkReceipts(s *session, from, to int64, answer []byte) string {
	var rcs []receipt
	if s.batch == 1 {
		var rc receipt
		if err := json.Unmarshal(answer, &rc); err != nil {
			return fmt.Sprintf("session %s seq %d: undecodable 202 %q: %v", s.id, from, answer, err)
		}
		rcs = []receipt{rc}
	} else {
		var out struct{ Events []receipt }
		if err := json.Unmarshal(answer, &out); err != nil {
			return fmt.Sprintf("session %s seq %d-%d: undecodable 202 %q: %v", s.id, from, to, answer, err)
		}
		rcs = out.Events
	}
	if int64(len(rcs)) != to-from+1 {
		return fmt.Sprintf("session %s seq %d-%d: %d receipts", s.id, from, to, len(rcs))
	}
	for k, rc := range rcs {
		seq := from + int64(k)
		if rc.Status != "accepted" || rc.ID != s.ids[seq-1] {
			return fmt.Sprintf("session %s seq %d: receipt %+v, want accepted %s", s.id, seq, rc, s.ids[seq-1])
		}
	}
	return ""
}

// post sends one attempt with a 10 s deadline.
func (l *load) post(body []byte) (status int, answer []byte, retryAfter time.Duration, err error) {
	l.requests.Add(1)
	ctx, cancel := context.WithTimeout(l.giveUp, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+writeKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := l.http.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer res.Body.Close()
	answer, err = io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return 0, nil, 0, err
	}
	if secs, perr := strconv.Atoi(res.Header.Get("Retry-After")); perr == nil && secs > 0 {
		retryAfter = time.Duration(secs) * time.Second
	}
	return res.StatusCode, answer, retryAfter, nil
}

func (l *load) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 20 {
		l.failures = append(l.failures, msg)
	}
}

// Failures lists answers that were neither a 202 nor retryable.
func (l *load) Failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failures...)
}

// Marks returns, per session, the highest sequence number acknowledged so
// far (every lower one is acknowledged too).
func (l *load) Marks() []int64 {
	out := make([]int64, len(l.sessions))
	for k, s := range l.sessions {
		out[k] = s.acked.Load()
	}
	return out
}

// Acked is the number of events acknowledged so far.
func (l *load) Acked() int64 {
	var n int64
	for _, s := range l.sessions {
		n += s.acked.Load()
	}
	return n
}

// Summary describes what the clients went through, for the notes.
func (l *load) Summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var codes []string
	for code, n := range l.statuses {
		codes = append(codes, fmt.Sprintf("%d %d times", code, n))
	}
	sort.Strings(codes)
	var why []string
	if len(codes) > 0 {
		why = append(why, "answered "+strings.Join(codes, ", "))
	}
	if n := l.timeouts.Load(); n > 0 {
		why = append(why, fmt.Sprintf("%d got no answer within 10 s", n))
	}
	if n := l.connErrors.Load(); n > 0 {
		why = append(why, fmt.Sprintf("%d failed to connect or lost the connection", n))
	}
	s := fmt.Sprintf("%d requests, %d of them retries", l.requests.Load(), l.retries.Load())
	if len(why) > 0 {
		s += " (failed attempts: " + strings.Join(why, "; ") + ")"
	}
	return s
}

// stream is an NDJSON body of several sessions' events, interleaved line
// by line, each session's lines in sequence order.
type stream struct {
	sessions []*session
	lines    [][]byte
}

// AddStream adds n stream sessions of per events each to the load, so the
// checks cover them, and returns the stream.
func (l *load) AddStream(n, per int) (*stream, error) {
	st := &stream{}
	for range n {
		s := &session{id: uuid.New(), stream: true}
		for range per {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, err
			}
			s.ids = append(s.ids, id)
		}
		st.sessions = append(st.sessions, s)
	}
	for seq := int64(1); seq <= int64(per); seq++ {
		for _, s := range st.sessions {
			st.lines = append(st.lines, append(l.event(s, seq), '\n'))
		}
	}
	l.sessions = append(l.sessions, st.sessions...)
	return st, nil
}

// Send posts the stream, writing linesPerSec lines per second (0: as fast
// as possible), and returns the gateway's answer or the transport error.
// Every line counts as sent.
func (l *load) SendStream(ctx context.Context, st *stream, linesPerSec int) (int, []byte, error) {
	for _, s := range st.sessions {
		s.sent.Store(int64(len(s.ids)))
	}
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		per := max(1, linesPerSec/100)
		for k := 0; k < len(st.lines); {
			n := len(st.lines) - k
			if linesPerSec > 0 {
				n = min(n, per)
			}
			if _, err := pw.Write(bytes.Join(st.lines[k:k+n], nil)); err != nil {
				return // the request ended
			}
			k += n
			if linesPerSec > 0 {
				select {
				case <-ctx.Done():
					pw.CloseWithError(ctx.Err())
					return
				case <-tick.C:
				}
			}
		}
		pw.Close()
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, pr)
	if err != nil {
		pr.CloseWithError(err)
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+writeKey)
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := l.http.Do(req)
	if err != nil {
		pr.CloseWithError(err)
		return 0, nil, err
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	pr.CloseWithError(io.ErrClosedPipe)
	return res.StatusCode, answer, err
}

// StreamAcked records that the gateway acknowledged the whole stream.
func (st *stream) Acked() {
	for _, s := range st.sessions {
		s.acked.Store(int64(len(s.ids)))
	}
}
