package httpx

import (
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// JSONMediaTypes are the request body types a JSON endpoint accepts:
// application/json and any structured-syntax JSON type (application/*+json,
// e.g. application/merge-patch+json).
var JSONMediaTypes = []string{"application/json", "application/*+json"}

// AcceptBodies answers 415 unsupported_media_type, naming the accepted
// types, to a request whose body is declared (Content-Type) as none of
// types. "type/*+suffix" matches every type with that structured-syntax
// suffix. A request without a body, or without a Content-Type (the body is
// then taken for the first accepted type), passes.
func AcceptBodies(types ...string) gin.HandlerFunc {
	message := "Content-Type must be " + strings.Join(types, ", ")
	return func(c *gin.Context) {
		ct := c.GetHeader("Content-Type")
		if ct == "" || c.Request.ContentLength == 0 || c.Request.Body == nil || c.Request.Body == http.NoBody {
			c.Next()
			return
		}
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !mediaTypeIn(mt, types) {
			Abort(c, http.StatusUnsupportedMediaType, "unsupported_media_type", message+" (got "+truncate(ct, 60)+")")
			return
		}
		c.Next()
	}
}

func mediaTypeIn(mt string, types []string) bool {
	if slices.Contains(types, mt) {
		return true
	}
	for _, t := range types {
		if prefix, suffix, ok := strings.Cut(t, "*"); ok && strings.HasPrefix(mt, prefix) && strings.HasSuffix(mt, suffix) && len(mt) > len(prefix)+len(suffix) {
			return true
		}
	}
	return false
}

// truncate cuts s to at most n bytes of valid UTF-8, marking the cut.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
