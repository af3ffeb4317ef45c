package admin

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
	"github.com/the-eye/eye/services/query-api/internal/apitime"
)

// memStore is an in-memory Store of applications and keys. Methods a test
// does not use are the nil embedded interface's (calling one panics).
type memStore struct {
	Store
	apps     map[uuid.UUID]Application
	keys     map[uuid.UUID]Key
	expired  map[uuid.UUID]bool
	overlaps []time.Duration // of the rotations stored
	disabled []uuid.UUID
}

func newMemStore() *memStore {
	return &memStore{apps: map[uuid.UUID]Application{}, keys: map[uuid.UUID]Key{}, expired: map[uuid.UUID]bool{}}
}

func (m *memStore) Application(_ context.Context, id uuid.UUID) (Application, error) {
	a, ok := m.apps[id]
	if !ok {
		return Application{}, ErrNotFound
	}
	return a, nil
}

func (m *memStore) CreateApplication(_ context.Context, id uuid.UUID, name string, set Settings) (Application, error) {
	a := Application{ID: id, Name: name, Settings: set}
	m.apps[id] = a
	return a, nil
}

func (m *memStore) UpdateApplication(_ context.Context, id uuid.UUID, change func(Application) (Application, error)) (Application, error) {
	a, ok := m.apps[id]
	if !ok {
		return Application{}, ErrNotFound
	}
	a, err := change(a)
	if err != nil {
		return Application{}, err
	}
	m.apps[id] = a
	return a, nil
}

func (m *memStore) SetDisabled(_ context.Context, id uuid.UUID, disabled bool) (Application, error) {
	m.disabled = append(m.disabled, id)
	return m.apps[id], nil
}

func (m *memStore) RotateKey(_ context.Context, id uuid.UUID, check func(Key, bool) error, overlap time.Duration) (RotatedKey, error) {
	old, ok := m.keys[id]
	if !ok {
		return RotatedKey{}, ErrNotFound
	}
	if err := check(old, m.expired[id]); err != nil {
		return RotatedKey{}, err
	}
	m.overlaps = append(m.overlaps, overlap)
	return RotatedKey{CreatedKey: CreatedKey{Key: Key{ID: uuid.New(), ApplicationID: old.ApplicationID}}, Previous: old}, nil
}

// TestRotationRules: a rotation's overlap defaults to the configured one,
// is refused outside 0s..MaxOverlap before storage is asked, and revoked or
// expired keys are not rotated.
func TestRotationRules(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	s, err := NewService(m, 7*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	live, revoked, expired := uuid.New(), uuid.New(), uuid.New()
	now := apitime.New(time.Now())
	m.keys[live] = Key{ID: live, Scopes: []auth.Scope{auth.ScopeWrite}}
	m.keys[revoked] = Key{ID: revoked, RevokedAt: &now}
	m.keys[expired] = Key{ID: expired}
	m.expired[expired] = true

	for _, overlap := range []string{"", "0s", "36h"} {
		if _, err := s.RotateKey(ctx, live, overlap); err != nil {
			t.Fatalf("overlap %q: %v", overlap, err)
		}
	}
	if want := []time.Duration{7 * time.Minute, 0, 36 * time.Hour}; len(m.overlaps) != 3 || m.overlaps[0] != want[0] || m.overlaps[1] != want[1] || m.overlaps[2] != want[2] {
		t.Fatalf("overlaps stored %v, want %v", m.overlaps, want)
	}
	for _, overlap := range []string{"-1s", "9000h", "soon"} {
		if _, err := s.RotateKey(ctx, live, overlap); code(err) != "invalid_overlap" {
			t.Fatalf("overlap %q: %v", overlap, err)
		}
	}
	if _, err := s.RotateKey(ctx, revoked, ""); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("revoked key: %v", err)
	}
	if _, err := s.RotateKey(ctx, expired, ""); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("expired key: %v", err)
	}
	if len(m.overlaps) != 3 {
		t.Fatalf("refused rotations were stored: %v", m.overlaps)
	}
	if _, err := NewService(m, MaxOverlap+time.Hour); err == nil {
		t.Fatal("a default overlap beyond MaxOverlap was accepted")
	}
}

// TestApplicationRules: names and settings are checked and normalised on
// creation and on update (a refused update stores nothing), and an admin
// cannot disable its own application.
func TestApplicationRules(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	s, err := NewService(m, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateApplication(ctx, NewApplication{Name: " "}); code(err) != "invalid_name" || len(m.apps) != 0 {
		t.Fatalf("blank name: %v", err)
	}
	app, err := s.CreateApplication(ctx, NewApplication{Name: " shop ", Settings: Settings{AllowedOrigins: []string{"HTTPS://Shop.Example:443"}}})
	if err != nil || app.Name != "shop" || len(app.Settings.AllowedOrigins) != 1 || app.Settings.AllowedOrigins[0] != "https://shop.example" || app.ID.Version() != 7 {
		t.Fatalf("create: %+v %v", app, err)
	}
	bad := -1.0
	if _, err := s.UpdateApplication(ctx, app.ID, ApplicationChange{RateLimit: &bad}); code(err) != "invalid_rate" {
		t.Fatalf("negative rate: %v", err)
	}
	if m.apps[app.ID].Settings.RateLimit != 0 {
		t.Fatalf("a refused update was stored: %+v", m.apps[app.ID])
	}
	name, strict := "web shop", true
	got, err := s.UpdateApplication(ctx, app.ID, ApplicationChange{Name: &name, StrictTypes: &strict})
	if err != nil || got.Name != name || !got.Settings.StrictTypes || got.Settings.AllowedOrigins[0] != "https://shop.example" {
		t.Fatalf("update: %+v %v", got, err)
	}
	if _, err := s.Disable(ctx, app.ID, app.ID); !errors.Is(err, ErrOwnApplication) || len(m.disabled) != 0 {
		t.Fatalf("disabling one's own application: %v", err)
	}
	if _, err := s.Disable(ctx, uuid.New(), uuid.New()); err != nil {
		t.Fatal(err)
	}
}
