package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// WithReplayer serves POST /errors/{id}/replay and POST /errors/replay
// with r.
func WithReplayer(r *query.Replayer) Option { return func(a *API) { a.replayer = r } }

// registerErrors mounts the error summary and, with a replayer, the
// replays (admin scope).
func (a *API) registerErrors(r *gin.Engine, read, admin gin.HandlerFunc) {
	httpx.Handle(r, http.MethodGet, "/errors/summary", read, a.errorSummary)
	if a.replayer != nil {
		httpx.Handle(r, http.MethodPost, "/errors/replay", admin, a.replayErrors)
		httpx.Handle(r, http.MethodPost, "/errors/:id/replay", admin, jsonBody, a.replayError)
	}
}

// errorFilters are the parameters errorFilterOf reads.
var errorFilters = []string{"application", "session", "reason", "stage", "category", "name", "replayed", "detected__gte", "from", "detected__lte", "to"}

// errorFilterOf reads the error filters the list, the summary and the bulk
// replay share.
func errorFilterOf(c *gin.Context, p *params) query.ErrorFilter {
	return query.ErrorFilter{
		Application: p.uuid(c, "application"),
		Session:     p.uuid(c, "session"),
		Reason:      c.Query("reason"),
		Stage:       c.Query("stage"),
		Category:    c.Query("category"),
		Name:        c.Query("name"),
		Replayed:    p.flag(c, "replayed"),
		From:        p.time(c, "detected__gte", "from"),
		To:          p.time(c, "detected__lte", "to"),
	}
}

// flag reads a boolean parameter; nil when absent.
func (p *params) flag(c *gin.Context, name string) *bool {
	s := c.Query(name)
	if s == "" {
		return nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.bad(name, "must be true or false")
		return nil
	}
	return &b
}

// errorSummary groups error records.
//
//	@Summary		Summarise error records
//	@Description	Groups the error records matching the filters (the list's) by reason, category, name, schema version and/or stage, with each group's count and first and last detection time, most frequent first (at most 1000 groups; "truncated" says when there were more). A record with several reasons counts once in the group of each. Category and name are the payload's when it is a JSON object (null otherwise). A read key sees its own application's records; an admin key sees all and may filter by application.
//	@Tags			errors
//	@Produce		json
//	@Security		BearerKey
//	@Param			by				query		string	false	"comma-separated dimensions: reason (default), category, name, schema_version, stage"
//	@Param			reason			query		string	false	"reason code, e.g. empty_data"
//	@Param			category		query		string	false	"the payload's category, exact"
//	@Param			name			query		string	false	"the payload's name, exact"
//	@Param			stage			query		string	false	"gateway, validator or writer"
//	@Param			session			query		string	false	"session id"
//	@Param			replayed		query		bool	false	"only records replayed (true) or not (false)"
//	@Param			detected__gte	query		string	false	"detected at or after (also: from)"
//	@Param			detected__lte	query		string	false	"detected at or before (also: to)"
//	@Param			application		query		string	false	"application id (admin keys)"
//	@Success		200				{object}	query.ErrorSummary
//	@Failure		400				{object}	httpx.ErrorBody
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403	{object}	httpx.ErrorBody	"the key lacks the scope this operation needs"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/errors/summary [get]
func (a *API) errorSummary(c *gin.Context) {
	var p params
	f := errorFilterOf(c, &p)
	if p.failed(c) {
		return
	}
	var by []string
	if s := c.Query("by"); s != "" {
		for _, d := range strings.Split(s, ",") {
			by = append(by, strings.TrimSpace(d))
		}
	}
	res, err := a.store.Summary(c.Request.Context(), scopeOf(c), f, by)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// ReplayRequest is the optional body of a single replay.
type ReplayRequest struct {
	// Payload is the corrected event document, replayed instead of the
	// original payload.
	Payload json.RawMessage `json:"payload" validate:"optional" swaggertype:"object"`
}

// replayError replays one error record.
//
//	@Summary		Replay an error record
//	@Description	Sends the record's event back through the pipeline: a raw event on the raw topic, as the gateway writes it (key = the session id, the event id the record was about, the original received time), with the original payload or the corrected one in the body. The event is first checked as the validator would (rules, the published per-type schemas, strict types): one that still fails is not published (422, with the reasons). Published (202), the record shows replayed_as (the event id) and the stored event replayed_from (this record). Replaying again never stores the event twice (same event id). If the replayed event fails a check only later stages make (the writer's session checks), a new error record appears with replay_of set to this one. With dry_run=true nothing is published: the answer says whether it would pass and why not. Admin keys only.
//	@Tags			errors
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			id		path		string			true	"error id"
//	@Param			dry_run	query		bool			false	"only check, publish nothing"
//	@Param			body	body		ReplayRequest	false	"a corrected event; without it the original payload is replayed"
//	@Success		200		{object}	query.ReplayReport	"dry run"
//	@Success		202		{object}	query.ReplayReport	"published"
//	@Failure		400		{object}	httpx.ErrorBody
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403		{object}	httpx.ErrorBody
//	@Failure		404		{object}	httpx.ErrorBody
//	@Failure		413	{object}	httpx.ErrorBody	"the body is over the limit"
//	@Failure		415	{object}	httpx.ErrorBody	"unsupported_media_type: the body's Content-Type is not JSON"
//	@Failure		422		{object}	httpx.ErrorBody	"the event still fails: nothing published"
//	@Failure		503		{object}	httpx.ErrorBody	"Kafka did not acknowledge: retry"
//	@Router			/errors/{id}/replay [post]
func (a *API) replayError(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var p params
	dry := p.flag(c, "dry_run")
	if p.failed(c) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 1<<20))
	if err != nil {
		httpx.Abort(c, http.StatusRequestEntityTooLarge, "body_too_large", "request body is over 1 MiB")
		return
	}
	var req ReplayRequest
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			httpx.Abort(c, http.StatusBadRequest, "invalid_body", `the body must be {"payload": {…the corrected event…}} or empty: `+err.Error())
			return
		}
	}
	if string(req.Payload) == "null" {
		req.Payload = nil
	}
	res, err := a.replayer.ReplayOne(c.Request.Context(), scopeOf(c), id, req.Payload, dry != nil && *dry)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(replayStatus(res), res)
}

// replayErrors replays the error records matching filters.
//
//	@Summary		Replay error records in bulk
//	@Description	Replays, oldest first, up to limit error records matching the filters (the list's), each with its original payload, as POST /errors/{id}/replay does: the ones that pass the validator's checks now are published, the others are counted and their reasons grouped. Without the replayed parameter only records not replayed yet are taken, so repeating the call works through a backlog ("more" says whether records remain beyond the limit). With dry_run=true nothing is published: the answer says how many would pass and why the others would not. Admin keys only.
//	@Tags			errors
//	@Produce		json
//	@Security		BearerKey
//	@Param			dry_run			query		bool	false	"only check, publish nothing"
//	@Param			limit			query		int		false	"records to examine, 1..10000 (default 1000)"	minimum(1)	maximum(10000)	default(1000)
//	@Param			reason			query		string	false	"reason code, e.g. schema_violation"
//	@Param			category		query		string	false	"the payload's category, exact"
//	@Param			name			query		string	false	"the payload's name, exact"
//	@Param			stage			query		string	false	"gateway, validator or writer"
//	@Param			session			query		string	false	"session id"
//	@Param			replayed		query		bool	false	"records replayed before (true) or not (false, the default)"
//	@Param			detected__gte	query		string	false	"detected at or after (also: from)"
//	@Param			detected__lte	query		string	false	"detected at or before (also: to)"
//	@Param			application		query		string	false	"application id"
//	@Success		200				{object}	query.ReplayReport	"dry run"
//	@Success		202				{object}	query.ReplayReport	"published"
//	@Failure		400				{object}	httpx.ErrorBody
//	@Failure		401	{object}	httpx.ErrorBody	"no key, or an unknown, revoked or expired one"
//	@Failure		403				{object}	httpx.ErrorBody
//	@Failure		503				{object}	httpx.ErrorBody	"Kafka did not acknowledge: retry (records acknowledged before show replayed_as)"
//	@Router			/errors/replay [post]
func (a *API) replayErrors(c *gin.Context) {
	var p params
	f := errorFilterOf(c, &p)
	dry := p.flag(c, "dry_run")
	limit := query.DefaultReplayLimit
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > query.MaxReplayLimit {
			p.bad("limit", "must be 1.."+strconv.Itoa(query.MaxReplayLimit))
		}
		limit = n
	}
	if p.failed(c) {
		return
	}
	if f.Replayed == nil {
		f.Replayed = new(bool) // not replayed yet
	}
	res, err := a.replayer.ReplayMatching(c.Request.Context(), scopeOf(c), f, limit, dry != nil && *dry)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(replayStatus(res), res)
}

// replayStatus is 200 for a dry run, 202 for a replay (the pipeline
// processes the published events asynchronously).
func replayStatus(r query.ReplayReport) int {
	if r.DryRun {
		return http.StatusOK
	}
	return http.StatusAccepted
}
