package validate

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
)

// CachedStrictTypes answers from lookup, caching each application's answer
// for ttl, so a changed setting applies within ttl and storage sees at most
// one query per application per ttl. It is asked only for events of types
// without a schema. A failed lookup is not cached.
func CachedStrictTypes(lookup StrictTypes, ttl time.Duration) StrictTypes {
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
		strict, err := lookup(ctx, app)
		if err != nil {
			return false, err
		}
		mu.Lock()
		if len(cache) > 100_000 { // bound memory: applications are far fewer
			clear(cache)
		}
		cache[app] = entry{strict: strict, expires: now.Add(ttl)}
		mu.Unlock()
		return strict, nil
	}
}
