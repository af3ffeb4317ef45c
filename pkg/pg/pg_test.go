package pg_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/the-eye/eye/pkg/pg"
	"github.com/the-eye/eye/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m, pg.MigrateDSN) }

// emptyDatabase returns a test database with nothing in it: not even the
// record of applied migrations.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	dsn := testkit.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := pg.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	return dsn
}

func appliedVersions(t *testing.T, ctx context.Context, dsn string) []int64 {
	t.Helper()
	db, err := pg.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v []int64
	if err := db.SelectContext(ctx, &v, `SELECT version_id FROM goose_db_version WHERE is_applied ORDER BY version_id`); err != nil {
		t.Fatal(err)
	}
	return v
}

// Every service migrates at start-up, so several do it at once on a new
// database: each must succeed, and each migration run once.
func TestMigrateConcurrently(t *testing.T) {
	dsn := emptyDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var g errgroup.Group
	for range 4 {
		g.Go(func() error {
			db, err := pg.Open(ctx, dsn)
			if err != nil {
				return err
			}
			defer db.Close()
			return pg.Migrate(ctx, db)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	v := appliedVersions(t, ctx, dsn)
	if len(v) < 2 || v[0] != 0 || v[1] != 1 {
		t.Fatalf("applied versions %v", v)
	}
	for i := 1; i < len(v); i++ {
		if v[i] != v[i-1]+1 {
			t.Fatalf("applied versions %v: each once, in order", v)
		}
	}
}

// A database migrated by a release before goose records its versions in
// schema_migrations: they are adopted, not applied again.
func TestMigrateAdoptsLegacyVersions(t *testing.T) {
	dsn := testkit.Postgres(t) // migrated
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := appliedVersions(t, ctx, dsn)
	db, err := pg.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `DROP TABLE goose_db_version`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) SELECT v, 'm' FROM generate_series(1, $1::int) v`, want[len(want)-1]); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, db); err != nil {
		t.Fatalf("migrating a database of the previous release: %v", err)
	}
	if got := appliedVersions(t, ctx, dsn); len(got) != len(want) {
		t.Fatalf("applied versions %v, want %v", got, want)
	}
	var left bool
	if err := db.GetContext(ctx, &left, `SELECT to_regclass('schema_migrations') IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	if left {
		t.Fatal("schema_migrations kept after its versions were adopted")
	}
	if err := pg.Migrate(ctx, db); err != nil {
		t.Fatalf("second run: %v", err)
	}
}
