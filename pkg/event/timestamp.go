package event

import (
	"errors"
	"strings"
	"time"
)

// timestampLayouts are tried in order. Layouts without a zone are read as
// UTC, as the seed did for its "2021-01-01 09:15:27.243860" form.
var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// ErrTimestamp is returned by ParseTimestamp for text in no known format.
var ErrTimestamp = errors.New("timestamp is not RFC 3339 or 'YYYY-MM-DD hh:mm:ss[.ffffff]'")

// ParseTimestamp reads an event timestamp: RFC 3339 with or without a zone
// (a space may replace the 'T'); a missing zone means UTC. The result is in
// UTC, truncated to microseconds, the precision Postgres stores.
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return Canonical(t), nil
		}
	}
	return time.Time{}, ErrTimestamp
}

// Canonical returns t in UTC truncated to microseconds.
func Canonical(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
