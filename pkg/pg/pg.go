// Package pg opens The Eye's Postgres database and migrates its schema from
// the versioned SQL files embedded in every binary (goose format:
// migrations/NNNN_name.sql, each starting with -- +goose Up).
package pg

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open connects to dsn, retrying until the server answers or ctx ends.
func Open(ctx context.Context, dsn string) (*sqlx.DB, error) {
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres open: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	for {
		err := db.PingContext(ctx)
		if err == nil {
			return db, nil
		}
		select {
		case <-ctx.Done():
			db.Close()
			return nil, fmt.Errorf("postgres ping: %w", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// OpenMigrated opens dsn (retrying until ctx ends) and applies the
// migrations: what every service that uses Postgres does at start-up.
func OpenMigrated(ctx context.Context, dsn string) (*sqlx.DB, error) {
	db, err := Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// MigrateDSN opens dsn, applies the migrations and closes it: the schema of
// a database handed out by testkit.
func MigrateDSN(ctx context.Context, dsn string) error {
	db, err := Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return Migrate(ctx, db)
}

// migrationLock is the advisory lock key that serialises migrations when
// several services start at once.
const migrationLock = 0x6579655f6d6967 // "eye_mig"

// versionTable is goose's record of the applied migrations.
const versionTable = "goose_db_version"

// Migrate applies the embedded migrations not applied yet, in version order,
// each in its own transaction (pressly/goose, under a Postgres advisory
// lock). It is safe to call from every service at once.
func Migrate(ctx context.Context, db *sqlx.DB) error {
	if err := adoptLegacyVersions(ctx, db); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	files, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Poll for the lock every second for up to 5 minutes: a long migration
	// in another service holds it while this one waits.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLock), lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, files,
		goose.WithSessionLocker(locker), goose.WithTableName(versionTable), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// adoptLegacyVersions moves the record of applied migrations kept by The
// Eye's own migrator before goose (table schema_migrations) into goose's
// table, once, so a database migrated by an older release is not migrated
// again.
func adoptLegacyVersions(ctx context.Context, db *sqlx.DB) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return err
	}
	var legacy, adopted bool
	const exists = `SELECT to_regclass('schema_migrations') IS NOT NULL, to_regclass($1) IS NOT NULL`
	if err := tx.QueryRowContext(ctx, exists, versionTable).Scan(&legacy, &adopted); err != nil {
		return err
	}
	if !legacy || adopted {
		return nil
	}
	var versions []int64
	if err := tx.SelectContext(ctx, &versions, `SELECT version FROM schema_migrations ORDER BY version`); err != nil {
		return err
	}
	store, err := database.NewStore(database.DialectPostgres, versionTable)
	if err != nil {
		return err
	}
	if err := store.CreateVersionTable(ctx, tx); err != nil {
		return err
	}
	for _, v := range append([]int64{0}, versions...) {
		if err := store.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE schema_migrations`); err != nil {
		return err
	}
	return tx.Commit()
}

// IsDataError reports whether err is Postgres refusing a value (SQLSTATE
// class 22, data exception, e.g. \u0000 in jsonb or an out-of-range date):
// retrying the same row can never succeed.
func IsDataError(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code.Class() == "22"
}

// IsRefused reports whether err is Postgres refusing a statement for the
// values it carries: a data exception (class 22) or an integrity
// constraint violation (class 23). Retrying the same rows can never
// succeed. A lost connection, a server shutting down or starting up, a
// timeout or a deadlock is none of these: they pass once Postgres is back.
func IsRefused(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && (pe.Code.Class() == "22" || pe.Code.Class() == "23")
}

// IsUniqueViolation reports whether err is a unique constraint violation.
func IsUniqueViolation(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "23505"
}
