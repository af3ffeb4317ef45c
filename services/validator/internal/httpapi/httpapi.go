// Package httpapi is the validator's HTTP surface: readiness and the
// schema versions this instance applies (metrics come with the engine,
// pkg/httpx).
package httpapi

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
)

// API serves the validator's routes.
type API struct {
	schemas http.Handler
	ready   gin.HandlerFunc
}

// New returns the API listing schemas (a schema.Registry) and answering
// readiness with ready.
func New(schemas http.Handler, ready gin.HandlerFunc) (*API, error) {
	if schemas == nil || ready == nil {
		return nil, errors.New("httpapi: nil schemas or readiness")
	}
	return &API{schemas: schemas, ready: ready}, nil
}

// Register adds the routes to r.
func (a *API) Register(r *gin.Engine) {
	r.GET("/readyz", a.ready)
	r.GET("/schemas", gin.WrapH(a.schemas)) // the schema versions this instance applies
}
