package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/schema"
	"github.com/the-eye/eye/services/query-api/internal/admin"
	"github.com/the-eye/eye/services/query-api/internal/paging"
	"github.com/the-eye/eye/services/query-api/internal/query"
	"github.com/the-eye/eye/services/query-api/internal/schemas"
)

// failure is how the API answers one kind of error.
type failure struct {
	status        int
	code, message string
	internal      bool // logged with the request (c.Error): the client cannot act on it
}

// fail answers err with the status, code and message classify gives it; a
// 503 also gets Retry-After. Every handler's error goes through here.
func fail(c *gin.Context, err error) {
	f := classify(err)
	if f.internal {
		_ = c.Error(err)
	}
	if f.status == http.StatusServiceUnavailable {
		c.Header("Retry-After", "1")
	}
	httpx.Abort(c, f.status, f.code, f.message)
}

// classify maps the errors of the query, admin and schemas stores to their
// answers; this is the one place that does.
func classify(err error) failure {
	var (
		reasons event.Reasons
		invalid *admin.InvalidError
	)
	switch {
	case errors.Is(err, query.ErrNotFound), errors.Is(err, admin.ErrNotFound):
		return failure{status: http.StatusNotFound, code: "not_found", message: "no such resource"}
	case errors.Is(err, schemas.ErrNotFound):
		return failure{status: http.StatusNotFound, code: "not_found", message: "no such schema version"}
	case errors.Is(err, paging.ErrInvalidCursor):
		return failure{status: http.StatusBadRequest, code: "invalid_cursor", message: err.Error() + ": follow a page's next and previous URLs as they are"}
	case errors.Is(err, query.ErrPrecondition):
		return failure{status: http.StatusPreconditionFailed, code: "precondition_failed", message: "the event changed since it was read: read it again"}
	case errors.Is(err, query.ErrSessionImmutable):
		return failure{status: http.StatusBadRequest, code: "session_immutable", message: err.Error()}
	case errors.Is(err, query.ErrBadRange):
		return failure{status: http.StatusBadRequest, code: "invalid_range", message: "bucket must be minute, hour or day, and from not after to"}
	case errors.Is(err, query.ErrTooManyBuckets):
		return failure{status: http.StatusBadRequest, code: "too_many_buckets",
			message: fmt.Sprintf("the range spans more than %d buckets: narrow it or use a wider bucket", query.MaxBuckets)}
	case errors.Is(err, query.ErrTooManyStats):
		return failure{status: http.StatusBadRequest, code: "too_many_counts",
			message: fmt.Sprintf("more than %d counts: narrow the range, use a wider bucket, group less or filter", query.MaxStats)}
	case errors.Is(err, query.ErrNotPublished):
		return failure{status: http.StatusServiceUnavailable, code: "unavailable", internal: true,
			message: "the erasure could not be published to Kafka; nothing was deleted: retry"}
	case errors.Is(err, query.ErrBadGrouping):
		return failure{status: http.StatusBadRequest, code: "invalid_parameter", message: "by: " + err.Error()}
	case errors.Is(err, query.ErrReplayInvalid):
		errors.As(err, &reasons)
		return failure{status: http.StatusUnprocessableEntity, code: "replay_invalid",
			message: "the event still fails, nothing was published: " + reasons.Error()}
	case errors.Is(err, query.ErrReplayNotPublished):
		return failure{status: http.StatusServiceUnavailable, code: "unavailable", internal: true,
			message: "the replay could not be published to Kafka: retry"}
	case errors.As(err, &reasons) && len(reasons) > 0:
		return failure{status: http.StatusBadRequest, code: string(reasons[0].Code), message: reasons.Error()}
	case errors.As(err, &invalid):
		return failure{status: http.StatusBadRequest, code: invalid.Code, message: invalid.Message}
	case errors.Is(err, admin.ErrKeyRevoked):
		return failure{status: http.StatusConflict, code: "key_revoked", message: "the key is revoked: create a new one instead"}
	case errors.Is(err, admin.ErrKeyExpired):
		return failure{status: http.StatusConflict, code: "key_expired", message: "the key has expired: create a new one instead"}
	case errors.Is(err, admin.ErrOwnApplication):
		return failure{status: http.StatusConflict, code: "own_application",
			message: "a key cannot disable its own application: use a key of another application"}
	case errors.Is(err, schema.ErrAcceptsNothing):
		return failure{status: http.StatusUnprocessableEntity, code: "schema_accepts_nothing",
			message: err.Error() + ": as the type's latest version it would turn every later event of the type into an error"}
	case errors.Is(err, schema.ErrInvalid):
		return failure{status: http.StatusBadRequest, code: "invalid_schema", message: err.Error()}
	case errors.Is(err, schemas.ErrConflict):
		return failure{status: http.StatusConflict, code: "schema_conflict", message: err.Error()}
	case pg.IsDataError(err):
		return failure{status: http.StatusBadRequest, code: "invalid_data", message: "the database cannot store this value (e.g. \\u0000 in data)"}
	case errors.Is(err, context.DeadlineExceeded):
		return failure{status: http.StatusServiceUnavailable, code: "timeout", message: "the query took too long"}
	default:
		return failure{status: http.StatusInternalServerError, code: "internal", message: "internal error", internal: true}
	}
}
