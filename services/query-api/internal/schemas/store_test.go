package schemas

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
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

func newStore(t *testing.T) *Store {
	t.Helper()
	db, err := pg.Open(context.Background(), testkit.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := NewStore(db, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConcurrentAddsGetDistinctVersions: versions are assigned 1..n with
// no gap and no duplicate however many admins add at once.
func TestConcurrentAddsGetDistinctVersions(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const n = 12
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions []int
	)
	for range n {
		wg.Go(func() {
			rec, _, err := s.Add(ctx, "c", "n", []byte(`{"type": "object"}`), uuid.New(), Guard{})
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
	if rec, _, err := s.Add(ctx, "c", "other", []byte(`{}`), uuid.New(), Guard{}); err != nil || rec.Version != 1 {
		t.Fatalf("another type starts at 1: %+v %v", rec, err)
	}
	if _, _, err := s.Add(ctx, "c", "n", []byte(`{"minimum": "x"}`), uuid.New(), Guard{}); !errors.Is(err, schema.ErrInvalid) {
		t.Fatalf("invalid schema: %v", err)
	}
	if _, err := s.Get(ctx, "c", "n", n+1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the invalid schema took a version: %v", err)
	}
}

func TestPutIsIdempotentAndVersionsImmutable(t *testing.T) {
	s := newStore(t)
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
	if _, err := s.Put(ctx, compile(`{"type": "object", "required": ["b"]}`)); !errors.Is(err, ErrConflict) {
		t.Fatalf("other content: %v", err)
	}
	rec, err := s.Get(ctx, "c", "n", 2)
	if err != nil || rec.CreatedBy != nil || rec.PublishedAt != nil {
		t.Fatalf("loaded version: %+v %v", rec, err)
	}
	if rec, _, err := s.Add(ctx, "c", "n", []byte(`{}`), uuid.New(), Guard{}); err != nil || rec.Version != 3 {
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
	s := newStore(t)
	ctx := context.Background()
	shipped, _ := filepath.Abs("../../../../deploy/schemas")
	added, err := LoadDir(ctx, s, shipped)
	if err != nil || added != 3 {
		t.Fatalf("shipped schemas: %d %v", added, err)
	}
	if added, err := LoadDir(ctx, s, shipped); err != nil || added != 0 {
		t.Fatalf("loading again: %d %v", added, err)
	}
	recs, _, err := s.List(ctx, Filter{Category: "page interaction"}, paging.Request{})
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
	if _, err := LoadDir(ctx, s, changed); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "new version") {
		t.Fatalf("a changed version: %v", err)
	}
	if err := os.Rename(filepath.Join(dir, "1.json"), filepath.Join(dir, "2.json")); err != nil {
		t.Fatal(err)
	}
	if added, err := LoadDir(ctx, s, changed); err != nil || added != 1 {
		t.Fatalf("the change as version 2: %d %v", added, err)
	}
	if _, err := LoadDir(ctx, s, filepath.Join(changed, "missing")); err == nil {
		t.Fatal("a missing directory loaded")
	}
}
