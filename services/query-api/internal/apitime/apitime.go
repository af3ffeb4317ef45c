// Package apitime is the one rendering of instants in query-api responses:
// as Django REST framework renders a DateTimeField (ISO 8601 in UTC with
// "Z", the microseconds when there are any, all six digits), so that the
// seed's clients read them unchanged.
package apitime

import (
	"database/sql"
	"fmt"
	"time"
)

// Time is an instant of a response: 2021-01-01T09:15:27.243860Z,
// 2021-01-01T09:15:27.100000Z, or 2021-01-01T09:15:27Z without a fraction
// of a second. Finer than a microsecond is cut (Postgres keeps no more).
// It reads any RFC 3339 instant.
type Time struct{ time.Time }

// New is t in UTC.
func New(t time.Time) Time { return Time{t.UTC()} }

// Null is t, or nil when it is NULL.
func Null(t sql.NullTime) *Time {
	if !t.Valid {
		return nil
	}
	u := New(t.Time)
	return &u
}

// Layouts: DRF renders Python's isoformat(), which writes microseconds
// only when there are some.
const (
	micro = "2006-01-02T15:04:05.000000Z"
	whole = "2006-01-02T15:04:05Z"
)

// String is the instant as a response renders it, without quotes.
func (t Time) String() string { return string(t.appendTo(nil)) }

// appendTo appends the instant as a response renders it.
func (t Time) appendTo(b []byte) []byte {
	u := t.UTC().Truncate(time.Microsecond)
	if u.Nanosecond() == 0 {
		return u.AppendFormat(b, whole)
	}
	return u.AppendFormat(b, micro)
}

// MarshalJSON renders the instant as a JSON string.
func (t Time) MarshalJSON() ([]byte, error) {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("apitime: year %d outside [0,9999]", y)
	}
	b := append(make([]byte, 0, len(micro)+2), '"')
	return append(t.appendTo(b), '"'), nil
}
