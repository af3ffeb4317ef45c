package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/services/query-api/internal/query"
)

// AuditList is a page of an event's audit entries.
type AuditList struct {
	PageLinks
	Results []query.AuditEntry `json:"results"`
}

// sessionTimeline lists a session's events in the order they happened.
//
//	@Summary		A session's timeline
//	@Description	The session's events oldest first (by timestamp, then id). Pages as Django REST framework's CursorPagination: GET "next" or "previous" (absolute URLs, same filters, ordering and limit; null at either end). Unknown parameters get 400 unknown_parameter. A read key sees only its own application's sessions (404 otherwise).
//	@Tags			sessions
//	@Produce		json
//	@Security		BearerKey
//	@Param			id		path		string	true	"session id"
//	@Param			limit	query		int		false	"page size, 1..1000 (default 100)"	minimum(1)	maximum(1000)	default(100)
//	@Param			cursor	query		string	false	"a page's cursor, as in its next and previous URLs"
//	@Success		200		{object}	EventList
//	@Failure		400		{object}	httpx.ErrorBody	"invalid_parameter, invalid_cursor, unknown_parameter"
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403	{object}	httpx.ErrorBody	"the key lacks the scope this operation needs"
//	@Failure		404		{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/sessions/{id}/events [get]
func (a *API) sessionTimeline(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	p := listParams(c)
	page := p.page(c)
	if p.failed(c) {
		return
	}
	res, links, err := a.store.Timeline(c.Request.Context(), scopeOf(c), id, page)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, EventList{PageLinks: linksOf(c, links), Results: res})
}

// eraseSession erases a session.
//
//	@Summary		Erase a session
//	@Description	Removes the session, its events, its error records and the audit of its events, after publishing a tombstone (key = session id) on the erasures topic so that consumers of the topics erase their copies too (docs/topics.md). The tombstone is published first: 503 means nothing was deleted, and any failure is to be retried — a repeated tombstone is harmless. A session nothing is known of is still announced (all counts 0). Admin keys only.
//	@Tags			sessions
//	@Produce		json
//	@Security		BearerKey
//	@Param			id	path		string	true	"session id"
//	@Success		200	{object}	query.Erasure
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403	{object}	httpx.ErrorBody
//	@Failure		404	{object}	httpx.ErrorBody	"no such resource (or not visible to this key)"
//	@Failure		503	{object}	httpx.ErrorBody
//	@Router			/sessions/{id} [delete]
func (a *API) eraseSession(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	res, err := a.eraser.Erase(c.Request.Context(), actorOf(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// eventAudit lists the changes made to an event.
//
//	@Summary		An event's audit
//	@Description	Every change made through PUT, PATCH and DELETE, oldest first: who (the key and its application), when, and the event before and after (after is null for a deletion). Still available after the event was deleted; erased with its session. Admin keys only. Pages as Django REST framework's CursorPagination: GET "next" or "previous" (absolute URLs, same filters, ordering and limit; null at either end). Unknown parameters get 400 unknown_parameter.
//	@Tags			events
//	@Produce		json
//	@Security		BearerKey
//	@Param			id		path		string	true	"event id"
//	@Param			limit	query		int		false	"page size, 1..1000 (default 100)"	minimum(1)	maximum(1000)	default(100)
//	@Param			cursor	query		string	false	"a page's cursor, as in its next and previous URLs"
//	@Success		200		{object}	AuditList
//	@Failure		400		{object}	httpx.ErrorBody	"invalid_parameter, invalid_cursor, unknown_parameter"
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403		{object}	httpx.ErrorBody
//	@Failure		404		{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/events/{id}/audit [get]
func (a *API) eventAudit(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	p := listParams(c)
	page := p.page(c)
	if p.failed(c) {
		return
	}
	res, links, err := a.store.Audit(c.Request.Context(), id, page)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, AuditList{PageLinks: linksOf(c, links), Results: res})
}
