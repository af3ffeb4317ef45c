// Package httpapi is the gateway's HTTP transport: authentication (header,
// or a write key in the URL for sendBeacon), CORS, rate limits, bounded
// in-flight work, body decoding (gzip, JSON, NDJSON streams), and the one
// mapping from ingest outcomes to status codes.
package httpapi

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/pkg/metrics"
	"github.com/the-eye/eye/services/ingest-gateway/internal/ingest"
)

// Config bounds request handling.
type Config struct {
	MaxBodyBytes   int64         // a JSON body, after decompression
	PublishTimeout time.Duration // how long to wait for the broker before 503
	StreamTimeout  time.Duration // how long one NDJSON stream may take, beyond the server's read and write timeouts
	MaxInflight    int           // requests handled at once; more wait, then 503
	RateLimit      float64       // default events per second per key
	RateBurst      int           // default bucket size per key
	AuthFailures   *httpx.FailureLimiter
	Metrics        *metrics.Registry
}

// API serves the gateway's routes.
type API struct {
	svc      *ingest.Service
	auth     *auth.Authenticator
	cfg      Config
	limits   *keyLimiters
	inflight chan struct{}
	counters counters
	ready    gin.HandlerFunc
}

// New returns the API; ready answers /readyz (see httpx.Readyz).
func New(svc *ingest.Service, a *auth.Authenticator, cfg Config, ready gin.HandlerFunc) (*API, error) {
	if svc == nil || a == nil || ready == nil || cfg.AuthFailures == nil || cfg.Metrics == nil {
		return nil, errors.New("httpapi: missing dependency")
	}
	if cfg.MaxBodyBytes <= 0 || cfg.PublishTimeout <= 0 || cfg.StreamTimeout <= 0 || cfg.MaxInflight <= 0 || cfg.RateLimit <= 0 || cfg.RateBurst <= 0 {
		return nil, errors.New("httpapi: every limit must be positive")
	}
	return &API{svc: svc, auth: a, cfg: cfg, limits: newKeyLimiters(cfg.RateLimit, cfg.RateBurst),
		inflight: make(chan struct{}, cfg.MaxInflight), counters: newCounters(cfg.Metrics), ready: ready}, nil
}

// Register mounts the routes on r.
func (a *API) Register(r *gin.Engine) {
	write := []gin.HandlerFunc{beaconKey, httpx.RequireScopeLimited(a.auth, auth.ScopeWrite, a.cfg.AuthFailures), urlKeyWriteOnly, checkOrigin,
		httpx.AcceptBodies(bodyTypes...), a.bounded}
	httpx.Handle(r, http.MethodPost, "/events", append(write, a.postEvents)...)
	httpx.Handle(r, http.MethodPost, "/sessions", append(write, a.postSessions)...)
	httpx.Handle(r, http.MethodOptions, "/events", preflight)
	httpx.Handle(r, http.MethodOptions, "/sessions", preflight)
	r.GET("/readyz", a.readyz)
}

// bodyTypes are the Content-Types the gateway reads: JSON, NDJSON, and
// text/plain, which is what navigator.sendBeacon sends with a string body
// (and what a browser may send cross-origin without a preflight); a
// text/plain body is read as JSON. Anything else (a form, XML) gets 415.
var bodyTypes = []string{"application/json", "application/*+json", "application/x-ndjson", "application/ndjson", "application/jsonlines", "text/plain"}

// urlKeyWriteOnly refuses a key from the URL that can do more than write.
func urlKeyWriteOnly(c *gin.Context) {
	if p := httpx.PrincipalOf(c); c.GetBool(fromURLKey) && (p.Has(auth.ScopeRead) || p.Has(auth.ScopeAdmin)) {
		httpx.Abort(c, http.StatusUnauthorized, "unauthorized", "a key with read or admin scope must not travel in a URL")
		return
	}
	c.Next()
}

// bounded caps the requests handled at once, so memory stays bounded when
// Kafka is slow: a request waits for a slot up to the publish timeout, then
// gets 503.
func (a *API) bounded(c *gin.Context) {
	t := time.NewTimer(a.cfg.PublishTimeout)
	defer t.Stop()
	select {
	case a.inflight <- struct{}{}:
		defer func() { <-a.inflight }()
		c.Next()
	case <-t.C:
		unavailable(c, "the gateway is at capacity")
	case <-c.Request.Context().Done():
		c.Abort()
	}
}

// EventDoc documents an event as clients send it (either session shape).
type EventDoc struct {
	ID        string         `json:"id,omitempty" example:"01913a8e-7f3a-7cc2-9d6a-8b4f0e1c2d3e"`
	SessionID string         `json:"session_id" validate:"optional" example:"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"`
	Session   *SessionRef    `json:"session,omitempty"`
	Category  string         `json:"category" example:"page interaction"`
	Name      string         `json:"name" example:"pageview"`
	Data      map[string]any `json:"data"`
	Timestamp string         `json:"timestamp" example:"2021-01-01 09:15:27.243860"`
	SentAt    string         `json:"sent_at,omitempty" example:"2021-01-01T09:15:28Z"`
}

// SessionRef is the seed's `"session": {"id": ...}` shape.
type SessionRef struct {
	ID string `json:"id" example:"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"`
}

// BatchReceipt answers a JSON array: one receipt per event, in input order.
type BatchReceipt struct {
	Events []ingest.Receipt `json:"events"`
}

// IngestAnswer documents the 202 answer of POST /events/, whose shape
// follows the body's: a single event gets one ingest.Receipt (id, status,
// reasons), an array a BatchReceipt (events), an NDJSON stream an
// ingest.StreamResult (accepted, rejected, rejections). Swagger 2 has no
// "one of", so every field is optional here.
type IngestAnswer struct {
	ID         string               `json:"id" validate:"optional" example:"01913a8e-7f3a-7cc2-9d6a-8b4f0e1c2d3e"`
	Status     string               `json:"status" validate:"optional" enums:"accepted,rejected"`
	Reasons    event.Reasons        `json:"reasons" validate:"optional"`
	Events     []ingest.Receipt     `json:"events" validate:"optional"`
	Accepted   int                  `json:"accepted" validate:"optional"`
	Rejected   int                  `json:"rejected" validate:"optional"`
	Rejections []ingest.LineReceipt `json:"rejections" validate:"optional"`
}

// StreamFailure answers an NDJSON stream stopped part-way.
type StreamFailure struct {
	Error httpx.ErrorDetail `json:"error"`
	// Acknowledged lines were durably handled; resend from the next one.
	Acknowledged int `json:"acknowledged_lines"`
}

// postEvents ingests events.
//
//	@Summary		Ingest events
//	@Description	Takes one event object, a JSON array of them, or an NDJSON stream (Content-Type: application/x-ndjson, one event per line, any length, produced to Kafka as it arrives). Bodies may be gzip-compressed (Content-Encoding: gzip). The session is "session_id" or "session": {"id"}. An optional client "id" (UUID) makes retries idempotent; an optional "sent_at" corrects device clock skew. Answers 202 only after Kafka acknowledged every event (acks=all). A single event gets one receipt; an array one receipt per event in input order; a stream a count and its rejected lines. What the gateway can already tell is wrong (too large, too deep, not an object, no session id, a bad id) is rejected in the receipt and recorded as an error; a body that is not JSON gets 400 and is recorded as invalid_json. Content-Type must be application/json (or absent), an NDJSON type, or text/plain (read as JSON: what navigator.sendBeacon sends with a string body); any other (e.g. a form) gets 415 and is not recorded. Browsers: CORS for the application's allowed origins; navigator.sendBeacon may pass the write key as ?key=.
//	@Tags			events
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			event	body		EventDoc	true	"an event, an array of events, or NDJSON"
//	@Param			key		query		string		false	"write key, for navigator.sendBeacon only"
//	@Success		202		{object}	IngestAnswer	"a single event's receipt, an array's receipts (events), or a stream's counts"
//	@Failure		400		{object}	httpx.ErrorBody
//	@Failure		401		{object}	httpx.ErrorBody
//	@Failure		403		{object}	httpx.ErrorBody
//	@Failure		413		{object}	httpx.ErrorBody	"over a size or count limit (the message names it)"
//	@Failure		415		{object}	httpx.ErrorBody	"Content-Type not JSON, NDJSON or text/plain, or Content-Encoding not gzip"
//	@Failure		429		{object}	httpx.ErrorBody	"rate limited (events per key, or failed authentications from this address): retry after Retry-After seconds"
//	@Failure		503		{object}	httpx.ErrorBody	"Kafka did not acknowledge, or keys cannot be checked: nothing was accepted; retry after Retry-After seconds"
//	@Router			/events/ [post]
func (a *API) postEvents(c *gin.Context) {
	if isNDJSON(c.GetHeader("Content-Type")) {
		a.postStream(c)
		return
	}
	body, ok := a.readBody(c)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), a.cfg.PublishTimeout)
	defer cancel()
	p := httpx.PrincipalOf(c)
	res, err := a.svc.Ingest(ctx, p.AppID, body, func(n int) error { return a.limits.admit(p, n) })
	if err != nil {
		a.counters.failure(err)
		fail(c, err)
		return
	}
	if res.Batch {
		a.counters.receipts("array", res.Receipts)
		c.JSON(http.StatusAccepted, BatchReceipt{Events: res.Receipts})
		return
	}
	a.counters.receipts("single", res.Receipts)
	c.JSON(http.StatusAccepted, res.Receipts[0])
}

// postStream ingests an NDJSON stream, which may take StreamTimeout: longer
// than the server's read and write timeouts, which bound other requests.
func (a *API) postStream(c *gin.Context) {
	httpx.ExtendDeadlines(c, a.cfg.StreamTimeout)
	r, ok := a.decoded(c)
	if !ok {
		return
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(c.Request.Context(), a.cfg.StreamTimeout)
	defer cancel()
	p := httpx.PrincipalOf(c)
	res, err := a.svc.Stream(ctx, p.AppID, r, func(n int) error { return a.limits.admitWaiting(ctx, p, n, a.cfg.PublishTimeout) })
	var se *ingest.StreamError
	switch {
	case errors.As(err, &se):
		status, code, msg := classify(se.Err)
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			c.Header("Retry-After", retryAfter(se.Err))
		}
		c.AbortWithStatusJSON(status, StreamFailure{Error: httpx.ErrorDetail{Code: code, Message: msg}, Acknowledged: se.Acknowledged})
	case err != nil:
		fail(c, err)
	default:
		a.counters.stream(res)
		c.JSON(http.StatusAccepted, res)
	}
}

// SessionRequest optionally carries the application's own session id.
type SessionRequest struct {
	ID string `json:"id" validate:"optional" example:"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"`
}

// SessionReceipt answers a session registration.
type SessionReceipt struct {
	ID     uuid.UUID `json:"id"`
	Status string    `json:"status" enums:"registered" example:"registered"`
}

// postSessions registers a session.
//
//	@Summary		Register a session
//	@Description	Registers a session for the key's application. The body is optional: {"id": "<uuid>"} registers the application's own id, otherwise one is generated. Answers 201 once the registration is stored, so events sent next find it (applications with strict sessions must register first). Registering again is harmless; an id registered by another application gets 409.
//	@Tags			sessions
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			session	body		SessionRequest	false	"optional session id"
//	@Success		201		{object}	SessionReceipt
//	@Failure		400		{object}	httpx.ErrorBody
//	@Failure		401		{object}	httpx.ErrorBody
//	@Failure		403		{object}	httpx.ErrorBody	"the key lacks the write scope, or the Origin is not allowed"
//	@Failure		409		{object}	httpx.ErrorBody
//	@Failure		413		{object}	httpx.ErrorBody	"over EYE_MAX_BODY_BYTES"
//	@Failure		415		{object}	httpx.ErrorBody	"Content-Type not JSON or text/plain"
//	@Failure		429		{object}	httpx.ErrorBody	"too many failed authentications from this address: retry after Retry-After seconds"
//	@Failure		503		{object}	httpx.ErrorBody
//	@Router			/sessions/ [post]
func (a *API) postSessions(c *gin.Context) {
	body, ok := a.readBody(c)
	if !ok {
		return
	}
	var id uuid.UUID
	if len(strings.TrimSpace(string(body))) > 0 {
		obj, reason := event.DecodeObject(body)
		if reason != nil {
			httpx.Abort(c, http.StatusBadRequest, string(reason.Code), reason.Message)
			return
		}
		if raw, present := obj["id"]; present && string(raw) != "null" {
			var ref string
			_ = json.Unmarshal(raw, &ref) // a non-string leaves ref empty: not a UUID
			parsed, err := uuid.Parse(ref)
			if err != nil || len(ref) != 36 {
				httpx.Abort(c, http.StatusBadRequest, string(event.CodeInvalidSessionID), "id must be a UUID")
				return
			}
			id = parsed
		}
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), a.cfg.PublishTimeout)
	defer cancel()
	id, err := a.svc.RegisterSession(ctx, httpx.PrincipalOf(c).AppID, id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, SessionReceipt{ID: id, Status: "registered"})
}

// readyz reports whether the gateway can reach Kafka and Postgres (for keys
// and session registrations).
//
//	@Summary	Readiness probe
//	@Tags		health
//	@Produce	json
//	@Success	200	{object}	map[string]string
//	@Failure	503	{object}	httpx.ErrorBody
//	@Router		/readyz [get]
func (a *API) readyz(c *gin.Context) { a.ready(c) }

// errBodyTooLarge is a body over MaxBodyBytes, compressed or not.
var errBodyTooLarge = errors.New("body too large")

// readBody reads the whole (decompressed) body within MaxBodyBytes.
func (a *API) readBody(c *gin.Context) ([]byte, bool) {
	r, ok := a.decoded(c)
	if !ok {
		return nil, false
	}
	defer r.Close()
	body, err := io.ReadAll(io.LimitReader(r, a.cfg.MaxBodyBytes+1))
	if err == nil && int64(len(body)) > a.cfg.MaxBodyBytes {
		err = errBodyTooLarge
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, errBodyTooLarge), errors.As(err, &tooLarge):
		httpx.Abort(c, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is over the limit of %d bytes (EYE_MAX_BODY_BYTES), after decompression", a.cfg.MaxBodyBytes))
		return nil, false
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF):
		httpx.Abort(c, http.StatusBadRequest, "invalid_gzip", "the gzip body is corrupt or truncated")
		return nil, false
	case err != nil:
		httpx.Abort(c, http.StatusBadRequest, "unreadable_body", "request body could not be read")
		return nil, false
	}
	return body, true
}

// decoded returns the request body with its Content-Encoding undone. The
// compressed bytes are bounded by MaxBodyBytes for JSON bodies; what it
// inflates to is bounded by the caller.
func (a *API) decoded(c *gin.Context) (io.ReadCloser, bool) {
	body := c.Request.Body
	if !isNDJSON(c.GetHeader("Content-Type")) {
		body = http.MaxBytesReader(c.Writer, body, a.cfg.MaxBodyBytes)
	}
	switch enc := strings.ToLower(strings.TrimSpace(c.GetHeader("Content-Encoding"))); enc {
	case "", "identity":
		return body, true
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			httpx.Abort(c, http.StatusBadRequest, "invalid_gzip", "Content-Encoding is gzip but the body is not")
			return nil, false
		}
		return zr, true
	default:
		httpx.Abort(c, http.StatusUnsupportedMediaType, "unsupported_encoding", "Content-Encoding "+enc+" is not supported; use gzip or none")
		return nil, false
	}
}

func isNDJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/x-ndjson" || mt == "application/ndjson" || mt == "application/jsonlines"
}

// fail answers with the status classify gives err.
func fail(c *gin.Context, err error) {
	status, code, msg := classify(err)
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		c.Header("Retry-After", retryAfter(err))
	case http.StatusInternalServerError:
		c.Error(err)
	}
	httpx.Abort(c, status, code, msg)
}

// classify maps an ingest outcome to status, code and message; this is the
// one place that does.
func classify(err error) (int, string, string) {
	var (
		rejected *ingest.RejectedError
		limited  *RateLimitedError
	)
	switch {
	case errors.As(err, &rejected):
		status := http.StatusBadRequest
		if rejected.Reason.Code == event.CodeTooLarge {
			status = http.StatusRequestEntityTooLarge
		}
		return status, string(rejected.Reason.Code), rejected.Reason.Message + " (recorded as error " + rejected.ID.String() + ")"
	case errors.As(err, &limited):
		return http.StatusTooManyRequests, "rate_limited", "this key is over its rate limit; " + limited.Error()
	case errors.Is(err, ingest.ErrEmptyBatch):
		return http.StatusBadRequest, "empty_batch", "the request holds no events"
	case errors.Is(err, ingest.ErrTooManyEvents):
		return http.StatusRequestEntityTooLarge, "too_many_events", err.Error()
	case errors.Is(err, ingest.ErrSessionConflict):
		return http.StatusConflict, "session_conflict", err.Error()
	case errors.Is(err, ingest.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "unavailable", "events could not be stored right now; nothing unacknowledged was accepted, retry later"
	case errors.Is(err, context.Canceled):
		return 499, "client_closed", "the client went away"
	default:
		return http.StatusBadRequest, "unreadable_body", "request body could not be read: " + err.Error()
	}
}

func unavailable(c *gin.Context, msg string) {
	c.Header("Retry-After", "1")
	httpx.Abort(c, http.StatusServiceUnavailable, "unavailable", msg)
}

func retryAfter(err error) string {
	var limited *RateLimitedError
	if errors.As(err, &limited) {
		return fmt.Sprint(max(1, int(limited.RetryAfter.Seconds()+0.999)))
	}
	return "1"
}
