package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/services/query-api/internal/paging"
)

// PageLinks are the URLs of the pages around a page of a list, as Django
// REST framework's CursorPagination gives them: a GET of next (same
// Authorization header) answers the next page with the same filters,
// ordering and limit, previous the page before; null at either end.
type PageLinks struct {
	// Next is the URL of the next page; null on the last page.
	Next *string `json:"next" extensions:"x-nullable" example:"http://localhost:8081/events/?category=page+interaction&cursor=...&limit=10"`
	// Previous is the URL of the page before; null on the first page.
	Previous *string `json:"previous" extensions:"x-nullable"`
}

// linksOf is the URLs of the pages l names, relative to the request's.
func linksOf(c *gin.Context, l paging.Links) PageLinks {
	return PageLinks{Next: pageURL(c, l.Next), Previous: pageURL(c, l.Previous)}
}

// pageURL is the absolute URL of the request's list at cursor (nil: none;
// "": the first page), built as Django's build_absolute_uri builds it: the
// request's path and query (filters, ordering, limit) with cursor set, the
// Host the client asked for, and the scheme it used (X-Forwarded-Proto
// from a proxy in front, else whether the connection is TLS).
func pageURL(c *gin.Context, cursor *string) *string {
	if cursor == nil {
		return nil
	}
	q := c.Request.URL.Query()
	if *cursor == "" {
		q.Del("cursor")
	} else {
		q.Set("cursor", *cursor)
	}
	u := url.URL{Scheme: schemeOf(c.Request), Host: c.Request.Host, Path: c.Request.URL.Path,
		RawPath: c.Request.URL.RawPath, RawQuery: q.Encode()}
	s := u.String()
	return &s
}

// schemeOf is the scheme the client used: a proxy's X-Forwarded-Proto
// (http or https; anything else is ignored), else https on TLS.
func schemeOf(r *http.Request) string {
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	switch proto = strings.ToLower(strings.TrimSpace(proto)); proto {
	case "http", "https":
		return proto
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// listParams starts the parameters of a paginated list that takes
// filters: limit, cursor and the filters are known (see knownParams).
func listParams(c *gin.Context, filters ...string) *params {
	return knownParams(c, slices.Concat(filters, []string{"limit", "cursor"})...)
}

// knownParams starts the parameters of a request that takes the known
// ones: any other is refused (400 unknown_parameter, naming the known
// ones), so that a misspelled filter is not silently ignored.
func knownParams(c *gin.Context, known ...string) *params {
	var unknown []string
	for name := range c.Request.URL.Query() {
		if !slices.Contains(known, name) {
			unknown = append(unknown, strconv.Quote(name))
		}
	}
	p := &params{}
	if len(unknown) == 0 {
		return p
	}
	slices.Sort(unknown)
	known = slices.Sorted(slices.Values(known))
	if len(known) == 0 {
		known = []string{"none"}
	}
	p.field, p.code = unknown[0], "unknown_parameter"
	p.msg = "unknown parameter " + strings.Join(unknown, ", ") + "; known parameters: " + strings.Join(known, ", ")
	return p
}

// page reads limit and cursor.
func (p *params) page(c *gin.Context) paging.Request {
	pg := paging.Request{Cursor: c.Query("cursor")}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > paging.MaxLimit {
			p.bad("limit", "must be 1.."+strconv.Itoa(paging.MaxLimit))
		}
		pg.Limit = n
	}
	return pg
}
