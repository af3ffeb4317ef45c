package httpx

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/pkg/auth"
)

const principalKey = "eye.principal"

// RequireScope authenticates the request's bearer key and requires scope:
// 401 without a valid key (the message says what is wrong with the
// Authorization header), 403 with a key lacking the scope, 503 when keys
// cannot be checked.
func RequireScope(a *auth.Authenticator, scope auth.Scope) gin.HandlerFunc {
	return requireScope(a, scope, nil)
}

// RequireScopeLimited is RequireScope with failed authentications limited
// per client address by f (see FailureLimiter): a valid key is always
// served, whatever its address's failures; a failed attempt from an address
// over its allowance is held, then answered 429.
func RequireScopeLimited(a *auth.Authenticator, scope auth.Scope, f *FailureLimiter) gin.HandlerFunc {
	if f == nil {
		panic("httpx: RequireScopeLimited needs a FailureLimiter")
	}
	return requireScope(a, scope, f)
}

func requireScope(a *auth.Authenticator, scope auth.Scope, f *FailureLimiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		key, problem := bearerKey(c.GetHeader("Authorization"))
		var p auth.Principal
		err := auth.ErrNoKey
		if problem == "" {
			// The key is looked up whatever the address's failures: a
			// valid key is never refused (lookups of unknown keys are
			// cached, so a guessing flood does not reach the database).
			p, err = a.Authenticate(c.Request.Context(), key)
		}
		switch {
		case errors.Is(err, auth.ErrNoKey):
			c.Header("WWW-Authenticate", `Bearer realm="the-eye"`)
			unauthorized(c, f, problem)
			return
		case errors.Is(err, auth.ErrUnknownKey):
			c.Header("WWW-Authenticate", `Bearer realm="the-eye", error="invalid_token"`)
			unauthorized(c, f, "unknown, revoked or expired API key")
			return
		case err != nil:
			c.Header("Retry-After", "1")
			Abort(c, http.StatusServiceUnavailable, "unavailable", "API keys cannot be checked right now")
			return
		case !p.Has(scope):
			Abort(c, http.StatusForbidden, "forbidden", scopeMessage(scope))
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

// unauthorized answers a failed authentication: 401 with message, or, when
// f says the address has used up its allowance, 429 after f's hold.
func unauthorized(c *gin.Context, f *FailureLimiter, message string) {
	if f != nil {
		if retry, limited := f.fail(c.Request.Context(), c.ClientIP()); limited {
			TooManyRequests(c, retry, "too many failed authentications from this address: "+message)
			return
		}
	}
	Abort(c, http.StatusUnauthorized, "unauthorized", message)
}

// scopeMessage says which scope a key lacks and which key has it.
func scopeMessage(scope auth.Scope) string {
	m := "this key lacks the '" + string(scope) + "' scope"
	switch scope {
	case auth.ScopeAdmin:
		m += ": this operation needs an admin key (eye_a_…)"
	case auth.ScopeRead:
		m += ": this operation needs a read or admin key (eye_r_…, eye_a_…)"
	case auth.ScopeWrite:
		m += ": this operation needs a write key (eye_w_…)"
	}
	return m
}

// bearerKey parses an Authorization header value of the form
// "Bearer <key>" (the scheme in any case, RFC 7235). It returns the key, or
// "" and what is wrong with the header.
func bearerKey(header string) (key, problem string) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", "missing Authorization header: send 'Authorization: Bearer <key>'"
	}
	scheme, rest, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		switch {
		case strings.HasPrefix(scheme, "eye_"): // not echoed: it is key material
			return "", "Authorization scheme must be Bearer (got a bare key): send 'Authorization: Bearer <key>'"
		}
		return "", "Authorization scheme must be Bearer (got " + truncate(scheme, 20) + ")"
	}
	if key = strings.TrimSpace(rest); key == "" {
		return "", "missing key after Bearer: send 'Authorization: Bearer <key>'"
	}
	return key, ""
}

// PrincipalOf returns the principal RequireScope authenticated.
func PrincipalOf(c *gin.Context) auth.Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(auth.Principal)
	return pr
}
