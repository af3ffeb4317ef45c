package schemas

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/schema"
)

// memStore is an in-memory Store: a type's stored events, newest first,
// and the versions inserted. Methods a test does not use are the nil
// embedded interface's (calling one panics).
type memStore struct {
	Store
	events   []StoredEvent
	inserted []Record
	asked    int // the n of the last RecentEvents
}

func (m *memStore) RecentEvents(_ context.Context, _, _ string, n int) ([]StoredEvent, error) {
	m.asked = n
	return m.events[:min(n, len(m.events))], nil
}

func (m *memStore) Insert(_ context.Context, category, name string, src []byte, _ uuid.UUID) (Record, error) {
	r := Record{Category: category, Name: name, Version: len(m.inserted) + 1, Schema: src}
	m.inserted = append(m.inserted, r)
	return r, nil
}

// TestAddGuards: a schema that accepts nothing or does not compile is
// refused even when forced; a new version is checked against the type's
// most recent stored events (as many as the guard says), a dry run reports
// and stores nothing, a version that would reject some is refused unless
// forced, and one that rejects none is stored.
func TestAddGuards(t *testing.T) {
	ctx := context.Background()
	m := &memStore{}
	for i := range 10 {
		data := `{"path": "/p"}`
		if i < 3 {
			data = `{"host": "x"}` // the newest 3 have no path
		}
		m.events = append(m.events, StoredEvent{ID: uuid.New(), Data: []byte(data)})
	}
	s, err := NewService(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{`false`, `{"not": {}}`} {
		if _, _, err := s.Add(ctx, "page interaction", "pageview", []byte(src), uuid.New(), Guard{Check: 10, Force: true}); !errors.Is(err, schema.ErrAcceptsNothing) {
			t.Errorf("%s: %v, want ErrAcceptsNothing even when forced", src, err)
		}
	}
	if _, _, err := s.Add(ctx, "page interaction", "pageview", []byte(`{"minimum": "x"}`), uuid.New(), Guard{Force: true}); !errors.Is(err, schema.ErrInvalid) {
		t.Errorf("a schema that does not compile: %v", err)
	}
	strict := []byte(`{"type": "object", "required": ["path"]}`)
	rec, imp, err := s.Add(ctx, "page interaction", "pageview", strict, uuid.New(), Guard{Check: 5, DryRun: true})
	if err != nil || rec.Version != 0 || m.asked != 5 || imp.Checked != 5 || imp.Failing != 3 || len(imp.Samples) != 3 ||
		imp.Samples[0].EventID != m.events[0].ID || imp.Samples[0].Pointer != "/data/path" {
		t.Fatalf("dry run: %+v %+v %v", rec, imp, err)
	}
	if _, imp, err := s.Add(ctx, "page interaction", "pageview", strict, uuid.New(), Guard{Check: 100}); !errors.Is(err, ErrBreaksEvents) || imp.Checked != 10 || imp.Failing != 3 {
		t.Fatalf("unforced: %+v %v, want ErrBreaksEvents with 3 of 10", imp, err)
	}
	if len(m.inserted) != 0 {
		t.Fatalf("stored after refusals and a dry run: %+v", m.inserted)
	}
	if rec, imp, err := s.Add(ctx, "page interaction", "pageview", strict, uuid.New(), Guard{Check: 100, Force: true}); err != nil || rec.Version != 1 || imp.Failing != 3 {
		t.Fatalf("forced: %+v %+v %v", rec, imp, err)
	}
	if rec, imp, err := s.Add(ctx, "page interaction", "pageview", []byte(`{"type": "object"}`), uuid.New(), Guard{}); err != nil || rec.Version != 2 || imp.Checked != 0 {
		t.Fatalf("unchecked: %+v %+v %v", rec, imp, err)
	}
}
