// Package httpx is the HTTP plumbing shared by The Eye's services: a gin
// engine with JSON errors, request ids and access logs, routes that answer
// with and without a trailing slash, API-key authentication, swagger UI and
// a server that drains gracefully.
package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	swaggerFiles "github.com/swaggo/files"
	ginSwagger "github.com/swaggo/gin-swagger"

	"github.com/the-eye/eye/pkg/metrics"
)

// ErrorBody is the JSON error every service answers with.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail names an error with a stable code and a human message.
type ErrorDetail struct {
	Code    string `json:"code" example:"invalid_request"`
	Message string `json:"message" example:"what went wrong"`
}

// Abort answers with a JSON error and stops the handler chain.
func Abort(c *gin.Context, status int, code, message string) {
	c.AbortWithStatusJSON(status, ErrorBody{Error: ErrorDetail{Code: code, Message: message}})
}

// NewEngine returns a gin engine with the shared middleware: request ids,
// request metrics on reg, structured access logs, panic recovery into a JSON
// 500, JSON 404/405, no trailing-slash redirects, GET /healthz and GET
// /metrics (reg's metrics, unauthenticated). reg must not be nil.
func NewEngine(log *slog.Logger, reg *metrics.Registry) *gin.Engine {
	if reg == nil {
		panic("httpx: NewEngine needs a metrics registry")
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(requestID(), requestMetrics(reg), accessLog(log), recovery(log))
	r.NoRoute(func(c *gin.Context) { Abort(c, http.StatusNotFound, "not_found", "no such route") })
	r.NoMethod(func(c *gin.Context) {
		Abort(c, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
	})
	r.GET("/healthz", Healthz)
	r.GET("/metrics", gin.WrapH(reg.Handler()))
	return r
}

// Healthz answers 200 while the process is alive.
//
//	@Summary	Liveness probe
//	@Tags		health
//	@Produce	json
//	@Success	200	{object}	map[string]string
//	@Router		/healthz [get]
func Healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// readyTimeout bounds each readiness check.
const readyTimeout = 2 * time.Second

// readyCheck is one named readiness check; running keeps a check that
// outlives its deadline from being started again until it returns.
type readyCheck struct {
	name    string
	fn      func(context.Context) error
	running atomic.Bool
}

// Readyz returns a readiness handler for GET /readyz. It runs every check
// concurrently under a 2 s timeout and answers 200 {"status":"ready"} when
// all pass, or a 503 JSON error naming the dependencies that failed. The
// answer never waits past the timeout, even for a check that ignores its
// context (lib/pq's Ping does, against a server that stopped answering);
// such a check is not started again until it has returned. The failures'
// errors are logged, not answered: the endpoint is unauthenticated. It
// panics on a nil check.
func Readyz(log *slog.Logger, checks map[string]func(context.Context) error) gin.HandlerFunc {
	list := make([]*readyCheck, 0, len(checks))
	for name, fn := range checks {
		if fn == nil {
			panic("httpx: nil readiness check " + name)
		}
		list = append(list, &readyCheck{name: name, fn: fn})
	}
	slices.SortFunc(list, func(a, b *readyCheck) int { return strings.Compare(a.name, b.name) })
	type result struct {
		i   int
		err error
	}
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
		defer cancel()
		errs := make([]error, len(list))
		results := make(chan result, len(list)) // buffered: a late check never blocks
		pending := map[int]bool{}
		for i, check := range list {
			if !check.running.CompareAndSwap(false, true) {
				errs[i] = errors.New("the previous check has not returned yet")
				continue
			}
			pending[i] = true
			go func() {
				defer check.running.Store(false)
				results <- result{i, runCheck(ctx, check.fn)}
			}()
		}
	wait:
		for len(pending) > 0 {
			select {
			case r := <-results:
				errs[r.i] = r.err
				delete(pending, r.i)
			case <-ctx.Done():
				for i := range pending {
					errs[i] = fmt.Errorf("no answer within %s", readyTimeout)
				}
				break wait
			}
		}
		var failed []string
		for i, err := range errs {
			if err != nil {
				failed = append(failed, list[i].name)
				log.Warn("not ready", "dependency", list[i].name, "err", err)
			}
		}
		if len(failed) > 0 {
			Abort(c, http.StatusServiceUnavailable, "unavailable", "not ready: "+strings.Join(failed, ", ")+" unreachable")
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
	}
}

// runCheck runs check, turning a panic into an error: it runs outside the
// handler goroutine, where the recovery middleware cannot catch it.
func runCheck(ctx context.Context, check func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("check panicked: %v", v)
		}
	}()
	return check(ctx)
}

// Handle registers h for path both without and with a trailing slash, so
// clients of the seed (which used trailing slashes) need no redirect.
func Handle(r gin.IRoutes, method, path string, h ...gin.HandlerFunc) {
	path = strings.TrimSuffix(path, "/")
	r.Handle(method, path, h...)
	r.Handle(method, path+"/", h...)
}

// Docs serves the swagger UI at /docs/, the Swagger 2 spec at
// /docs/doc.json for the swag instance registered under name, and openapi3,
// the same spec as OpenAPI 3, at /docs/openapi.json.
func Docs(r *gin.Engine, name string, openapi3 []byte) {
	h := ginSwagger.WrapHandler(swaggerFiles.NewHandler(), ginSwagger.InstanceName(name))
	serve := func(c *gin.Context) {
		switch c.Param("any") {
		case "", "/":
			c.Request.RequestURI = "/docs/index.html"
		case "/openapi.json":
			c.Data(http.StatusOK, "application/json; charset=utf-8", openapi3)
			return
		}
		h(c)
	}
	r.GET("/docs", serve)
	r.GET("/docs/*any", serve)
}

const requestIDHeader = "X-Request-Id"

func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(requestIDHeader)
		if id == "" || len(id) > 128 {
			id = uuid.NewString()
		}
		c.Set(requestIDHeader, id)
		c.Header(requestIDHeader, id)
		c.Next()
	}
}

// requestMetrics records every request on reg: count by route, method and
// status, latency by route and method, and declared body size by route.
// Labels are bounded whatever clients send: the route is the matched
// pattern (never the URL) and unknown methods become "other".
func requestMetrics(reg *metrics.Registry) gin.HandlerFunc {
	requests := reg.Counter("eye_http_requests_total",
		"HTTP requests answered, by route pattern (unmatched: no route), method and status code.",
		"route", "method", "status")
	duration := reg.Histogram("eye_http_request_duration_seconds",
		"Time to answer an HTTP request, from routing to the end of the handler chain.",
		[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		"route", "method")
	bodyBytes := reg.Histogram("eye_http_request_body_bytes",
		"Declared size (Content-Length) of HTTP request bodies; bodies of unknown length are not observed.",
		prometheus.ExponentialBuckets(64, 4, 10), // 64 B … 16 MiB
		"route")
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route, method := routeLabel(c), methodLabel(c.Request.Method)
		requests.WithLabelValues(route, method, strconv.Itoa(c.Writer.Status())).Inc()
		duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		if n := c.Request.ContentLength; n > 0 || n == 0 && carriesBody(c.Request.Method) {
			bodyBytes.WithLabelValues(route).Observe(float64(n))
		}
	}
}

// routeLabel names the route c matched for metrics: its pattern without a
// trailing slash (Handle registers both spellings of one route), or
// "unmatched" when no route took the request (404, 405).
func routeLabel(c *gin.Context) string {
	route := c.FullPath()
	if route == "" {
		return "unmatched"
	}
	if len(route) > 1 {
		route = strings.TrimSuffix(route, "/")
	}
	return route
}

// methodLabel bounds the method label: clients may send any token.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// carriesBody reports whether requests with method m are expected to have a
// body, so that an empty one (Content-Length: 0) is worth observing.
func carriesBody(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		level := slog.LevelDebug
		if c.Writer.Status() >= 500 {
			level = slog.LevelWarn
		}
		if !log.Enabled(c.Request.Context(), level) {
			return // the usual case at info: no attributes built for nothing
		}
		// The URL's query is not logged: it may carry key material.
		log.Log(c.Request.Context(), level, "http request",
			"request_id", c.GetString(requestIDHeader), "method", c.Request.Method, "route", route,
			"status", c.Writer.Status(), "duration_ms", float64(time.Since(start).Microseconds())/1000,
			"bytes_in", c.Request.ContentLength, "bytes_out", c.Writer.Size())
	}
}

func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				log.Error("panic in handler", "request_id", c.GetString(requestIDHeader), "panic", fmt.Sprint(v))
				Abort(c, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		c.Next()
	}
}

// Timeouts bound every connection of a server. A route that may take
// longer to read its request or write its answer (an NDJSON stream) lifts
// the read and write deadlines of its own request with ExtendDeadlines.
type Timeouts struct {
	ReadHeader time.Duration // to receive a request's headers
	Read       time.Duration // to receive a whole request, body included
	Write      time.Duration // from the end of the headers to the end of the answer
	Idle       time.Duration // a kept-alive connection waiting for its next request
}

// DefaultTimeouts are what Serve uses.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 2 * time.Minute, Write: 2 * time.Minute, Idle: 2 * time.Minute}

// ExtendDeadlines lets c's request be read until d from now and its answer
// be written until d plus answerGrace from now, replacing the server's
// Read and Write timeouts for this request only. On a connection without
// deadlines (a test recorder) it does nothing.
func ExtendDeadlines(c *gin.Context, d time.Duration) {
	rc := http.NewResponseController(c.Writer)
	now := time.Now()
	if err := rc.SetReadDeadline(now.Add(d)); err != nil {
		return // http.ErrNotSupported: no connection to set deadlines on
	}
	_ = rc.SetWriteDeadline(now.Add(d + answerGrace))
}

// answerGrace is how long ExtendDeadlines leaves to write the answer after
// the time to read the request ran out.
const answerGrace = 10 * time.Second

// Serve runs an HTTP server on addr with DefaultTimeouts until ctx is
// cancelled, then stops accepting and drains in-flight requests for up to
// 15 s.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, h, log, DefaultTimeouts)
}

// ServeListener is Serve on an existing listener, with the given timeouts.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, t Timeouts) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("http listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("http serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// AnyJSON documents a value that may be any JSON value, e.g. a JSON Schema
// (which may be the boolean true or false). The swagger generator maps
// json.RawMessage to it (services/*/.swaggo), since it cannot tell what the
// raw bytes hold; a field whose value is always an object says so with
// `swaggertype:"object"`.
type AnyJSON any
