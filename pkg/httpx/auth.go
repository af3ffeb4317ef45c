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
// 401 without a valid key, 403 with a key lacking the scope, 503 when keys
// cannot be checked.
func RequireScope(a *auth.Authenticator, scope auth.Scope) gin.HandlerFunc {
	return func(c *gin.Context) {
		key, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok {
			key = ""
		}
		p, err := a.Authenticate(c.Request.Context(), strings.TrimSpace(key))
		switch {
		case errors.Is(err, auth.ErrNoKey):
			c.Header("WWW-Authenticate", `Bearer realm="the-eye"`)
			Abort(c, http.StatusUnauthorized, "unauthorized", "missing 'Authorization: Bearer <key>' header")
			return
		case errors.Is(err, auth.ErrUnknownKey):
			c.Header("WWW-Authenticate", `Bearer realm="the-eye", error="invalid_token"`)
			Abort(c, http.StatusUnauthorized, "unauthorized", "unknown, revoked or expired API key")
			return
		case err != nil:
			c.Header("Retry-After", "1")
			Abort(c, http.StatusServiceUnavailable, "unavailable", "API keys cannot be checked right now")
			return
		case !p.Has(scope):
			Abort(c, http.StatusForbidden, "forbidden", "this key lacks the '"+string(scope)+"' scope")
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

// PrincipalOf returns the principal RequireScope authenticated.
func PrincipalOf(c *gin.Context) auth.Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(auth.Principal)
	return pr
}
