package client

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// userAgent identifies the SDK to the gateway.
const userAgent = "the-eye-go-client/1"

// Response bodies read at most this much; a receipt is under 100 bytes.
const (
	maxReceiptBytes = 16 << 20
	maxErrorBytes   = 4 << 10
)

// run is the background sender: it batches queued events by size and time,
// serves flush requests, and on closing sends what is left and returns.
func (c *Client) run() {
	defer close(c.done)
	batch := make([]pending, 0, c.cfg.BatchSize)
	timer := time.NewTimer(c.cfg.FlushInterval)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case p := <-c.queue:
			batch = append(batch, p)
			if len(batch) == 1 {
				timer.Reset(c.cfg.FlushInterval)
			}
			if len(batch) >= c.cfg.BatchSize {
				timer.Stop()
				c.deliver(batch)
				batch = batch[:0]
			}
		case <-timer.C:
			c.deliver(batch)
			batch = batch[:0]
		case reply := <-c.flushes:
			timer.Stop()
			reply <- c.deliverAll(batch, len(c.queue))
			batch = batch[:0]
		case <-c.closing:
			timer.Stop()
			c.finalFailed = c.deliverAll(batch, -1)
			return
		}
	}
}

// deliverAll sends batch and then n more queued events (all of them when n
// is negative), in batches of BatchSize. It returns how many it gave up.
func (c *Client) deliverAll(batch []pending, n int) int {
	failed := 0
	for n != 0 {
		var p pending
		select {
		case p = <-c.queue:
		default:
			n = 0
			continue
		}
		n--
		batch = append(batch, p)
		if len(batch) >= c.cfg.BatchSize {
			failed += c.deliver(batch)
			batch = batch[:0]
		}
	}
	return failed + c.deliver(batch)
}

// outcome classifies one HTTP attempt.
type outcome int

const (
	delivered outcome = iota // 2xx: receipts counted
	retryable                // network error, 429, 5xx
	fatal                    // any other answer: the batch cannot succeed
)

// attemptResult is what one HTTP attempt came to.
type attemptResult struct {
	outcome    outcome
	err        error
	retryAfter time.Duration // from a Retry-After header, 0 if none
}

// deliver sends one batch, retrying as configured, and counts its events.
// It returns the number of events given up. batch is not retained.
func (c *Client) deliver(batch []pending) int {
	n := len(batch)
	if n == 0 {
		return 0
	}
	defer c.queued.Add(-int64(n))
	start := time.Now()
	giveUp := func(err error) int {
		c.failed.Add(int64(n))
		c.cfg.Logger.Error("eye client: batch given up", "events", n, "first_id", batch[0].id, "error", err)
		return n
	}
	for attempt := 0; ; attempt++ {
		if err := c.ctx.Err(); err != nil {
			return giveUp(fmt.Errorf("client closed before delivery: %w", err))
		}
		res := c.attempt(batch)
		switch res.outcome {
		case delivered:
			return 0
		case fatal:
			return giveUp(res.err)
		}
		if c.ctx.Err() != nil {
			return giveUp(fmt.Errorf("client closed during delivery: %w", res.err))
		}
		if attempt >= c.cfg.MaxRetries {
			return giveUp(fmt.Errorf("out of retries after %d attempts: %w", attempt+1, res.err))
		}
		wait := res.retryAfter
		if wait == 0 {
			wait = c.backoff(attempt)
		}
		if elapsed := time.Since(start); elapsed+wait > c.cfg.MaxRetryElapsed {
			return giveUp(fmt.Errorf("next retry in %s would pass MaxRetryElapsed %s: %w", wait, c.cfg.MaxRetryElapsed, res.err))
		}
		c.retried.Add(1)
		c.cfg.Logger.Warn("eye client: retrying batch", "events", n, "attempt", attempt+1, "wait", wait, "error", res.err)
		if !c.sleep(wait) {
			return giveUp(fmt.Errorf("client closed while waiting to retry: %w", res.err))
		}
	}
}

// backoff is the full-jitter wait before retry number attempt+1: uniform in
// [0, min(RetryMaxDelay, RetryBaseDelay·2^attempt)].
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.cfg.RetryBaseDelay
	for range attempt {
		if ceiling >= c.cfg.RetryMaxDelay/2 {
			ceiling = c.cfg.RetryMaxDelay
			break
		}
		ceiling *= 2
	}
	return rand.N(min(ceiling, c.cfg.RetryMaxDelay) + 1)
}

// sleep waits d; it returns false if the client was cancelled first.
func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// attempt makes one HTTP request for batch, stamping sent_at now, and
// counts the receipts of a successful one.
func (c *Client) attempt(batch []pending) attemptResult {
	body, err := c.encode(batch, time.Now())
	if err != nil {
		return attemptResult{outcome: fatal, err: err}
	}
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.eventsURL, bytes.NewReader(body))
	if err != nil {
		return attemptResult{outcome: fatal, err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.WriteKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if c.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return attemptResult{outcome: retryable, err: err}
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxReceiptBytes)) // lets the connection be reused
		res.Body.Close()
	}()
	switch code := res.StatusCode; {
	case code >= 200 && code < 300:
		c.countReceipts(batch, res.Body)
		return attemptResult{outcome: delivered}
	case code == http.StatusTooManyRequests || code >= 500:
		return attemptResult{outcome: retryable, err: statusError(res), retryAfter: retryAfter(res.Header.Get("Retry-After"), time.Now())}
	default:
		return attemptResult{outcome: fatal, err: statusError(res)}
	}
}

// encode writes batch as a JSON array, each event with sent_at = now,
// gzipped when configured.
func (c *Client) encode(batch []pending, now time.Time) ([]byte, error) {
	sentAt := `,"sent_at":"` + now.UTC().Format(timeLayout) + `"}`
	size := 2 + len(batch)*(len(sentAt)+1)
	for _, p := range batch {
		size += len(p.prefix)
	}
	buf := make([]byte, 0, size)
	buf = append(buf, '[')
	for i, p := range batch {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, p.prefix...)
		buf = append(buf, sentAt...)
	}
	buf = append(buf, ']')
	if !c.cfg.Gzip {
		return buf, nil
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	if _, err := zw.Write(buf); err != nil {
		return nil, fmt.Errorf("gzip body: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip body: %w", err)
	}
	return z.Bytes(), nil
}

// receipt is the gateway's answer for one event.
type receipt struct {
	ID      string          `json:"id"`
	Status  string          `json:"status"`
	Reasons json.RawMessage `json:"reasons"`
}

// countReceipts counts a 2xx answer's receipts as Sent or Rejected. An
// answer without one receipt per event counts the whole batch as Sent: the
// gateway accepted the request.
func (c *Client) countReceipts(batch []pending, body io.Reader) {
	var out struct {
		Events []receipt `json:"events"`
	}
	err := json.NewDecoder(io.LimitReader(body, maxReceiptBytes)).Decode(&out)
	if err != nil || len(out.Events) != len(batch) {
		c.cfg.Logger.Warn("eye client: unexpected receipts, counting the batch as sent", "events", len(batch), "receipts", len(out.Events), "error", err)
		c.sent.Add(int64(len(batch)))
		return
	}
	var sent, rejected int64
	for i, r := range out.Events {
		if r.ID != batch[i].id && c.warnedIDs.CompareAndSwap(false, true) {
			c.cfg.Logger.Warn("eye client: the gateway assigned its own event ids; a retried batch may be stored twice",
				"client_id", batch[i].id, "gateway_id", r.ID)
		}
		if r.Status == "rejected" {
			rejected++
			c.cfg.Logger.Warn("eye client: event rejected", "id", batch[i].id, "reasons", string(r.Reasons))
			continue
		}
		sent++
	}
	c.sent.Add(sent)
	c.rejected.Add(rejected)
}

// statusError describes a non-2xx answer, with the gateway's JSON error
// code and message when it sent one.
func statusError(res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBytes))
	var e struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
		return fmt.Errorf("gateway answered %s: %s: %s", res.Status, e.Error.Code, e.Error.Message)
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return fmt.Errorf("gateway answered %s: %.200s", res.Status, s)
	}
	return errors.New("gateway answered " + res.Status)
}

// retryAfter reads a Retry-After header, delay-seconds or an HTTP date; 0
// when absent, malformed or already past.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
