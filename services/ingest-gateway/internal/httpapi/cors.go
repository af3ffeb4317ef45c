package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/pkg/httpx"
)

// preflight answers CORS preflight requests. A preflight carries no key, so
// it cannot know the application: it allows the asking origin, and the real
// request is then checked against the application's allowed origins.
func preflight(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" {
		httpx.Abort(c, http.StatusBadRequest, "not_a_preflight", "OPTIONS is for CORS preflight requests, which carry an Origin header")
		return
	}
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding")
	h.Set("Access-Control-Max-Age", "600")
	h.Add("Vary", "Origin")
	c.AbortWithStatus(http.StatusNoContent)
}

// checkOrigin lets browser requests through only from the application's
// allowed origins ("*" allows any) and sets the CORS answer headers.
// Requests without an Origin (servers, mobile apps) pass.
func checkOrigin(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" {
		c.Next()
		return
	}
	allowed := httpx.PrincipalOf(c).Settings.AllowedOrigins
	if !slices.Contains(allowed, "*") && !slices.ContainsFunc(allowed, func(a string) bool { return sameOrigin(a, origin) }) {
		httpx.Abort(c, http.StatusForbidden, "origin_not_allowed", "origin "+origin+" is not allowed for this application")
		return
	}
	c.Header("Access-Control-Allow-Origin", origin)
	c.Header("Vary", "Origin")
	c.Next()
}

func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}

// beaconKey supports navigator.sendBeacon, which cannot set headers: a
// write key may come in the `key` query parameter instead. Only write keys:
// a URL ends up in logs and histories, so a key there must not be able to
// read anything.
func beaconKey(c *gin.Context) {
	key := c.Query("key")
	if key == "" || c.GetHeader("Authorization") != "" {
		c.Next()
		return
	}
	if !strings.HasPrefix(key, "eye_w_") {
		httpx.Abort(c, http.StatusUnauthorized, "unauthorized", "only write keys (eye_w_…) may be passed in the URL")
		return
	}
	c.Request.Header.Set("Authorization", "Bearer "+key)
	c.Set(fromURLKey, true)
	c.Next()
}

const fromURLKey = "eye.key_from_url"
