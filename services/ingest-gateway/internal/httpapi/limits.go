package httpapi

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/the-eye/eye/pkg/auth"
)

// RateLimitedError says a key used up its allowance; retry after RetryAfter.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("rate limit exceeded: retry after %s", e.RetryAfter)
}

// keyLimiters keeps one token bucket of events per API key, sized by the
// application's settings or the gateway's defaults.
type keyLimiters struct {
	rate  float64
	burst int

	mu   sync.Mutex
	keys map[uuid.UUID]*rate.Limiter
}

func newKeyLimiters(perSecond float64, burst int) *keyLimiters {
	return &keyLimiters{rate: perSecond, burst: burst, keys: make(map[uuid.UUID]*rate.Limiter)}
}

// admit takes n events from p's bucket, or says how long to wait. A request
// larger than the bucket is admitted when the bucket is full, so a burst
// setting below the batch limit cannot lock a client out forever.
func (k *keyLimiters) admit(p auth.Principal, n int) error {
	return k.take(context.Background(), p, n, 0)
}

// admitWaiting is admit for streams: instead of failing at once it slows
// the stream down (back-pressure), waiting up to maxWait for tokens.
func (k *keyLimiters) admitWaiting(ctx context.Context, p auth.Principal, n int, maxWait time.Duration) error {
	return k.take(ctx, p, n, maxWait)
}

func (k *keyLimiters) take(ctx context.Context, p auth.Principal, n int, maxWait time.Duration) error {
	limit, burst := k.rate, k.burst
	if p.Settings.RateLimit > 0 {
		limit = p.Settings.RateLimit
	}
	if p.Settings.RateBurst > 0 {
		burst = p.Settings.RateBurst
	}
	k.mu.Lock()
	l, ok := k.keys[p.KeyID]
	if !ok {
		if len(k.keys) > 100_000 {
			clear(k.keys)
		}
		l = rate.NewLimiter(rate.Limit(limit), burst)
		k.keys[p.KeyID] = l
	} else if l.Limit() != rate.Limit(limit) || l.Burst() != burst { // settings changed
		l.SetLimit(rate.Limit(limit))
		l.SetBurst(burst)
	}
	k.mu.Unlock()

	now := time.Now()
	if n > burst {
		if l.TokensAt(now) < float64(burst) {
			return &RateLimitedError{RetryAfter: time.Duration((float64(burst) - l.TokensAt(now)) / limit * float64(time.Second))}
		}
		n = burst
	}
	r := l.ReserveN(now, n)
	d := r.DelayFrom(now)
	if d == 0 {
		return nil
	}
	if d > maxWait {
		r.CancelAt(now)
		return &RateLimitedError{RetryAfter: d}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}
