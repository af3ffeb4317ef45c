package pg_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/lib/pq"

	"github.com/the-eye/eye/pkg/pg"
)

// IsRefused tells the errors of the rows themselves from those of a
// Postgres that is away: only the first are permanent.
func TestIsRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pq.Error{Code: "22021"}, true},  // invalid byte sequence (NUL in text)
		{&pq.Error{Code: "22P05"}, true},  // unsupported Unicode escape (\u0000 in jsonb)
		{&pq.Error{Code: "22008"}, true},  // datetime field overflow
		{&pq.Error{Code: "23502"}, true},  // not-null violation
		{&pq.Error{Code: "23514"}, true},  // check violation
		{&pq.Error{Code: "57P01"}, false}, // admin shutdown: Postgres restarting
		{&pq.Error{Code: "57P03"}, false}, // cannot connect now: starting up
		{&pq.Error{Code: "08006"}, false}, // connection failure
		{&pq.Error{Code: "53300"}, false}, // too many connections
		{&pq.Error{Code: "40P01"}, false}, // deadlock
		{&pq.Error{Code: "40001"}, false}, // serialization failure
		{&pq.Error{Code: "57014"}, false}, // query cancelled (statement timeout)
		{driver.ErrBadConn, false},
		{io.ErrUnexpectedEOF, false},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, false},
		{context.DeadlineExceeded, false},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("insert 3 errors: %w", tc.err)} {
			if got := pg.IsRefused(err); got != tc.want {
				t.Errorf("IsRefused(%v) = %t, want %t", err, got, tc.want)
			}
		}
	}
}
