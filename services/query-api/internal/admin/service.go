package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// Store is the storage administration needs. Missing applications and
// keys are ErrNotFound.
type Store interface {
	// CreateApplication stores a new application with a checked name and
	// settings.
	CreateApplication(ctx context.Context, id uuid.UUID, name string, set Settings) (Application, error)
	Application(ctx context.Context, id uuid.UUID) (Application, error)
	// Applications lists applications, oldest first, a page at a time.
	Applications(ctx context.Context, p paging.Request) ([]Application, paging.Links, error)
	// UpdateApplication locks application id, asks change for its new
	// state (whose error aborts and is returned as it is) and stores it.
	UpdateApplication(ctx context.Context, id uuid.UUID, change func(Application) (Application, error)) (Application, error)
	// SetDisabled disables application id (keeping the time of a first
	// disabling) or enables it.
	SetDisabled(ctx context.Context, id uuid.UUID, disabled bool) (Application, error)
	// CreateKey generates and stores a key of application app with
	// checked scopes and label.
	CreateKey(ctx context.Context, app uuid.UUID, in NewKey) (CreatedKey, error)
	// Keys lists an application's keys, oldest first.
	Keys(ctx context.Context, app uuid.UUID) ([]Key, error)
	// RotateKey locks key id, asks check whether it may be rotated (its
	// error aborts and is returned as it is), creates a key with the same
	// application, scopes and label, and makes the old one expire after
	// overlap unless it expires sooner.
	RotateKey(ctx context.Context, id uuid.UUID, check func(old Key, expired bool) error, overlap time.Duration) (RotatedKey, error)
	// RevokeKey revokes key id (keeping the time of a first revocation).
	RevokeKey(ctx context.Context, id uuid.UUID) (Key, error)
}

// Service administers applications and keys over a Store, with the rules
// of their inputs and of key rotation.
type Service struct {
	store   Store
	overlap time.Duration
}

// NewService returns a Service on store; rotationOverlap is how long a
// rotated key keeps working when the rotation does not say
// (EYE_KEY_ROTATION_OVERLAP).
func NewService(store Store, rotationOverlap time.Duration) (*Service, error) {
	if store == nil {
		return nil, errors.New("admin: nil store")
	}
	if rotationOverlap < 0 || rotationOverlap > MaxOverlap {
		return nil, fmt.Errorf("admin: rotation overlap must be between 0s and %s", MaxOverlap)
	}
	return &Service{store: store, overlap: rotationOverlap}, nil
}

// CreateApplication creates an application.
func (s *Service) CreateApplication(ctx context.Context, in NewApplication) (Application, error) {
	name, err := validName(in.Name)
	if err != nil {
		return Application{}, err
	}
	set, err := in.Settings.normalize()
	if err != nil {
		return Application{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Application{}, fmt.Errorf("create application: %w", err)
	}
	return s.store.CreateApplication(ctx, id, name, set)
}

// Application returns one application.
func (s *Service) Application(ctx context.Context, id uuid.UUID) (Application, error) {
	return s.store.Application(ctx, id)
}

// Applications lists applications, oldest first, a page at a time.
func (s *Service) Applications(ctx context.Context, p paging.Request) ([]Application, paging.Links, error) {
	return s.store.Applications(ctx, p)
}

// UpdateApplication applies change to an application; the result must pass
// the same checks as a new one.
func (s *Service) UpdateApplication(ctx context.Context, id uuid.UUID, change ApplicationChange) (Application, error) {
	return s.store.UpdateApplication(ctx, id, func(app Application) (Application, error) {
		if change.Name != nil {
			app.Name = *change.Name
		}
		if change.AllowedOrigins != nil {
			app.Settings.AllowedOrigins = *change.AllowedOrigins
		}
		if change.RateLimit != nil {
			app.Settings.RateLimit = *change.RateLimit
		}
		if change.RateBurst != nil {
			app.Settings.RateBurst = *change.RateBurst
		}
		if change.StrictSessions != nil {
			app.Settings.StrictSessions = *change.StrictSessions
		}
		if change.StrictTypes != nil {
			app.Settings.StrictTypes = *change.StrictTypes
		}
		var err error
		if app.Name, err = validName(app.Name); err != nil {
			return Application{}, err
		}
		if app.Settings, err = app.Settings.normalize(); err != nil {
			return Application{}, err
		}
		return app, nil
	})
}

// Disable disables an application: its keys stop working (within the key
// cache TTL). Disabling a disabled application changes nothing. callerApp is
// the application of the key making the request, which may not disable it
// and lock itself out (ErrOwnApplication).
func (s *Service) Disable(ctx context.Context, id, callerApp uuid.UUID) (Application, error) {
	if id == callerApp {
		if _, err := s.store.Application(ctx, id); err != nil {
			return Application{}, err
		}
		return Application{}, ErrOwnApplication
	}
	return s.store.SetDisabled(ctx, id, true)
}

// Enable enables an application again; its keys that are neither revoked
// nor expired work again.
func (s *Service) Enable(ctx context.Context, id uuid.UUID) (Application, error) {
	return s.store.SetDisabled(ctx, id, false)
}

// CreateKey creates a key for an application. Its prefix names its most
// powerful scope (eye_a_, eye_r_, eye_w_).
func (s *Service) CreateKey(ctx context.Context, app uuid.UUID, in NewKey) (CreatedKey, error) {
	in, err := in.normalize()
	if err != nil {
		return CreatedKey{}, err
	}
	return s.store.CreateKey(ctx, app, in)
}

// Keys lists an application's keys, oldest first, revoked and expired ones
// included; never their material.
func (s *Service) Keys(ctx context.Context, app uuid.UUID) ([]Key, error) {
	return s.store.Keys(ctx, app)
}

// RotateKey creates a key with the same application, scopes and label as
// key id, and makes the old one expire after overlap ("" for the configured
// default; "0s" ends it now). An old key already expiring sooner keeps its
// earlier expiry. Revoked (ErrKeyRevoked) and expired (ErrKeyExpired) keys
// cannot be rotated.
func (s *Service) RotateKey(ctx context.Context, id uuid.UUID, overlap string) (RotatedKey, error) {
	d, err := ParseOverlap(overlap, s.overlap)
	if err != nil {
		return RotatedKey{}, err
	}
	return s.store.RotateKey(ctx, id, func(old Key, expired bool) error {
		switch {
		case old.RevokedAt != nil:
			return ErrKeyRevoked
		case expired:
			return ErrKeyExpired
		}
		return nil
	}, d)
}

// RevokeKey revokes a key: it stops working within the services' key cache
// TTL. Revoking a revoked key changes nothing.
func (s *Service) RevokeKey(ctx context.Context, id uuid.UUID) (Key, error) {
	return s.store.RevokeKey(ctx, id)
}

// RotatedKey is the answer to a rotation: the new key, shown once, and the
// key it replaces with its expiry.
type RotatedKey struct {
	CreatedKey
	Previous Key `json:"previous"`
}
