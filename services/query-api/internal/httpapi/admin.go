package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/services/query-api/internal/admin"
)

// registerAdmin mounts the application and key administration routes behind
// the admin-scope middleware.
func (a *API) registerAdmin(r gin.IRoutes, adminScope gin.HandlerFunc) {
	httpx.Handle(r, http.MethodPost, "/admin/applications", adminScope, jsonBody, a.createApplication)
	httpx.Handle(r, http.MethodGet, "/admin/applications", adminScope, a.listApplications)
	httpx.Handle(r, http.MethodGet, "/admin/applications/:id", adminScope, a.getApplication)
	httpx.Handle(r, http.MethodPatch, "/admin/applications/:id", adminScope, jsonBody, a.patchApplication)
	httpx.Handle(r, http.MethodPost, "/admin/applications/:id/disable", adminScope, a.disableApplication)
	httpx.Handle(r, http.MethodPost, "/admin/applications/:id/enable", adminScope, a.enableApplication)
	httpx.Handle(r, http.MethodPost, "/admin/applications/:id/keys", adminScope, jsonBody, a.createKey)
	httpx.Handle(r, http.MethodGet, "/admin/applications/:id/keys", adminScope, a.listKeys)
	httpx.Handle(r, http.MethodPost, "/admin/keys/:id/rotate", adminScope, jsonBody, a.rotateKey)
	httpx.Handle(r, http.MethodPost, "/admin/keys/:id/revoke", adminScope, a.revokeKey)
}

// ApplicationRequest is the body that creates an application.
type ApplicationRequest struct {
	Name           string   `json:"name" example:"web shop"`
	AllowedOrigins []string `json:"allowed_origins" validate:"optional" example:"https://shop.example"`
	RateLimit      float64  `json:"rate_limit" validate:"optional" example:"50"`
	RateBurst      int      `json:"rate_burst" validate:"optional" example:"100"`
	StrictSessions bool     `json:"strict_sessions" validate:"optional"`
	StrictTypes    bool     `json:"strict_types" validate:"optional"`
}

// ApplicationPatch is the body that changes an application: the fields
// present are set, the others kept.
type ApplicationPatch struct {
	Name           *string   `json:"name" validate:"optional" example:"web shop"`
	AllowedOrigins *[]string `json:"allowed_origins" validate:"optional" example:"https://shop.example"`
	RateLimit      *float64  `json:"rate_limit" validate:"optional" example:"50"`
	RateBurst      *int      `json:"rate_burst" validate:"optional" example:"100"`
	StrictSessions *bool     `json:"strict_sessions" validate:"optional"`
	StrictTypes    *bool     `json:"strict_types" validate:"optional"`
}

// KeyRequest is the body that creates a key.
type KeyRequest struct {
	Scopes []auth.Scope `json:"scopes" swaggertype:"array,string" enums:"write,read,admin" example:"write"`
	Label  string       `json:"label" validate:"optional" example:"checkout page"`
}

// RotateRequest is the (optional) body of a rotation.
type RotateRequest struct {
	Overlap string `json:"overlap" validate:"optional" example:"24h"`
}

// ApplicationList is a page of applications.
type ApplicationList struct {
	PageLinks
	Results []admin.Application `json:"results"`
}

// KeyList is an application's keys, without key material (never paginated:
// next and previous are always null).
type KeyList struct {
	PageLinks
	Results []admin.Key `json:"results"`
}

// createApplication creates an application.
//
//	@Summary		Create an application
//	@Description	An application is a tenant: its keys ingest and read only its own events. allowed_origins are browser origins ("*" or scheme://host[:port]) allowed to send events with its write keys; rate_limit (events per second per key) and rate_burst of 0 mean the gateway's defaults; strict_sessions makes events of unregistered sessions errors; strict_types makes events of a type without a JSON Schema (see /admin/schemas) errors (unknown_event_type).
//	@Tags			admin
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			application	body		ApplicationRequest	true	"the application"
//	@Success		201			{object}	admin.Application
//	@Failure		400			{object}	httpx.ErrorBody	"invalid_body, invalid_name, invalid_origin, invalid_rate"
//	@Failure		401			{object}	httpx.ErrorBody
//	@Failure		403			{object}	httpx.ErrorBody
//	@Failure		413	{object}	httpx.ErrorBody	"the body is over the limit"
//	@Failure		415	{object}	httpx.ErrorBody	"unsupported_media_type: the body's Content-Type is not JSON"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/applications/ [post]
func (a *API) createApplication(c *gin.Context) {
	var req ApplicationRequest
	if !decodeBody(c, &req, true) {
		return
	}
	app, err := a.admins.CreateApplication(c.Request.Context(), admin.NewApplication{Name: req.Name, Settings: admin.Settings{
		AllowedOrigins: req.AllowedOrigins, RateLimit: req.RateLimit, RateBurst: req.RateBurst, StrictSessions: req.StrictSessions, StrictTypes: req.StrictTypes}})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, app)
}

// listApplications lists applications.
//
//	@Summary		List applications
//	@Description	Oldest first, disabled ones included. Pages as Django REST framework's CursorPagination: GET "next" or "previous" (absolute URLs, same filters, ordering and limit; null at either end). Unknown parameters get 400 unknown_parameter.
//	@Tags			admin
//	@Produce		json
//	@Security		BearerKey
//	@Param			limit	query		int		false	"page size, 1..1000 (default 100)"	minimum(1)	maximum(1000)	default(100)
//	@Param			cursor	query		string	false	"a page's cursor, as in its next and previous URLs"
//	@Success		200		{object}	ApplicationList
//	@Failure		400		{object}	httpx.ErrorBody	"invalid_parameter, invalid_cursor, unknown_parameter"
//	@Failure		401		{object}	httpx.ErrorBody
//	@Failure		403		{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/applications/ [get]
func (a *API) listApplications(c *gin.Context) {
	p := listParams(c)
	page := p.page(c)
	if p.failed(c) {
		return
	}
	apps, links, err := a.admins.Applications(c.Request.Context(), page)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ApplicationList{PageLinks: linksOf(c, links), Results: apps})
}

// getApplication returns one application.
//
//	@Summary	Get an application
//	@Tags		admin
//	@Produce	json
//	@Security	BearerKey
//	@Param		id	path		string	true	"application id"
//	@Success	200	{object}	admin.Application
//	@Failure	401	{object}	httpx.ErrorBody
//	@Failure	403	{object}	httpx.ErrorBody
//	@Failure	404	{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router		/admin/applications/{id} [get]
func (a *API) getApplication(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	app, err := a.admins.Application(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, app)
}

// patchApplication changes an application's name or settings.
//
//	@Summary		Update an application
//	@Description	Sets the fields present (allowed_origins is replaced whole); the result is checked like a new application. Keys pick up new settings within the services' key cache TTL.
//	@Tags			admin
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			id			path		string				true	"application id"
//	@Param			application	body		ApplicationPatch	true	"the fields to change"
//	@Success		200			{object}	admin.Application
//	@Failure		400			{object}	httpx.ErrorBody	"invalid_body, invalid_name, invalid_origin, invalid_rate"
//	@Failure		401			{object}	httpx.ErrorBody
//	@Failure		403			{object}	httpx.ErrorBody
//	@Failure		404			{object}	httpx.ErrorBody
//	@Failure		413	{object}	httpx.ErrorBody	"the body is over the limit"
//	@Failure		415	{object}	httpx.ErrorBody	"unsupported_media_type: the body's Content-Type is not JSON"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/applications/{id} [patch]
func (a *API) patchApplication(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var req ApplicationPatch
	if !decodeBody(c, &req, true) {
		return
	}
	app, err := a.admins.UpdateApplication(c.Request.Context(), id, admin.ApplicationChange{Name: req.Name,
		AllowedOrigins: req.AllowedOrigins, RateLimit: req.RateLimit, RateBurst: req.RateBurst, StrictSessions: req.StrictSessions, StrictTypes: req.StrictTypes})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, app)
}

// disableApplication disables an application.
//
//	@Summary		Disable an application
//	@Description	Every key of the application stops working within the key cache TTL (EYE_KEY_CACHE_TTL, 5 s by default); its data stays. Disabling a disabled application changes nothing. A key cannot disable its own application (409 own_application).
//	@Tags			admin
//	@Produce		json
//	@Security		BearerKey
//	@Param			id	path		string	true	"application id"
//	@Success		200	{object}	admin.Application
//	@Failure		401	{object}	httpx.ErrorBody
//	@Failure		403	{object}	httpx.ErrorBody
//	@Failure		404	{object}	httpx.ErrorBody
//	@Failure		409	{object}	httpx.ErrorBody	"own_application"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/applications/{id}/disable [post]
func (a *API) disableApplication(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	app, err := a.admins.Disable(c.Request.Context(), id, httpx.PrincipalOf(c).AppID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, app)
}

// enableApplication enables an application again.
//
//	@Summary		Enable an application
//	@Description	Its keys that are neither revoked nor expired work again.
//	@Tags			admin
//	@Produce		json
//	@Security		BearerKey
//	@Param			id	path		string	true	"application id"
//	@Success		200	{object}	admin.Application
//	@Failure		401	{object}	httpx.ErrorBody
//	@Failure		403	{object}	httpx.ErrorBody
//	@Failure		404	{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/applications/{id}/enable [post]
func (a *API) enableApplication(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	app, err := a.admins.Enable(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, app)
}

// createKey creates a key for an application.
//
//	@Summary		Create an API key
//	@Description	scopes: ["write"] (ingest; shipped to clients, so it cannot be combined), ["read"] (query the application's own data), ["read","admin"] (edit events, see every application, administer). The prefix names the most powerful scope: eye_w_, eye_r_, eye_a_. The key is in this answer only: store it now; The Eye keeps its SHA-256 hash.
//	@Tags			admin
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			id	path		string		true	"application id"
//	@Param			key	body		KeyRequest	true	"scopes and label"
//	@Success		201	{object}	admin.CreatedKey
//	@Failure		400	{object}	httpx.ErrorBody	"invalid_body, invalid_scope, invalid_label"
//	@Failure		401	{object}	httpx.ErrorBody
//	@Failure		403	{object}	httpx.ErrorBody
//	@Failure		404	{object}	httpx.ErrorBody
//	@Failure		413	{object}	httpx.ErrorBody	"the body is over the limit"
//	@Failure		415	{object}	httpx.ErrorBody	"unsupported_media_type: the body's Content-Type is not JSON"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/applications/{id}/keys [post]
func (a *API) createKey(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var req KeyRequest
	if !decodeBody(c, &req, true) {
		return
	}
	k, err := a.admins.CreateKey(c.Request.Context(), id, admin.NewKey{Scopes: req.Scopes, Label: req.Label})
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, k)
}

// listKeys lists an application's keys.
//
//	@Summary		List an application's API keys
//	@Description	Oldest first, revoked and expired ones included, never the key material: identify a key by its prefix. One page: next and previous are null. It takes no query parameters (400 unknown_parameter).
//	@Tags			admin
//	@Produce		json
//	@Security		BearerKey
//	@Param			id	path		string	true	"application id"
//	@Success		200	{object}	KeyList
//	@Failure		400	{object}	httpx.ErrorBody	"unknown_parameter"
//	@Failure		401	{object}	httpx.ErrorBody
//	@Failure		403	{object}	httpx.ErrorBody
//	@Failure		404	{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/applications/{id}/keys [get]
func (a *API) listKeys(c *gin.Context) {
	id, ok := pathID(c)
	if !ok || knownParams(c).failed(c) {
		return
	}
	keys, err := a.admins.Keys(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, KeyList{Results: keys})
}

// rotateKey replaces a key with a new one.
//
//	@Summary		Rotate an API key
//	@Description	Creates a key with the same application, scopes and label (shown in this answer only) and makes the old key expire after the overlap (default EYE_KEY_ROTATION_OVERLAP, 24h; "0s" ends it at once). Both work during the overlap. An old key already expiring sooner keeps its expiry. Revoked or expired keys cannot be rotated (409).
//	@Tags			admin
//	@Accept			json
//	@Produce		json
//	@Security		BearerKey
//	@Param			id		path		string			true	"key id"
//	@Param			rotate	body		RotateRequest	false	"overlap, a Go duration"
//	@Success		201		{object}	admin.RotatedKey
//	@Failure		400		{object}	httpx.ErrorBody	"invalid_body, invalid_overlap"
//	@Failure		401		{object}	httpx.ErrorBody
//	@Failure		403		{object}	httpx.ErrorBody
//	@Failure		404		{object}	httpx.ErrorBody
//	@Failure		409		{object}	httpx.ErrorBody	"key_revoked, key_expired"
//	@Failure		413	{object}	httpx.ErrorBody	"the body is over the limit"
//	@Failure		415	{object}	httpx.ErrorBody	"unsupported_media_type: the body's Content-Type is not JSON"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/keys/{id}/rotate [post]
func (a *API) rotateKey(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	var req RotateRequest
	if !decodeBody(c, &req, false) {
		return
	}
	k, err := a.admins.RotateKey(c.Request.Context(), id, req.Overlap)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, k)
}

// revokeKey revokes a key.
//
//	@Summary		Revoke an API key
//	@Description	The key stops working within the services' key cache TTL (EYE_KEY_CACHE_TTL, 5 s by default). Revoking a revoked key changes nothing.
//	@Tags			admin
//	@Produce		json
//	@Security		BearerKey
//	@Param			id	path		string	true	"key id"
//	@Success		200	{object}	admin.Key
//	@Failure		401	{object}	httpx.ErrorBody
//	@Failure		403	{object}	httpx.ErrorBody
//	@Failure		404	{object}	httpx.ErrorBody
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/admin/keys/{id}/revoke [post]
func (a *API) revokeKey(c *gin.Context) {
	id, ok := pathID(c)
	if !ok {
		return
	}
	k, err := a.admins.RevokeKey(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, k)
}

// maxAdminBody bounds an admin request body.
const maxAdminBody = 64 << 10

// decodeBody reads one JSON object into dst, refusing unknown fields; an
// empty body is accepted unless required. It answers the error itself.
func decodeBody(c *gin.Context, dst any, required bool) bool {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxAdminBody))
	if err != nil {
		httpx.Abort(c, http.StatusRequestEntityTooLarge, "body_too_large", "request body is over 64 KiB")
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if required {
			httpx.Abort(c, http.StatusBadRequest, "invalid_body", "a JSON object is required")
			return false
		}
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		httpx.Abort(c, http.StatusBadRequest, "invalid_body", "the body is not the expected JSON object: "+err.Error())
		return false
	}
	if dec.More() {
		httpx.Abort(c, http.StatusBadRequest, "invalid_body", "the body holds more than one JSON value")
		return false
	}
	return true
}
