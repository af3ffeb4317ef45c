// Package httpapi is the gateway's HTTP transport: gin handlers that
// authenticate, bound and read request bodies, call the ingest service and
// map its outcomes to status codes.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/services/ingest-gateway/internal/ingest"
)

// Config bounds request handling.
type Config struct {
	MaxBodyBytes   int64         // request body limit
	PublishTimeout time.Duration // how long to wait for the broker before 503
}

// API serves the gateway's routes.
type API struct {
	svc   *ingest.Service
	auth  *auth.Authenticator
	cfg   Config
	ready func(context.Context) error
}

// New returns the API; ready reports whether the broker is reachable.
func New(svc *ingest.Service, a *auth.Authenticator, cfg Config, ready func(context.Context) error) (*API, error) {
	if svc == nil || a == nil || ready == nil {
		return nil, errors.New("httpapi: missing dependency")
	}
	if cfg.MaxBodyBytes <= 0 || cfg.PublishTimeout <= 0 {
		return nil, errors.New("httpapi: MaxBodyBytes and PublishTimeout must be positive")
	}
	return &API{svc: svc, auth: a, cfg: cfg, ready: ready}, nil
}

// Register mounts the routes on r.
func (a *API) Register(r *gin.Engine) {
	write := httpx.RequireScope(a.auth, auth.ScopeWrite)
	httpx.Handle(r, http.MethodPost, "/events", write, a.postEvents)
	httpx.Handle(r, http.MethodPost, "/sessions", write, a.postSessions)
	r.GET("/readyz", a.readyz)
}

// EventDoc documents an event as clients send it (either session shape).
type EventDoc struct {
	SessionID string         `json:"session_id" example:"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"`
	Session   *SessionRef    `json:"session,omitempty"`
	Category  string         `json:"category" example:"page interaction"`
	Name      string         `json:"name" example:"pageview"`
	Data      map[string]any `json:"data"`
	Timestamp string         `json:"timestamp" example:"2021-01-01 09:15:27.243860"`
}

// SessionRef is the seed's `"session": {"id": ...}` shape.
type SessionRef struct {
	ID string `json:"id" example:"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"`
}

// BatchReceipt answers a JSON array: one receipt per event, in input order.
type BatchReceipt struct {
	Events []ingest.Receipt `json:"events"`
}

// postEvents ingests one event or an array of events.
//
//	@Summary		Ingest events
//	@Description	Takes one event object or a JSON array of them, with the session as "session_id" or "session": {"id"}. Answers 202 only after Kafka acknowledged every event (acks=all); a single event gets one receipt, an array one receipt per event in input order. Elements that are not objects are rejected in their receipt. A body that is not JSON gets 400 and is recorded as an invalid_json error.
//	@Tags			events
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			event	body		EventDoc	true	"an event, or an array of events"
//	@Success		202		{object}	ingest.Receipt	"single event (an array gets BatchReceipt)"
//	@Failure		400		{object}	httpx.ErrorBody
//	@Failure		401		{object}	httpx.ErrorBody
//	@Failure		403		{object}	httpx.ErrorBody
//	@Failure		413		{object}	httpx.ErrorBody
//	@Failure		503		{object}	httpx.ErrorBody	"Kafka did not acknowledge: retry after Retry-After seconds"
//	@Router			/events/ [post]
func (a *API) postEvents(c *gin.Context) {
	body, ok := a.readBody(c)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), a.cfg.PublishTimeout)
	defer cancel()
	res, err := a.svc.Ingest(ctx, httpx.PrincipalOf(c).AppID, body)
	if err != nil {
		a.fail(c, err)
		return
	}
	if res.Batch {
		c.JSON(http.StatusAccepted, BatchReceipt{Events: res.Receipts})
		return
	}
	c.JSON(http.StatusAccepted, res.Receipts[0])
}

// SessionRequest optionally carries the application's own session id.
type SessionRequest struct {
	ID string `json:"id" example:"9ab1b579-7021-4e0c-8ea1-2ac9f52f3058"`
}

// SessionReceipt answers a session registration.
type SessionReceipt struct {
	ID     uuid.UUID `json:"id"`
	Status string    `json:"status" example:"accepted"`
}

// postSessions registers a session.
//
//	@Summary		Register a session
//	@Description	Registers a session for the key's application. The body is optional: {"id": "<uuid>"} registers the application's own id, otherwise one is generated. Answers 202 once Kafka acknowledged the registration; the session is queryable shortly after.
//	@Tags			sessions
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			session	body		SessionRequest	false	"optional session id"
//	@Success		202		{object}	SessionReceipt
//	@Failure		400		{object}	httpx.ErrorBody
//	@Failure		401		{object}	httpx.ErrorBody
//	@Failure		503		{object}	httpx.ErrorBody
//	@Router			/sessions/ [post]
func (a *API) postSessions(c *gin.Context) {
	body, ok := a.readBody(c)
	if !ok {
		return
	}
	var id uuid.UUID
	if len(body) > 0 {
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
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, SessionReceipt{ID: id, Status: ingest.StatusAccepted})
}

// readyz reports whether the gateway can reach Kafka.
//
//	@Summary	Readiness probe
//	@Tags		health
//	@Produce	json
//	@Success	200	{object}	map[string]string
//	@Failure	503	{object}	httpx.ErrorBody
//	@Router		/readyz [get]
func (a *API) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := a.ready(ctx); err != nil {
		httpx.Abort(c, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// readBody reads the whole body within the size limit, answering 413 over it.
func (a *API) readBody(c *gin.Context) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, a.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		httpx.Abort(c, http.StatusRequestEntityTooLarge, "body_too_large", "request body is over "+strconv.FormatInt(a.cfg.MaxBodyBytes, 10)+" bytes")
		return nil, false
	case err != nil:
		httpx.Abort(c, http.StatusBadRequest, "unreadable_body", "request body could not be read")
		return nil, false
	}
	return body, true
}

// fail maps an ingest error to its status; this is the one place that does.
func (a *API) fail(c *gin.Context, err error) {
	var rejected *ingest.RejectedError
	switch {
	case errors.As(err, &rejected):
		httpx.Abort(c, http.StatusBadRequest, string(rejected.Reason.Code), rejected.Reason.Message+" (recorded as error "+rejected.ID.String()+")")
	case errors.Is(err, ingest.ErrEmptyBatch):
		httpx.Abort(c, http.StatusBadRequest, "empty_batch", "the array holds no events")
	case errors.Is(err, ingest.ErrTooManyEvents):
		httpx.Abort(c, http.StatusRequestEntityTooLarge, "too_many_events", err.Error())
	case errors.Is(err, ingest.ErrUnavailable):
		c.Header("Retry-After", "1")
		httpx.Abort(c, http.StatusServiceUnavailable, "unavailable", "events could not be stored right now; nothing was accepted, retry later")
	default:
		c.Error(err)
		httpx.Abort(c, http.StatusInternalServerError, "internal", "internal error")
	}
}
