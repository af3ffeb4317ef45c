package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/event"
	"github.com/the-eye/eye/pkg/httpx"
	"github.com/the-eye/eye/pkg/schema"
	"github.com/the-eye/eye/services/query-api/internal/admin"
	"github.com/the-eye/eye/services/query-api/internal/paging"
	"github.com/the-eye/eye/services/query-api/internal/query"
	"github.com/the-eye/eye/services/query-api/internal/schemas"
)

// TestFailMapsEveryDomainError: every error a store of the query API
// returns gets its status and code from fail, wrapped or not; Retry-After
// comes with every 503.
func TestFailMapsEveryDomainError(t *testing.T) {
	reasons := event.Reasons{{Code: event.CodeInvalidField, Field: "/name", Message: "name must be a string"}}
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{query.ErrNotFound, http.StatusNotFound, "not_found"},
		{fmt.Errorf("%w: it was altered or cut short", paging.ErrInvalidCursor), http.StatusBadRequest, "invalid_cursor"},
		{query.ErrPrecondition, http.StatusPreconditionFailed, "precondition_failed"},
		{query.ErrSessionImmutable, http.StatusBadRequest, "session_immutable"},
		{query.ErrBadRange, http.StatusBadRequest, "invalid_range"},
		{query.ErrTooManyBuckets, http.StatusBadRequest, "too_many_buckets"},
		{query.ErrTooManyStats, http.StatusBadRequest, "too_many_counts"},
		{query.ErrNotPublished, http.StatusServiceUnavailable, "unavailable"},
		{query.ErrBadGrouping, http.StatusBadRequest, "invalid_parameter"},
		{fmt.Errorf("%w: %w", query.ErrReplayInvalid, reasons), http.StatusUnprocessableEntity, "replay_invalid"},
		{query.ErrReplayNotPublished, http.StatusServiceUnavailable, "unavailable"},
		{reasons, http.StatusBadRequest, string(event.CodeInvalidField)},
		{&admin.InvalidError{Code: "invalid_origin", Message: "bad origin"}, http.StatusBadRequest, "invalid_origin"},
		{admin.ErrNotFound, http.StatusNotFound, "not_found"},
		{admin.ErrKeyRevoked, http.StatusConflict, "key_revoked"},
		{admin.ErrKeyExpired, http.StatusConflict, "key_expired"},
		{admin.ErrOwnApplication, http.StatusConflict, "own_application"},
		{schemas.ErrNotFound, http.StatusNotFound, "not_found"},
		{schemas.ErrConflict, http.StatusConflict, "schema_conflict"},
		{fmt.Errorf("%w: category must be 1..200 characters", schema.ErrInvalid), http.StatusBadRequest, "invalid_schema"},
		{fmt.Errorf("%w: false", schema.ErrAcceptsNothing), http.StatusUnprocessableEntity, "schema_accepts_nothing"},
		{&pq.Error{Code: "22P05", Message: "unsupported Unicode escape sequence"}, http.StatusBadRequest, "invalid_data"},
		{context.DeadlineExceeded, http.StatusServiceUnavailable, "timeout"},
		{errors.New("connection refused"), http.StatusInternalServerError, "internal"},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("store: %w", tc.err)} {
			w := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(w)
			fail(c, err)
			var body httpx.ErrorBody
			if jerr := json.Unmarshal(w.Body.Bytes(), &body); jerr != nil || w.Code != tc.status || body.Error.Code != tc.code || body.Error.Message == "" {
				t.Errorf("%v: %d %s, want %d with code %q", err, w.Code, w.Body, tc.status, tc.code)
			}
			if retry := w.Header().Get("Retry-After"); (w.Code == http.StatusServiceUnavailable) != (retry != "") {
				t.Errorf("%v: %d with Retry-After %q", err, w.Code, retry)
			}
		}
	}
}
