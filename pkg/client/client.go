// Package client is the Go SDK applications embed to send events to The
// Eye's ingest-gateway.
//
// Track validates an event, gives it a UUIDv7 id when it has none, and
// queues it without touching the network. A background goroutine sends the
// queue as JSON arrays to POST {Endpoint}/events/, in batches of up to
// Config.BatchSize events or every Config.FlushInterval, retrying network
// errors, 429 and 5xx with exponential backoff and full jitter (or the
// gateway's Retry-After). A retried batch carries the same ids, and the
// pipeline stores one row per id, so delivery is at-least-once from the SDK
// and exactly-once in storage. Flush sends what is queued; Close stops
// accepting events, sends what is left and stops the goroutine. Stats
// reports what became of the events.
//
// See docs/client.md for the delivery, buffer and retry policies.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Errors returned by the client, some wrapped with details: test for them
// with errors.Is.
var (
	// ErrInvalidConfig means New was given a Config it cannot work with.
	ErrInvalidConfig = errors.New("client: invalid config")
	// ErrInvalidEvent means Track refused an event: it would never be
	// stored, or could not be encoded.
	ErrInvalidEvent = errors.New("client: invalid event")
	// ErrBufferFull means Track dropped the event because BufferSize events
	// are already waiting; it is counted in Stats.Dropped.
	ErrBufferFull = errors.New("client: buffer full, event dropped")
	// ErrClosed means the client was closed: Track and Flush after Close
	// return it.
	ErrClosed = errors.New("client: closed")
	// ErrDeliveryFailed means Flush or Close gave up on some events (a 4xx
	// answer, retries exhausted, or Close's deadline); they are counted in
	// Stats.Failed.
	ErrDeliveryFailed = errors.New("client: events not delivered")
)

// Event is one user-behaviour event.
type Event struct {
	// ID identifies the event; the pipeline stores one event per id, which
	// makes retries safe. Leave it empty to get a UUIDv7; if set it must be
	// a non-nil UUID in its 36-character form.
	ID string
	// SessionID is the session the event belongs to, a UUID (required).
	SessionID string
	// Category groups events, e.g. "page interaction".
	Category string
	// Name names the event, e.g. "pageview".
	Name string
	// Data is the event's payload, a non-empty JSON object. It is encoded by
	// Track, so the caller may reuse the map afterwards.
	Data map[string]any
	// Timestamp is when the event happened on the device; zero means the
	// time Track was called.
	Timestamp time.Time
}

// Stats counts what became of tracked events. Sent + Rejected + Failed +
// Queued is the number of events Track accepted.
type Stats struct {
	// Sent is the number of events the gateway accepted.
	Sent int64
	// Rejected is the number of events the gateway answered "rejected" for
	// in its receipts; they were recorded as error records, not events.
	Rejected int64
	// Retried is the number of retried HTTP attempts (one per batch
	// resend, whatever its size).
	Retried int64
	// Dropped is the number of events Track refused with ErrBufferFull.
	Dropped int64
	// Failed is the number of events given up: answered with a 4xx other
	// than 429, out of retries, or still unsent at Close's deadline.
	Failed int64
	// Queued is the number of events accepted by Track and not yet Sent,
	// Rejected or Failed: waiting in the buffer or in flight.
	Queued int64
}

// Client sends events to the ingest-gateway in the background. It is safe
// for concurrent use. Create it with New and stop it with Close.
type Client struct {
	cfg       Config // defaults applied
	eventsURL string
	http      *http.Client
	ownHTTP   bool // http was created by New: Close closes its idle connections

	mu     sync.RWMutex // guards closed against Track's enqueue
	closed bool

	queue   chan pending
	flushes chan chan int // a flush request; the loop answers the number of events it gave up
	closing chan struct{} // closed by the first Close
	done    chan struct{} // closed when the loop has stopped
	ctx     context.Context
	cancel  context.CancelFunc // aborts in-flight requests and backoff waits
	// finalFailed is the number of events given up by the loop's final
	// drain; written before done is closed.
	finalFailed int

	sent, rejected, retried, dropped, failed, queued atomic.Int64
	warnedIDs                                        atomic.Bool
}

// pending is an event as queued: its id and its wire encoding without the
// closing brace, so each attempt can append its own sent_at.
type pending struct {
	id     string
	prefix []byte
}

// New validates cfg and starts a Client's background sender.
func New(cfg Config) (*Client, error) {
	cfg, eventsURL, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:       cfg,
		eventsURL: eventsURL,
		http:      cfg.HTTPClient,
		queue:     make(chan pending, cfg.BufferSize),
		flushes:   make(chan chan int),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	if c.http == nil {
		c.http, c.ownHTTP = defaultHTTPClient(), true
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.run()
	return c, nil
}

// wireEvent is an event as the gateway reads it, less sent_at.
type wireEvent struct {
	ID        string         `json:"id"`
	SessionID string         `json:"session_id"`
	Category  string         `json:"category"`
	Name      string         `json:"name"`
	Data      map[string]any `json:"data"`
	Timestamp string         `json:"timestamp"`
}

// timeLayout is RFC 3339 with nanoseconds; times are formatted in UTC.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Track queues e for sending and returns at once; it never waits for the
// network. It returns ErrInvalidEvent when e has no session id, an ID that
// is not a non-nil UUID, or Data that cannot be encoded; ErrBufferFull when
// BufferSize events are already waiting (e is dropped and counted in
// Stats.Dropped, earlier events are kept); ErrClosed after Close.
func (c *Client) Track(e Event) error {
	if e.SessionID == "" {
		return fmt.Errorf("%w: session id is required", ErrInvalidEvent)
	}
	id, err := eventID(e.ID)
	if err != nil {
		return err
	}
	ts := e.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	b, err := json.Marshal(wireEvent{
		ID: id, SessionID: e.SessionID, Category: e.Category, Name: e.Name,
		Data: e.Data, Timestamp: ts.UTC().Format(timeLayout),
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	p := pending{id: id, prefix: b[:len(b)-1]} // drop the closing brace

	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	c.queued.Add(1)
	select {
	case c.queue <- p:
		return nil
	default:
		c.queued.Add(-1)
		c.dropped.Add(1)
		return ErrBufferFull
	}
}

// eventID returns the canonical form of a caller's id, or a new UUIDv7.
func eventID(id string) (string, error) {
	if id == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return "", fmt.Errorf("client: new event id: %w", err)
		}
		return u.String(), nil
	}
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 || u == uuid.Nil {
		return "", fmt.Errorf("%w: id %q is not a non-nil UUID", ErrInvalidEvent, id)
	}
	return u.String(), nil
}

// Flush sends every event queued before the call and returns once each has
// been sent, rejected or given up. It returns ErrDeliveryFailed when some
// were given up, ctx's error if ctx ends first (the events stay queued and
// are still sent), and ErrClosed after Close.
func (c *Client) Flush(ctx context.Context) error {
	c.mu.RLock()
	closed := c.closed
	c.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	reply := make(chan int, 1)
	select {
	case c.flushes <- reply:
	case <-ctx.Done():
		return fmt.Errorf("client: flush: %w", ctx.Err())
	case <-c.done:
		return ErrClosed
	}
	select {
	case failed := <-reply:
		if failed > 0 {
			return fmt.Errorf("%w: %d events given up", ErrDeliveryFailed, failed)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client: flush: %w", ctx.Err())
	}
}

// Close stops accepting events, sends every queued event (retrying as
// usual) and stops the background goroutine. If ctx ends first, in-flight
// requests and retries are abandoned, unsent events are counted as Failed,
// and Close returns ctx's error once the goroutine has stopped. It returns
// ErrDeliveryFailed when the final sends gave up on some events. Calling
// Close again waits for the first call's work and returns nil or ctx's
// error.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	c.mu.Unlock()
	if first {
		close(c.closing)
	}
	var err error
	select {
	case <-c.done:
	case <-ctx.Done():
		c.cancel()
		<-c.done
		err = fmt.Errorf("client: close: %w", ctx.Err())
	}
	c.cancel()
	if c.ownHTTP {
		c.http.CloseIdleConnections()
	}
	if err == nil && first && c.finalFailed > 0 {
		err = fmt.Errorf("%w: %d events given up", ErrDeliveryFailed, c.finalFailed)
	}
	return err
}

// Stats returns the client's counters. Each is read atomically; together
// they are a near-instant snapshot, exact once the client is idle.
func (c *Client) Stats() Stats {
	return Stats{
		Sent:     c.sent.Load(),
		Rejected: c.rejected.Load(),
		Retried:  c.retried.Load(),
		Dropped:  c.dropped.Load(),
		Failed:   c.failed.Load(),
		Queued:   c.queued.Load(),
	}
}
