// Package httpapi is the query API's HTTP transport: routes, parameter
// parsing, scopes, and the one mapping from domain errors to status codes.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/services/query-api/internal/admin"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// API serves the query routes.
type API struct {
	store   *query.Service
	admins  *admin.Service
	auth    *auth.Authenticator
	ready   gin.HandlerFunc
	eraser  *query.Eraser // nil: DELETE /sessions/{id} is not served
	schemas *schemaAPI    // nil: /admin/schemas is not served
	// replayer serves the replays of error records; nil: not served.
	replayer *query.Replayer
}

// Option configures optional parts of the API.
type Option func(*API)

// WithEraser serves DELETE /sessions/{id} with e.
func WithEraser(e *query.Eraser) Option { return func(a *API) { a.eraser = e } }

// New returns the API; ready answers /readyz (see httpx.Readyz).
func New(store *query.Service, admins *admin.Service, a *auth.Authenticator, ready gin.HandlerFunc, opts ...Option) (*API, error) {
	if store == nil || admins == nil || a == nil || ready == nil {
		return nil, errors.New("httpapi: missing dependency")
	}
	api := &API{store: store, admins: admins, auth: a, ready: ready}
	for _, o := range opts {
		o(api)
	}
	return api, nil
}

// jsonBody answers 415 to a request body that is not JSON; every route
// that reads a body has it.
var jsonBody = httpx.AcceptBodies(httpx.JSONMediaTypes...)

// Register mounts the routes on r.
func (a *API) Register(r *gin.Engine) {
	read := httpx.RequireScope(a.auth, auth.ScopeRead)
	admin := httpx.RequireScope(a.auth, auth.ScopeAdmin)
	httpx.Handle(r, http.MethodGet, "/events", read, a.listEvents)
	httpx.Handle(r, http.MethodGet, "/events/:id", read, a.getEvent)
	httpx.Handle(r, http.MethodPut, "/events/:id", admin, jsonBody, a.putEvent)
	httpx.Handle(r, http.MethodPatch, "/events/:id", admin, jsonBody, a.patchEvent)
	httpx.Handle(r, http.MethodDelete, "/events/:id", admin, a.deleteEvent)
	httpx.Handle(r, http.MethodGet, "/events/:id/audit", admin, a.eventAudit)
	httpx.Handle(r, http.MethodGet, "/sessions", read, a.listSessions)
	httpx.Handle(r, http.MethodGet, "/sessions/:id", read, a.getSession)
	httpx.Handle(r, http.MethodGet, "/sessions/:id/events", read, a.sessionTimeline)
	if a.eraser != nil {
		httpx.Handle(r, http.MethodDelete, "/sessions/:id", admin, a.eraseSession)
	}
	httpx.Handle(r, http.MethodGet, "/stats/events", read, a.eventStats)
	httpx.Handle(r, http.MethodGet, "/errors", read, a.listErrors)
	httpx.Handle(r, http.MethodGet, "/errors/:id", read, a.getError)
	a.registerErrors(r, read, admin) // errors.go: summary, replays
	a.registerAdmin(r, admin)
	a.registerSchemas(r, admin)
	r.GET("/readyz", a.readyz)
}

// EventList is a page of events.
type EventList struct {
	PageLinks
	Results []query.Event `json:"results"`
}

// SessionList is a page of sessions.
type SessionList struct {
	PageLinks
	Results []query.Session `json:"results"`
}

// ErrorList is a page of error records.
type ErrorList struct {
	PageLinks
	Results []query.Error `json:"results"`
}

// listEvents lists events.
//
//	@Summary		List events
//	@Description	Newest first unless ordering=timestamp. Pages as Django REST framework's CursorPagination: GET "next" or "previous" (absolute URLs, same filters, ordering and limit; null at either end). Unknown parameters get 400 unknown_parameter. A read key sees its own application's events; an admin key sees all and may filter by application.
//	@Tags			events
//	@Produce		json
//	@Security		BearerKey
//	@Param			session			query		string	false	"session id (UUID)"
//	@Param			category		query		string	false	"category, exact"
//	@Param			name			query		string	false	"name, exact"
//	@Param			timestamp__gte	query		string	false	"timestamp lower bound, inclusive (also: from)"
//	@Param			timestamp__lte	query		string	false	"timestamp upper bound, inclusive (also: to)"
//	@Param			application		query		string	false	"application id (admin keys)"
//	@Param			ordering		query		string	false	"timestamp or -timestamp (default)"	Enums(timestamp,-timestamp)	default(-timestamp)
//	@Param			limit			query		int		false	"page size, 1..1000 (default 100)"	minimum(1)	maximum(1000)	default(100)
//	@Param			cursor			query		string	false	"a page's cursor, as in its next and previous URLs"
//	@Success		200				{object}	EventList
//	@Failure		400				{object}	httpx.ErrorBody
//	@Failure		401				{object}	httpx.ErrorBody
//	@Failure		403				{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/events/ [get]
func (a *API) listEvents(c *gin.Context) {
	p := listParams(c, "session", "category", "name", "timestamp__gte", "from", "timestamp__lte", "to", "application", "ordering")
	f := query.EventFilter{
		Session:     p.uuid(c, "session"),
		Application: p.uuid(c, "application"),
		Category:    c.Query("category"),
		Name:        c.Query("name"),
		From:        p.time(c, "timestamp__gte", "from"),
		To:          p.time(c, "timestamp__lte", "to"),
		Order:       p.order(c),
	}
	page := p.page(c)
	if p.failed(c) {
		return
	}
	res, links, err := a.store.Events(c.Request.Context(), scopeOf(c), f, page)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, EventList{PageLinks: linksOf(c, links), Results: res})
}

// getEvent returns one event.
//
//	@Summary	Get an event
//	@Tags		events
//	@Produce	json
//	@Security	BearerKey
//	@Param		id	path		string	true	"event id"
//	@Success	200	{object}	query.Event	"with an ETag header for If-Match"
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403	{object}	httpx.ErrorBody	"the key lacks the scope this operation needs"
//	@Failure	404	{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router		/events/{id} [get]
func (a *API) getEvent(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	e, err := a.store.Event(c.Request.Context(), scopeOf(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", e.ETag())
	c.JSON(http.StatusOK, e)
}

// EventChange documents the fields PUT and PATCH accept.
type EventChange struct {
	Category  string         `json:"category" validate:"optional" example:"page interaction"`
	Name      string         `json:"name" validate:"optional" example:"pageview"`
	Data      map[string]any `json:"data" validate:"optional"`
	Timestamp string         `json:"timestamp" validate:"optional" example:"2021-01-01 09:15:27.243860"`
}

// putEvent replaces an event's fields.
//
//	@Summary		Replace an event
//	@Description	Sets category, name, data and timestamp, validated by the ingestion rules. The session cannot change. Send If-Match with the ETag you read to get 412 instead of overwriting a change made since; without it, concurrent edits still apply one after the other. Every change is audited (GET /events/{id}/audit).
//	@Tags			events
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			id			path		string		true	"event id"
//	@Param			If-Match	header		string		false	"ETag from a previous read"
//	@Param			event		body		EventChange	true	"the new fields"
//	@Success		200			{object}	query.Event
//	@Failure		400			{object}	httpx.ErrorBody
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403	{object}	httpx.ErrorBody	"the key lacks the scope this operation needs"
//	@Failure		404			{object}	httpx.ErrorBody
//	@Failure		412			{object}	httpx.ErrorBody
//	@Failure		413	{object}	httpx.ErrorBody	"the body is over the limit"
//	@Failure		415	{object}	httpx.ErrorBody	"unsupported_media_type: the body's Content-Type is not JSON"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/events/{id} [put]
func (a *API) putEvent(c *gin.Context) { a.change(c, a.store.Replace) }

// patchEvent changes some of an event's fields.
//
//	@Summary		Update an event partially
//	@Description	Sets the fields present (each replaced whole), validated by the ingestion rules. If-Match as for PUT.
//	@Tags			events
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			id			path		string		true	"event id"
//	@Param			If-Match	header		string		false	"ETag from a previous read"
//	@Param			event		body		EventChange	true	"the fields to change"
//	@Success		200			{object}	query.Event
//	@Failure		400			{object}	httpx.ErrorBody
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403	{object}	httpx.ErrorBody	"the key lacks the scope this operation needs"
//	@Failure		404			{object}	httpx.ErrorBody
//	@Failure		412			{object}	httpx.ErrorBody
//	@Failure		413	{object}	httpx.ErrorBody	"the body is over the limit"
//	@Failure		415	{object}	httpx.ErrorBody	"unsupported_media_type: the body's Content-Type is not JSON"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/events/{id} [patch]
func (a *API) patchEvent(c *gin.Context) { a.change(c, a.store.Patch) }

type changeFunc func(ctx context.Context, sc query.Scope, by query.Actor, id uuid.UUID, ifMatch string, doc map[string]json.RawMessage) (query.Event, error)

func (a *API) change(c *gin.Context, f changeFunc) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 1<<20))
	if err != nil {
		httpx.Abort(c, http.StatusRequestEntityTooLarge, "body_too_large", "request body is over 1 MiB")
		return
	}
	doc, reason := event.DecodeObject(body)
	if reason != nil {
		httpx.Abort(c, http.StatusBadRequest, string(reason.Code), reason.Message)
		return
	}
	e, err := f(c.Request.Context(), scopeOf(c), actorOf(c), id, c.GetHeader("If-Match"), doc)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("ETag", e.ETag())
	c.JSON(http.StatusOK, e)
}

// deleteEvent deletes an event.
//
//	@Summary		Delete an event
//	@Description	The deletion is audited (GET /events/{id}/audit), with the event as it was.
//	@Tags			events
//	@Security		BearerKey
//	@Param			id			path	string	true	"event id"
//	@Param			If-Match	header	string	false	"ETag from a previous read"
//	@Success		204
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403	{object}	httpx.ErrorBody	"the key lacks the scope this operation needs"
//	@Failure		404	{object}	httpx.ErrorBody
//	@Failure		412	{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/events/{id} [delete]
func (a *API) deleteEvent(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	if err := a.store.Delete(c.Request.Context(), scopeOf(c), actorOf(c), id, c.GetHeader("If-Match")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// listSessions lists sessions.
//
//	@Summary		List sessions
//	@Description	Newest first, with first/last event time and event count. Pages as Django REST framework's CursorPagination: GET "next" or "previous" (absolute URLs, same filters, ordering and limit; null at either end). Unknown parameters get 400 unknown_parameter.
//	@Tags			sessions
//	@Produce		json
//	@Security		BearerKey
//	@Param			created__gte	query		string	false	"created at or after (also: from)"
//	@Param			created__lte	query		string	false	"created at or before (also: to)"
//	@Param			application		query		string	false	"application id (admin keys)"
//	@Param			limit			query		int		false	"page size, 1..1000 (default 100)"	minimum(1)	maximum(1000)	default(100)
//	@Param			cursor			query		string	false	"a page's cursor, as in its next and previous URLs"
//	@Success		200				{object}	SessionList
//	@Failure		400				{object}	httpx.ErrorBody	"invalid_parameter, invalid_cursor, unknown_parameter"
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403	{object}	httpx.ErrorBody	"the key lacks the scope this operation needs"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/sessions/ [get]
func (a *API) listSessions(c *gin.Context) {
	p := listParams(c, "created__gte", "from", "created__lte", "to", "application")
	f := query.SessionFilter{
		Application: p.uuid(c, "application"),
		From:        p.time(c, "created__gte", "from"),
		To:          p.time(c, "created__lte", "to"),
	}
	page := p.page(c)
	if p.failed(c) {
		return
	}
	res, links, err := a.store.Sessions(c.Request.Context(), scopeOf(c), f, page)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, SessionList{PageLinks: linksOf(c, links), Results: res})
}

// getSession returns one session.
//
//	@Summary	Get a session
//	@Tags		sessions
//	@Produce	json
//	@Security	BearerKey
//	@Param		id	path		string	true	"session id"
//	@Success	200	{object}	query.Session
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403	{object}	httpx.ErrorBody	"the key lacks the scope this operation needs"
//	@Failure	404	{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router		/sessions/{id} [get]
func (a *API) getSession(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	s, err := a.store.Session(c.Request.Context(), scopeOf(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
}

// listErrors lists error records.
//
//	@Summary		List error records
//	@Description	Newest first. Each record has its reasons (code, JSON pointer, message), the stage that found them, the original payload (utf8 text, or base64 when it was not valid UTF-8), the payload's category and name when it is a JSON object, the schema version that applied, and its replay lineage (replayed_as, replay_of). Pages as Django REST framework's CursorPagination: GET "next" or "previous" (absolute URLs, same filters, ordering and limit; null at either end). Unknown parameters get 400 unknown_parameter.
//	@Tags			errors
//	@Produce		json
//	@Security		BearerKey
//	@Param			reason			query		string	false	"reason code, e.g. empty_data"
//	@Param			category		query		string	false	"the payload's category, exact"
//	@Param			name			query		string	false	"the payload's name, exact"
//	@Param			stage			query		string	false	"gateway, validator or writer"
//	@Param			session			query		string	false	"session id"
//	@Param			replayed		query		bool	false	"only records replayed (true) or not (false)"
//	@Param			detected__gte	query		string	false	"detected at or after (also: from)"
//	@Param			detected__lte	query		string	false	"detected at or before (also: to)"
//	@Param			application		query		string	false	"application id (admin keys)"
//	@Param			limit			query		int		false	"page size, 1..1000 (default 100)"	minimum(1)	maximum(1000)	default(100)
//	@Param			cursor			query		string	false	"a page's cursor, as in its next and previous URLs"
//	@Success		200				{object}	ErrorList
//	@Failure		400				{object}	httpx.ErrorBody	"invalid_parameter, invalid_cursor, unknown_parameter"
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403	{object}	httpx.ErrorBody	"the key lacks the scope this operation needs"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/errors/ [get]
func (a *API) listErrors(c *gin.Context) {
	p := listParams(c, errorFilters...)
	f := errorFilterOf(c, p) // errors.go
	page := p.page(c)
	if p.failed(c) {
		return
	}
	res, links, err := a.store.Errors(c.Request.Context(), scopeOf(c), f, page)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ErrorList{PageLinks: linksOf(c, links), Results: res})
}

// getError returns one error record.
//
//	@Summary	Get an error record
//	@Tags		errors
//	@Produce	json
//	@Security	BearerKey
//	@Param		id	path		string	true	"error id"
//	@Success	200	{object}	query.Error
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403	{object}	httpx.ErrorBody	"the key lacks the scope this operation needs"
//	@Failure	404	{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router		/errors/{id} [get]
func (a *API) getError(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	e, err := a.store.Error(c.Request.Context(), scopeOf(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

// readyz reports whether Postgres (and, for erasures, replays and
// schemas, Kafka) can be reached.
//
//	@Summary	Readiness probe
//	@Tags		health
//	@Produce	json
//	@Success	200	{object}	map[string]string
//	@Failure	503	{object}	httpx.ErrorBody
//	@Router		/readyz [get]
func (a *API) readyz(c *gin.Context) { a.ready(c) }

// actorOf is who makes a change: the caller's key and application.
func actorOf(c *gin.Context) query.Actor {
	p := httpx.PrincipalOf(c)
	return query.Actor{KeyID: p.KeyID, AppID: p.AppID}
}

// scopeOf is what the caller may see: an admin key sees every application.
func scopeOf(c *gin.Context) query.Scope {
	p := httpx.PrincipalOf(c)
	if p.Has(auth.ScopeAdmin) {
		return query.Scope{}
	}
	return query.Scope{AppID: p.AppID}
}

func pathID(c *gin.Context) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		httpx.Abort(c, http.StatusNotFound, "not_found", "no such resource: the id is not a UUID")
		return uuid.Nil, false
	}
	return id, true
}

// params parses query parameters, remembering the first problem: the
// parameter, the error code and the message.
type params struct {
	field, code, msg string
}

func (p *params) bad(field, msg string) {
	if p.field == "" {
		p.field, p.code, p.msg = field, "invalid_parameter", field+": "+msg
	}
}

func (p *params) failed(c *gin.Context) bool {
	if p.field == "" {
		return false
	}
	httpx.Abort(c, http.StatusBadRequest, p.code, p.msg)
	return true
}

func (p *params) uuid(c *gin.Context, name string) *uuid.UUID {
	s := c.Query(name)
	if s == "" {
		return nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		p.bad(name, "not a UUID")
		return nil
	}
	return &id
}

// time reads the first of names present, in any timestamp form events take.
func (p *params) time(c *gin.Context, names ...string) *time.Time {
	for _, name := range names {
		s := c.Query(name)
		if s == "" {
			continue
		}
		t, err := event.ParseTimestamp(s)
		if err != nil {
			p.bad(name, err.Error())
			return nil
		}
		return &t
	}
	return nil
}

func (p *params) order(c *gin.Context) query.Order {
	switch o := query.Order(c.Query("ordering")); o {
	case "":
		return query.Newest
	case query.Newest, query.Oldest:
		return o
	default:
		p.bad("ordering", "must be timestamp or -timestamp")
		return ""
	}
}
