package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/the-eye/eye/services/query-api/internal/apitime"
	"github.com/the-eye/eye/services/query-api/internal/query"
)

// StatsResult is event counts per time bucket and group.
type StatsResult struct {
	Bucket  string       `json:"bucket" enums:"minute,hour,day" example:"hour"`
	From    apitime.Time `json:"from"`
	To      apitime.Time `json:"to"`
	Group   []string     `json:"group" example:"category"`
	Results []query.Stat `json:"results"`
}

// eventStats counts events per time bucket.
//
//	@Summary		Event counts per time bucket
//	@Description	Counts of the events whose timestamp is in [from, to], per UTC bucket (minute, hour or day; each bucket named by its start) and, with group, per category and/or name; ordered by bucket, category, name. Buckets without events are left out. At most 2000 buckets per request and 20000 counts per answer (400 beyond). A read key counts its own application's events; an admin key counts all, or one application's.
//	@Tags			stats
//	@Produce		json
//	@Security		BearerKey
//	@Param			bucket			query		string	false	"minute, hour (default) or day"	Enums(minute,hour,day)	default(hour)
//	@Param			from			query		string	true	"range start, inclusive (also: timestamp__gte)"
//	@Param			to				query		string	false	"range end, inclusive (also: timestamp__lte; default: now)"
//	@Param			group			query		string	false	"category, name or category,name (default: totals)"
//	@Param			category		query		string	false	"only this category"
//	@Param			name			query		string	false	"only this name"
//	@Param			session			query		string	false	"only this session (UUID)"
//	@Param			application		query		string	false	"application id (admin keys)"
//	@Success		200				{object}	StatsResult
//	@Failure		400				{object}	httpx.ErrorBody
//	@Failure		401				{object}	httpx.ErrorBody
//	@Failure		403	{object}	httpx.ErrorBody	"the key lacks the scope this operation needs"
//	@Failure		503	{object}	httpx.ErrorBody	"keys or the database cannot be reached right now, or the query took too long: retry after Retry-After"
//	@Router			/stats/events [get]
func (a *API) eventStats(c *gin.Context) {
	var p params
	f := query.StatsFilter{
		Bucket:      query.Bucket(c.DefaultQuery("bucket", string(query.Hour))),
		Application: p.uuid(c, "application"),
		Session:     p.uuid(c, "session"),
		Category:    c.Query("category"),
		Name:        c.Query("name"),
	}
	if f.Bucket.Duration() == 0 {
		p.bad("bucket", "must be minute, hour or day")
	}
	from, to := p.time(c, "from", "timestamp__gte"), p.time(c, "to", "timestamp__lte")
	if from == nil && p.field == "" {
		p.bad("from", "required")
	}
	group := p.group(c)
	if p.failed(c) {
		return
	}
	f.From, f.To = *from, time.Now().UTC()
	if to != nil {
		f.To = *to
	}
	for _, g := range group {
		f.ByCategory = f.ByCategory || g == "category"
		f.ByName = f.ByName || g == "name"
	}
	res, err := a.store.Stats(c.Request.Context(), scopeOf(c), f)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, StatsResult{Bucket: string(f.Bucket), From: apitime.New(f.From), To: apitime.New(f.To), Group: group, Results: res})
}

// group reads the group parameter: category and/or name, comma-separated.
func (p *params) group(c *gin.Context) []string {
	out := []string{}
	s := c.Query("group")
	if s == "" {
		return out
	}
	seen := map[string]bool{}
	for _, g := range strings.Split(s, ",") {
		g = strings.TrimSpace(g)
		if (g != "category" && g != "name") || seen[g] {
			p.bad("group", "must be category, name or category,name")
			return out
		}
		seen[g] = true
		out = append(out, g)
	}
	return out
}
