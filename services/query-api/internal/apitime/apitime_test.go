package apitime

import (
	"database/sql"
	"encoding/json"
	"testing"
	"time"
)

func TestMarshalAsDRF(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	for _, c := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2021, 1, 1, 9, 15, 27, 243860000, time.UTC), `"2021-01-01T09:15:27.243860Z"`},
		{time.Date(2021, 1, 1, 9, 15, 27, 100000000, time.UTC), `"2021-01-01T09:15:27.100000Z"`},
		{time.Date(2021, 1, 1, 9, 15, 27, 0, time.UTC), `"2021-01-01T09:15:27Z"`},
		{time.Date(2021, 1, 1, 9, 15, 27, 1000, time.UTC), `"2021-01-01T09:15:27.000001Z"`},
		{time.Date(2021, 1, 1, 9, 15, 27, 999, time.UTC), `"2021-01-01T09:15:27Z"`},              // under a microsecond: cut
		{time.Date(2021, 1, 1, 9, 15, 27, 243860999, time.UTC), `"2021-01-01T09:15:27.243860Z"`}, // cut, not rounded
		{time.Date(2021, 1, 1, 10, 15, 27, 500000000, paris), `"2021-01-01T09:15:27.500000Z"`},   // in UTC
		{time.Date(2021, 1, 1, 0, 30, 0, 0, paris), `"2020-12-31T23:30:00Z"`},
	} {
		b, err := json.Marshal(New(c.in))
		if err != nil || string(b) != c.want {
			t.Errorf("%v: got %s, %v; want %s", c.in, b, err, c.want)
		}
		if b, _ := json.Marshal(Time{c.in}); string(b) != c.want {
			t.Errorf("%v not made with New: got %s, want %s", c.in, b, c.want)
		}
	}
	if _, err := json.Marshal(New(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))); err == nil {
		t.Error("year 10000 rendered")
	}
}

func TestNullAndRoundTrip(t *testing.T) {
	type doc struct {
		At    Time  `json:"at"`
		Maybe *Time `json:"maybe"`
	}
	in := doc{At: New(time.Date(2021, 1, 1, 9, 15, 27, 243860000, time.UTC)), Maybe: Null(sql.NullTime{})}
	b, err := json.Marshal(in)
	if err != nil || string(b) != `{"at":"2021-01-01T09:15:27.243860Z","maybe":null}` {
		t.Fatalf("got %s, %v", b, err)
	}
	var out doc
	if err := json.Unmarshal([]byte(`{"at":"2021-01-01T10:15:27.24386+01:00","maybe":"2021-01-01T09:15:27Z"}`), &out); err != nil {
		t.Fatal(err)
	}
	if !out.At.Equal(in.At.Time) || out.Maybe == nil || out.Maybe.String() != "2021-01-01T09:15:27Z" {
		t.Fatalf("read %+v", out)
	}
	if n := Null(sql.NullTime{Time: in.At.Time, Valid: true}); n == nil || *n != in.At {
		t.Fatalf("Null of a valid time: %v", n)
	}
}
