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
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	swaggerFiles "github.com/swaggo/files"
	ginSwagger "github.com/swaggo/gin-swagger"
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
// structured access logs, panic recovery into a JSON 500, JSON 404/405, no
// trailing-slash redirects, and GET /healthz.
func NewEngine(log *slog.Logger) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(requestID(), accessLog(log), recovery(log))
	r.NoRoute(func(c *gin.Context) { Abort(c, http.StatusNotFound, "not_found", "no such route") })
	r.NoMethod(func(c *gin.Context) { Abort(c, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route") })
	r.GET("/healthz", Healthz)
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

// Handle registers h for path both without and with a trailing slash, so
// clients of the seed (which used trailing slashes) need no redirect.
func Handle(r gin.IRoutes, method, path string, h ...gin.HandlerFunc) {
	path = strings.TrimSuffix(path, "/")
	r.Handle(method, path, h...)
	r.Handle(method, path+"/", h...)
}

// Docs serves the swagger UI at /docs/ and the spec at /docs/doc.json for
// the swag instance registered under name.
func Docs(r *gin.Engine, name string) {
	h := ginSwagger.WrapHandler(swaggerFiles.NewHandler(), ginSwagger.InstanceName(name))
	serve := func(c *gin.Context) {
		if p := c.Param("any"); p == "" || p == "/" {
			c.Request.RequestURI = "/docs/index.html"
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

// Serve runs an HTTP server on addr until ctx is cancelled, then stops
// accepting and drains in-flight requests for up to 15 s.
func Serve(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, h, log)
}

// ServeListener is Serve on an existing listener.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
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
