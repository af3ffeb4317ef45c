package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/schema"
	"github.com/the-eye/eye/pkg/testkit"
	"github.com/the-eye/eye/services/query-api/internal/paging"
	"github.com/the-eye/eye/services/query-api/internal/schemas"
)

// schemaKit is a Schemas on a fresh database with the schemas domain on
// it (Add).
type schemaKit struct {
	*Schemas
	svc *schemas.Service
}

func (k schemaKit) Add(ctx context.Context, category, name string, src []byte, by uuid.UUID, g schemas.Guard) (schemas.Record, schemas.Impact, error) {
	return k.svc.Add(ctx, category, name, src, by, g)
}

func newSchemas(t *testing.T) schemaKit {
	t.Helper()
	db, err := pg.Open(context.Background(), testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := NewSchemas(db, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := schemas.NewService(st)
	if err != nil {
		t.Fatal(err)
	}
	return schemaKit{Schemas: st, svc: svc}
}

// TestConcurrentAddsGetDistinctVersions: versions are assigned 1..n with
// no gap and no duplicate however many admins add at once.
func TestConcurrentAddsGetDistinctVersions(t *testing.T) {
	s := newSchemas(t)
	ctx := context.Background()
	const n = 12
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions []int
	)
	for range n {
		wg.Go(func() {
			rec, _, err := s.Add(ctx, "c", "n", []byte(`{"type": "object"}`), uuid.New(), schemas.Guard{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			versions = append(versions, rec.Version)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(versions)
	for i, v := range versions {
		if v != i+1 {
			t.Fatalf("versions %v", versions)
		}
	}
	if rec, _, err := s.Add(ctx, "c", "other", []byte(`{}`), uuid.New(), schemas.Guard{}); err != nil || rec.Version != 1 {
		t.Fatalf("another type starts at 1: %+v %v", rec, err)
	}
	if _, _, err := s.Add(ctx, "c", "n", []byte(`{"minimum": "x"}`), uuid.New(), schemas.Guard{}); !errors.Is(err, schema.ErrInvalid) {
		t.Fatalf("invalid schema: %v", err)
	}
	if _, err := s.Get(ctx, "c", "n", n+1); !errors.Is(err, schemas.ErrNotFound) {
		t.Fatalf("the invalid schema took a version: %v", err)
	}
}

func TestPutIsIdempotentAndVersionsImmutable(t *testing.T) {
	s := newSchemas(t)
	ctx := context.Background()
	compile := func(src string) *schema.Schema {
		sc, err := schema.Compile("c", "n", 2, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	if ins, err := s.Put(ctx, compile(`{"type": "object", "required": ["a"]}`)); err != nil || !ins {
		t.Fatalf("first put: %v %v", ins, err)
	}
	if ins, err := s.Put(ctx, compile(`{"required":["a"],   "type":"object"}`)); err != nil || ins {
		t.Fatalf("same content, other spelling: %v %v", ins, err)
	}
	if _, err := s.Put(ctx, compile(`{"type": "object", "required": ["b"]}`)); !errors.Is(err, schemas.ErrConflict) {
		t.Fatalf("other content: %v", err)
	}
	rec, err := s.Get(ctx, "c", "n", 2)
	if err != nil || rec.CreatedBy != nil || rec.PublishedAt != nil {
		t.Fatalf("loaded version: %+v %v", rec, err)
	}
	if rec, _, err := s.Add(ctx, "c", "n", []byte(`{}`), uuid.New(), schemas.Guard{}); err != nil || rec.Version != 3 {
		t.Fatalf("an added version follows the loaded one: %+v %v", rec, err)
	}
	un, err := s.Unpublished(ctx, 10)
	if err != nil || len(un) != 2 {
		t.Fatalf("unpublished: %v %v", un, err)
	}
	if err := s.MarkPublished(ctx, un[:1]); err != nil {
		t.Fatal(err)
	}
	if un, _ := s.Unpublished(ctx, 10); len(un) != 1 || un[0].Version != 3 {
		t.Fatalf("unpublished after marking version 2: %+v", un)
	}
}

func TestLoadDir(t *testing.T) {
	s := newSchemas(t)
	ctx := context.Background()
	shipped, _ := filepath.Abs("../../../../deploy/schemas")
	added, err := schemas.LoadDir(ctx, s.Schemas, shipped)
	if err != nil || added != 3 {
		t.Fatalf("shipped schemas: %d %v", added, err)
	}
	if added, err := schemas.LoadDir(ctx, s.Schemas, shipped); err != nil || added != 0 {
		t.Fatalf("loading again: %d %v", added, err)
	}
	recs, _, err := s.List(ctx, schemas.Filter{Category: "page interaction"}, paging.Request{})
	if err != nil || len(recs) != 2 || recs[0].Name != "cta click" || recs[1].Name != "pageview" {
		t.Fatalf("listed %+v %v", recs, err)
	}

	changed := t.TempDir()
	dir := filepath.Join(changed, "page interaction", "pageview")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "1.json"), []byte(`{"required": ["path"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := schemas.LoadDir(ctx, s.Schemas, changed); !errors.Is(err, schemas.ErrConflict) || !strings.Contains(err.Error(), "new version") {
		t.Fatalf("a changed version: %v", err)
	}
	if err := os.Rename(filepath.Join(dir, "1.json"), filepath.Join(dir, "2.json")); err != nil {
		t.Fatal(err)
	}
	if added, err := schemas.LoadDir(ctx, s.Schemas, changed); err != nil || added != 1 {
		t.Fatalf("the change as version 2: %d %v", added, err)
	}
	if _, err := schemas.LoadDir(ctx, s.Schemas, filepath.Join(changed, "missing")); err == nil {
		t.Fatal("a missing directory loaded")
	}
}

// TestAddGuards: a schema that accepts nothing is refused; a new version is
// checked against the type's most recent stored events, a dry run counts
// the failures and stores nothing, a version that would fail some is
// refused unless forced.
func TestAddGuards(t *testing.T) {
	s := newSchemas(t)
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
		if _, _, err := s.Add(ctx, "page interaction", "pageview", []byte(src), uuid.New(), schemas.Guard{Check: 10, Force: true}); !errors.Is(err, schema.ErrAcceptsNothing) {
			t.Errorf("%s: %v, want ErrAcceptsNothing even when forced", src, err)
		}
	}

	strict := []byte(`{"type": "object", "required": ["path"]}`)
	rec, imp, err := s.Add(ctx, "page interaction", "pageview", strict, uuid.New(), schemas.Guard{Check: 10, DryRun: true})
	if err != nil || rec.Version != 0 || imp.Checked != 10 || imp.Failing != 3 || len(imp.Samples) != 3 {
		t.Fatalf("dry run: %+v %+v %v", rec, imp, err)
	}
	if f := imp.Samples[0]; f.Pointer != "/data/path" || f.Message == "" || f.EventID == uuid.Nil {
		t.Fatalf("sample %+v", f)
	}
	if _, _, err := s.Add(ctx, "page interaction", "pageview", strict, uuid.New(), schemas.Guard{Check: 1000, DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if _, imp, err := s.Add(ctx, "page interaction", "pageview", strict, uuid.New(), schemas.Guard{Check: 1000}); !errors.Is(err, schemas.ErrBreaksEvents) || imp.Checked != 11 || imp.Failing != 4 {
		t.Fatalf("unforced: %+v %v, want schemas.ErrBreaksEvents with 4 of 11", imp, err)
	}
	if recs, _, err := s.List(ctx, schemas.Filter{Category: "page interaction"}, paging.Request{}); err != nil || len(recs) != 0 {
		t.Fatalf("after a dry run and a refusal: %d versions stored (%v)", len(recs), err)
	}
	rec, imp, err = s.Add(ctx, "page interaction", "pageview", []byte(`{"type": "object"}`), uuid.New(), schemas.Guard{Check: 1000})
	if err != nil || rec.Version != 1 || imp.Checked != 11 || imp.Failing != 0 {
		t.Fatalf("lenient: %+v %+v %v", rec, imp, err)
	}
	rec, imp, err = s.Add(ctx, "page interaction", "pageview", strict, uuid.New(), schemas.Guard{Check: 1000, Force: true})
	if err != nil || rec.Version != 2 || imp.Failing != 4 {
		t.Fatalf("forced: %+v %+v %v", rec, imp, err)
	}
	if _, imp, err := s.Add(ctx, "new type", "x", strict, uuid.New(), schemas.Guard{Check: 1000}); err != nil || imp.Checked != 0 {
		t.Fatalf("a type without events: %+v %v", imp, err)
	}
}
