package httpx

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// FailureLimiter limits failed authentications per client address, so keys
// cannot be guessed at speed, without ever refusing a valid key: an address
// (one NAT or proxy may front many clients) whose one misconfigured client
// used up the allowance still gets its valid keys served. See
// RequireScopeLimited.
//
// An address has burst failures, refilled one every `every`. A failure
// beyond them is answered 429, but only once the address's next failure is
// due (at most maxHold later): a valid key and an invalid one must be told
// apart (one is served, the other not), so what slows guessing is time,
// and each failed guess from a limited address costs its share of it.
type FailureLimiter struct {
	every   time.Duration
	burst   int
	maxHold time.Duration

	mu  sync.Mutex
	ips map[string]*rate.Limiter
}

// maxFailureHold bounds how long one failed attempt is held.
const maxFailureHold = 5 * time.Second

// NewFailureLimiter allows burst failures per address, refilled one every
// `every`.
func NewFailureLimiter(every time.Duration, burst int) *FailureLimiter {
	return &FailureLimiter{every: every, burst: burst, maxHold: maxFailureHold, ips: make(map[string]*rate.Limiter)}
}

func (f *FailureLimiter) limiter(ip string) *rate.Limiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.ips[ip]
	if !ok {
		if len(f.ips) > 100_000 { // bound memory under a flood of addresses
			clear(f.ips)
		}
		l = rate.NewLimiter(rate.Every(f.every), f.burst)
		f.ips[ip] = l
	}
	return l
}

// fail counts a failed authentication from ip. Within the allowance it
// returns limited false at once. Beyond it, it waits until the address's
// next failure is due (at most maxHold, or until ctx ends) and returns
// limited true with how long the client should wait before retrying.
func (f *FailureLimiter) fail(ctx context.Context, ip string) (retry time.Duration, limited bool) {
	r := f.limiter(ip).Reserve()
	hold := r.Delay()
	if hold == 0 {
		return 0, false
	}
	if hold > f.maxHold {
		// Failures queue up beyond the hold: this one gives its slot back
		// but still costs the caller the longest hold.
		r.Cancel()
		hold = f.maxHold
	}
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return f.every, true
}

// TooManyRequests answers 429 with Retry-After in whole seconds (at least 1).
func TooManyRequests(c *gin.Context, after time.Duration, message string) {
	c.Header("Retry-After", strconv.Itoa(int(math.Max(1, math.Ceil(after.Seconds())))))
	Abort(c, http.StatusTooManyRequests, "rate_limited", message)
}
