package validate

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/the-eye/eye/pkg/auth"
)

// Settings reads an application's settings (auth.PGStore.Settings).
type Settings func(ctx context.Context, app uuid.UUID) (auth.AppSettings, error)

// CachedStrictTypes answers StrictTypes from settings, caching each
// application's answer for ttl, so a changed setting applies within ttl and
// Postgres sees at most one query per application per ttl. It is asked only
// for events of types without a schema. An unknown application is not
// strict; a failed lookup is not cached.
func CachedStrictTypes(settings Settings, ttl time.Duration) StrictTypes {
	type entry struct {
		strict  bool
		expires time.Time
	}
	var (
		mu    sync.Mutex
		cache = make(map[uuid.UUID]entry)
	)
	return func(ctx context.Context, app uuid.UUID) (bool, error) {
		now := time.Now()
		mu.Lock()
		e, ok := cache[app]
		mu.Unlock()
		if ok && now.Before(e.expires) {
			return e.strict, nil
		}
		set, err := settings(ctx, app)
		if err != nil && !errors.Is(err, auth.ErrUnknownApplication) {
			return false, err
		}
		mu.Lock()
		if len(cache) > 100_000 { // bound memory: applications are far fewer
			clear(cache)
		}
		cache[app] = entry{strict: set.StrictTypes, expires: now.Add(ttl)}
		mu.Unlock()
		return set.StrictTypes, nil
	}
}
