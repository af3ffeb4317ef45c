package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/services/query-api/internal/schemas"
)

// schemaAPI serves /admin/schemas.
type schemaAPI struct {
	store *schemas.Service
	pub   *schemas.Publisher
	check int // stored events a new version is checked against
}

// DefaultSchemaCheck is how many of a type's most recent stored events a
// new schema version is checked against unless WithSchemas is told.
const DefaultSchemaCheck = 1000

// WithSchemas serves the schema registry under /admin/schemas: versions are
// stored in store and published through pub, each first checked against
// the last check stored events of its type (DefaultSchemaCheck when 0 or
// less).
func WithSchemas(store *schemas.Service, pub *schemas.Publisher, check int) Option {
	if check <= 0 {
		check = DefaultSchemaCheck
	}
	return func(a *API) { a.schemas = &schemaAPI{store: store, pub: pub, check: check} }
}

// registerSchemas mounts the schema routes behind the admin-scope
// middleware, when the API has a schema store.
func (a *API) registerSchemas(r gin.IRoutes, adminScope gin.HandlerFunc) {
	if a.schemas == nil {
		return
	}
	httpx.Handle(r, http.MethodPost, "/admin/schemas", adminScope, jsonBody, a.schemas.add)
	httpx.Handle(r, http.MethodGet, "/admin/schemas", adminScope, a.schemas.list)
	httpx.Handle(r, http.MethodGet, "/admin/schemas/:category/:name/:version", adminScope, a.schemas.get)
}

// SchemaRequest is the body that adds a schema version.
type SchemaRequest struct {
	Category string `json:"category" minLength:"1" maxLength:"255" example:"page interaction"`
	Name     string `json:"name" minLength:"1" maxLength:"255" example:"pageview"`
	// Schema is a JSON Schema (draft 2020-12 unless it says otherwise with
	// $schema) for the events' data object.
	Schema json.RawMessage `json:"schema"`
}

// SchemaCheckFailure answers a version refused because it rejects stored
// events of its type: the error and what the check found.
type SchemaCheckFailure struct {
	Error httpx.ErrorDetail `json:"error"`
	Check schemas.Impact    `json:"check"`
}

// SchemaList is a page of schema versions.
type SchemaList struct {
	PageLinks
	Results []schemas.Record `json:"results"`
}

// maxSchemaBody bounds the body that adds a schema.
const maxSchemaBody = 256 << 10

// add stores a new schema version and publishes it to the validators.
//
//	@Summary		Add a schema version
//	@Description	Stores schema as the next version (1, 2, …) of the event type category/name; versions are immutable. The schema validates the data object of the type's events: an event names the version it follows with "schema_version", otherwise the latest applies, and data that fails it becomes an error record with reason schema_violation (JSON pointer of the failing field). The schema is compiled first: one that does not compile, or references another document (only "#/…" references inside it work), gets 400 invalid_schema with the compiler's message. A schema that accepts no event (false, {"not": {}}, an empty enum, a type that excludes objects, a const contradicting its type, …) gets 422 schema_accepts_nothing, even with force. The version is then checked against the type's most recent stored events (EYE_SCHEMA_CHECK_EVENTS, default 1000): with dry_run=true the answer is 200 with the check (how many would fail, with samples) and nothing is stored; a version that some of them fail gets 409 schema_rejects_events with the same check, unless force=true. Once stored it is published to the validators, which apply it within seconds; published_at is null if Kafka did not acknowledge in time, and it is then published again every few seconds.
//	@Tags			schemas
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			schema	body		SchemaRequest	true	"type and JSON Schema"
//	@Param			dry_run	query		bool			false	"check against stored events only: store nothing, answer 200 with the check"
//	@Param			force	query		bool			false	"store even if some checked events fail the new version"
//	@Success		200		{object}	schemas.Impact	"dry run: what the version would do to the type's recent events"
//	@Success		201		{object}	schemas.Record	"with a Location header"
//	@Failure		400		{object}	httpx.ErrorBody	"invalid_body, invalid_schema, invalid_parameter"
//	@Failure		401		{object}	httpx.ErrorBody
//	@Failure		403		{object}	httpx.ErrorBody
//	@Failure		409		{object}	SchemaCheckFailure	"schema_rejects_events: some of the type's recent events fail it (force=true to store anyway)"
//	@Failure		413		{object}	httpx.ErrorBody
//	@Failure		415		{object}	httpx.ErrorBody	"unsupported_media_type: the body's Content-Type is not JSON"
//	@Failure		422		{object}	httpx.ErrorBody	"schema_accepts_nothing: no event's data can satisfy the schema"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/schemas/ [post]
func (s *schemaAPI) add(c *gin.Context) {
	guard := schemas.Guard{Check: s.check}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"dry_run", &guard.DryRun}, {"force", &guard.Force}} {
		if v := c.Query(f.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				httpx.Abort(c, http.StatusBadRequest, "invalid_parameter", f.name+": must be true or false")
				return
			}
			*f.dst = b
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxSchemaBody))
	if err != nil {
		httpx.Abort(c, http.StatusRequestEntityTooLarge, "body_too_large", "request body is over 256 KiB")
		return
	}
	var req SchemaRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		httpx.Abort(c, http.StatusBadRequest, "invalid_body", `the body must be one JSON object {"category", "name", "schema"}`)
		return
	}
	if len(req.Schema) == 0 || string(req.Schema) == "null" {
		httpx.Abort(c, http.StatusBadRequest, "invalid_body", "schema is required")
		return
	}
	ctx := c.Request.Context()
	rec, impact, err := s.store.Add(ctx, req.Category, req.Name, req.Schema, httpx.PrincipalOf(c).KeyID, guard)
	switch {
	case errors.Is(err, schemas.ErrBreaksEvents):
		c.AbortWithStatusJSON(http.StatusConflict, SchemaCheckFailure{
			Error: httpx.ErrorDetail{Code: "schema_rejects_events", Message: fmt.Sprintf(
				"%d of the type's last %d stored events fail this schema: events like them would become errors; check with dry_run=true, or store it anyway with force=true",
				impact.Failing, impact.Checked)},
			Check: impact,
		})
		return
	case err != nil:
		fail(c, err)
		return
	case guard.DryRun:
		c.JSON(http.StatusOK, impact)
		return
	}
	// Stored: the answer is 201 whatever Kafka says; the Publisher retries.
	if err := s.pub.Publish(ctx, rec); err != nil {
		_ = c.Error(err) // logged with the request
	} else if got, err := s.store.Get(ctx, rec.Category, rec.Name, rec.Version); err == nil {
		rec = got
	}
	c.Header("Location", "/admin/schemas/"+url.PathEscape(rec.Category)+"/"+url.PathEscape(rec.Name)+"/"+strconv.Itoa(rec.Version))
	c.JSON(http.StatusCreated, rec)
}

// list lists schema versions.
//
//	@Summary		List schema versions
//	@Description	By category, name, then version, with their JSON Schemas. Pages as Django REST framework's CursorPagination: GET "next" or "previous" (absolute URLs, same filters, ordering and limit; null at either end). Unknown parameters get 400 unknown_parameter.
//	@Tags			schemas
//	@Produce		json
//	@Security		BearerKey
//	@Param			category	query		string	false	"category, exact"
//	@Param			name		query		string	false	"name, exact"
//	@Param			limit		query		int		false	"page size, 1..1000 (default 100)"	minimum(1)	maximum(1000)	default(100)
//	@Param			cursor		query		string	false	"a page's cursor, as in its next and previous URLs"
//	@Success		200			{object}	SchemaList
//	@Failure		400			{object}	httpx.ErrorBody	"invalid_parameter, invalid_cursor, unknown_parameter"
//	@Failure		401			{object}	httpx.ErrorBody
//	@Failure		403			{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/schemas/ [get]
func (s *schemaAPI) list(c *gin.Context) {
	p := listParams(c, "category", "name")
	page := p.page(c)
	if p.failed(c) {
		return
	}
	recs, links, err := s.store.List(c.Request.Context(), schemas.Filter{Category: c.Query("category"), Name: c.Query("name")}, page)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, SchemaList{PageLinks: linksOf(c, links), Results: recs})
}

// get returns one schema version.
//
//	@Summary		Get a schema version
//	@Description	Category and name are path segments, percent-encoded ("page%20interaction"). A category or name containing "/" cannot be addressed here: list with ?category=&name= instead.
//	@Tags			schemas
//	@Produce		json
//	@Security		BearerKey
//	@Param			category	path		string	true	"category"
//	@Param			name		path		string	true	"name"
//	@Param			version		path		int		true	"version"
//	@Success		200			{object}	schemas.Record
//	@Failure		400	{object}	httpx.ErrorBody	"a parameter or the body is invalid (the code and message say which)"
//	@Failure		401			{object}	httpx.ErrorBody
//	@Failure		403			{object}	httpx.ErrorBody
//	@Failure		404			{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/schemas/{category}/{name}/{version} [get]
func (s *schemaAPI) get(c *gin.Context) {
	v, err := strconv.Atoi(c.Param("version"))
	if err != nil || v < 1 {
		httpx.Abort(c, http.StatusNotFound, "not_found", "no such schema version: the version is not a positive integer")
		return
	}
	rec, err := s.store.Get(c.Request.Context(), c.Param("category"), c.Param("name"), v)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, rec)
}
