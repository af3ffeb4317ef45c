package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// This file and keys.go hold every write of the applications and api_keys
// tables: the query-api's administration and the start-up registration
// of development keys go through them, so this package is the tables'
// one owner. Functions taking a sqlx.QueryerContext run on a database or
// inside the caller's transaction.

// ErrNoApplication: no such application.
var ErrNoApplication = errors.New("no such application")

// Application is a stored application.
type Application struct {
	ID         uuid.UUID
	Name       string
	Settings   AppSettings
	CreatedAt  time.Time
	DisabledAt sql.NullTime // null: enabled
}

const appCols = `a.id, a.name, ` + settingsCols + `, a.created_at, a.disabled_at`

type appRow struct {
	ID   uuid.UUID `db:"id"`
	Name string    `db:"name"`
	settingsRow
	CreatedAt  time.Time    `db:"created_at"`
	DisabledAt sql.NullTime `db:"disabled_at"`
}

func (r appRow) application() Application {
	return Application{ID: r.ID, Name: r.Name, Settings: r.settings(), CreatedAt: r.CreatedAt, DisabledAt: r.DisabledAt}
}

// getApp runs q (which returns appCols) and turns "no row" into
// ErrNoApplication.
func getApp(ctx context.Context, db sqlx.QueryerContext, op, q string, args ...any) (Application, error) {
	var r appRow
	err := sqlx.GetContext(ctx, db, &r, q, args...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Application{}, ErrNoApplication
	case err != nil:
		return Application{}, fmt.Errorf("%s: %w", op, err)
	}
	return r.application(), nil
}

// origins is set's allowed origins as a column value: none is an empty
// array, not NULL.
func origins(set AppSettings) pq.StringArray {
	if set.AllowedOrigins == nil {
		return pq.StringArray{}
	}
	return pq.StringArray(set.AllowedOrigins)
}

// CreateApplication stores application id with name and settings.
func CreateApplication(ctx context.Context, db sqlx.QueryerContext, id uuid.UUID, name string, set AppSettings) (Application, error) {
	const q = `
		INSERT INTO applications AS a (id, name, allowed_origins, rate_limit, rate_burst, strict_sessions, strict_types)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING ` + appCols
	return getApp(ctx, db, "create application", q, id, name, origins(set), set.RateLimit, set.RateBurst, set.StrictSessions, set.StrictTypes)
}

// EnsureApplication creates the application with default settings if it
// does not exist.
func EnsureApplication(ctx context.Context, db sqlx.ExecerContext, id uuid.UUID, name string) error {
	const q = `INSERT INTO applications (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`
	if _, err := db.ExecContext(ctx, q, id, name); err != nil {
		return fmt.Errorf("ensure application: %w", err)
	}
	return nil
}

// GetApplication returns application id.
func GetApplication(ctx context.Context, db sqlx.QueryerContext, id uuid.UUID) (Application, error) {
	return getApp(ctx, db, "get application", `SELECT `+appCols+` FROM applications a WHERE a.id = $1`, id)
}

// LockApplication returns application id locked until tx ends.
func LockApplication(ctx context.Context, tx sqlx.QueryerContext, id uuid.UUID) (Application, error) {
	return getApp(ctx, tx, "lock application", `SELECT `+appCols+` FROM applications a WHERE a.id = $1 FOR UPDATE`, id)
}

// ListApplications returns up to limit applications after (created_at,
// id) position (t, id) in created_at, id order, or before it read
// backwards (newest first) when backwards. The zero position is before
// every application.
func ListApplications(ctx context.Context, db sqlx.QueryerContext, t time.Time, id uuid.UUID, backwards bool, limit int) ([]Application, error) {
	q := `SELECT ` + appCols + ` FROM applications a WHERE (a.created_at, a.id) > ($1, $2) ORDER BY a.created_at, a.id LIMIT $3`
	if backwards {
		q = `SELECT ` + appCols + ` FROM applications a WHERE (a.created_at, a.id) < ($1, $2) ORDER BY a.created_at DESC, a.id DESC LIMIT $3`
	}
	var rows []appRow
	if err := sqlx.SelectContext(ctx, db, &rows, q, t, id, limit); err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	out := make([]Application, len(rows))
	for i, r := range rows {
		out[i] = r.application()
	}
	return out, nil
}

// UpdateApplication sets the name and settings of application id.
func UpdateApplication(ctx context.Context, db sqlx.QueryerContext, id uuid.UUID, name string, set AppSettings) (Application, error) {
	const q = `
		UPDATE applications a
		SET name = $2, allowed_origins = $3, rate_limit = $4, rate_burst = $5, strict_sessions = $6, strict_types = $7
		WHERE a.id = $1
		RETURNING ` + appCols
	return getApp(ctx, db, "update application", q, id, name, origins(set), set.RateLimit, set.RateBurst, set.StrictSessions, set.StrictTypes)
}

// SetApplicationDisabled disables application id (a disabled one keeps
// the time it was first disabled) or enables it. The keys of a disabled
// application stop working (LookupKey refuses them).
func SetApplicationDisabled(ctx context.Context, db sqlx.QueryerContext, id uuid.UUID, disabled bool) (Application, error) {
	q := `UPDATE applications a SET disabled_at = COALESCE(disabled_at, now()) WHERE a.id = $1 RETURNING ` + appCols
	if !disabled {
		q = `UPDATE applications a SET disabled_at = NULL WHERE a.id = $1 RETURNING ` + appCols
	}
	return getApp(ctx, db, "set application disabled", q, id)
}
