package schemas

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/schema"
	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// TestAddGuards: a schema that accepts nothing is refused; a new version is
// checked against the type's most recent stored events, a dry run counts
// the failures and stores nothing, a version that would fail some is
// refused unless forced.
func TestAddGuards(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	app := uuid.New()
	base := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	// 10 pageviews, the newest 3 without a path; an older one without a
	// path falls outside a check of the last 10.
	for i := range 11 {
		data := `{"path": "/p"}`
		if i == 0 || i >= 8 {
			data = `{"host": "x"}`
		}
		s.db.MustExec(`INSERT INTO events (id, app_id, session_id, category, name, data, "timestamp", received_at) VALUES ($1, $2, $3, 'page interaction', 'pageview', $4, $5, now())`,
			uuid.New(), app, uuid.New(), data, base.Add(time.Duration(i)*time.Minute))
	}
	s.db.MustExec(`INSERT INTO events (id, app_id, session_id, category, name, data, "timestamp", received_at) VALUES ($1, $2, $3, 'page interaction', 'click', '{"x":1}', now(), now())`,
		uuid.New(), app, uuid.New())

	for _, src := range []string{`false`, `{"not": {}}`, `{"type": "string"}`} {
		if _, _, err := s.Add(ctx, "page interaction", "pageview", []byte(src), uuid.New(), Guard{Check: 10, Force: true}); !errors.Is(err, schema.ErrAcceptsNothing) {
			t.Errorf("%s: %v, want ErrAcceptsNothing even when forced", src, err)
		}
	}

	strict := []byte(`{"type": "object", "required": ["path"]}`)
	rec, imp, err := s.Add(ctx, "page interaction", "pageview", strict, uuid.New(), Guard{Check: 10, DryRun: true})
	if err != nil || rec.Version != 0 || imp.Checked != 10 || imp.Failing != 3 || len(imp.Samples) != 3 {
		t.Fatalf("dry run: %+v %+v %v", rec, imp, err)
	}
	if f := imp.Samples[0]; f.Pointer != "/data/path" || f.Message == "" || f.EventID == uuid.Nil {
		t.Fatalf("sample %+v", f)
	}
	if _, _, err := s.Add(ctx, "page interaction", "pageview", strict, uuid.New(), Guard{Check: 1000, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if _, imp, err := s.Add(ctx, "page interaction", "pageview", strict, uuid.New(), Guard{Check: 1000}); !errors.Is(err, ErrBreaksEvents) || imp.Checked != 11 || imp.Failing != 4 {
		t.Fatalf("unforced: %+v %v, want ErrBreaksEvents with 4 of 11", imp, err)
	}
	if recs, _, err := s.List(ctx, Filter{Category: "page interaction"}, paging.Request{}); err != nil || len(recs) != 0 {
		t.Fatalf("after a dry run and a refusal: %d versions stored (%v)", len(recs), err)
	}
	rec, imp, err = s.Add(ctx, "page interaction", "pageview", []byte(`{"type": "object"}`), uuid.New(), Guard{Check: 1000})
	if err != nil || rec.Version != 1 || imp.Checked != 11 || imp.Failing != 0 {
		t.Fatalf("lenient: %+v %+v %v", rec, imp, err)
	}
	rec, imp, err = s.Add(ctx, "page interaction", "pageview", strict, uuid.New(), Guard{Check: 1000, Force: true})
	if err != nil || rec.Version != 2 || imp.Failing != 4 {
		t.Fatalf("forced: %+v %+v %v", rec, imp, err)
	}
	if _, imp, err := s.Add(ctx, "new type", "x", strict, uuid.New(), Guard{Check: 1000}); err != nil || imp.Checked != 0 {
		t.Fatalf("a type without events: %+v %v", imp, err)
	}
}
