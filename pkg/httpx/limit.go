package httpx

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// FailureLimiter rate-limits failed authentication per client address, so
// keys cannot be guessed at speed. Place LimitAuthFailures before the
// authenticating middleware.
type FailureLimiter struct {
	every time.Duration
	burst int

	mu  sync.Mutex
	ips map[string]*rate.Limiter
}

// NewFailureLimiter allows burst failures per address, refilled one every
// `every`.
func NewFailureLimiter(every time.Duration, burst int) *FailureLimiter {
	return &FailureLimiter{every: every, burst: burst, ips: make(map[string]*rate.Limiter)}
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

// LimitAuthFailures answers 429 to an address whose failed attempts used up
// its allowance, without checking its key, and counts each 401 it gets.
func LimitAuthFailures(f *FailureLimiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		l := f.limiter(c.ClientIP())
		if l.Tokens() < 1 {
			TooManyRequests(c, f.every, "too many failed authentications from this address")
			return
		}
		c.Next()
		if c.Writer.Status() == http.StatusUnauthorized {
			l.Allow()
		}
	}
}

// TooManyRequests answers 429 with Retry-After in whole seconds (at least 1).
func TooManyRequests(c *gin.Context, after time.Duration, message string) {
	c.Header("Retry-After", strconv.Itoa(int(math.Max(1, math.Ceil(after.Seconds())))))
	Abort(c, http.StatusTooManyRequests, "rate_limited", message)
}
