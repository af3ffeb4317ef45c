package client

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by New to zero-valued Config fields.
const (
	DefaultBatchSize       = 100
	DefaultFlushInterval   = time.Second
	DefaultBufferSize      = 10_000
	DefaultMaxRetries      = 10
	DefaultMaxRetryElapsed = time.Minute
	DefaultRetryBaseDelay  = 100 * time.Millisecond
	DefaultRetryMaxDelay   = 10 * time.Second
	// DefaultHTTPTimeout bounds one HTTP attempt of the default HTTP client.
	DefaultHTTPTimeout = 30 * time.Second
)

// Config configures a Client. Zero values take the Default* constants;
// New validates the rest and never panics.
type Config struct {
	// Endpoint is the ingest-gateway's base URL, e.g.
	// "https://eye.example.com" or "http://localhost:8080" (required).
	// Events are posted to Endpoint + "/events/"; a path prefix is kept.
	Endpoint string
	// WriteKey is the application's write key (eye_w_…), sent as
	// "Authorization: Bearer <WriteKey>" (required).
	WriteKey string
	// BatchSize is the most events sent in one request (default 100). A
	// batch is sent as soon as it is full, or FlushInterval after its first
	// event, whichever comes first. It must not exceed BufferSize, nor the
	// gateway's EYE_MAX_BATCH_EVENTS (10 000 by default).
	BatchSize int
	// FlushInterval is the longest an event waits for its batch to fill
	// (default 1 s).
	FlushInterval time.Duration
	// BufferSize is the most events waiting to be sent, not counting the
	// batch in flight (default 10 000). When it is full, Track drops the new
	// event and returns ErrBufferFull.
	BufferSize int
	// MaxRetries is how many times a batch is retried after its first
	// attempt (default 10); a negative value disables retries.
	MaxRetries int
	// MaxRetryElapsed bounds the time from a batch's first attempt to the
	// start of its last retry (default 1 min). A retry that could not start
	// within it is not made: the batch is given up and counted as Failed.
	MaxRetryElapsed time.Duration
	// RetryBaseDelay and RetryMaxDelay shape the exponential backoff with
	// full jitter: retry n waits a random duration in
	// [0, min(RetryMaxDelay, RetryBaseDelay·2ⁿ)] (defaults 100 ms and 10 s),
	// unless the gateway sent Retry-After, which is honoured instead.
	RetryBaseDelay time.Duration
	// RetryMaxDelay caps the backoff; see RetryBaseDelay.
	RetryMaxDelay time.Duration
	// HTTPClient sends the requests. The default has a 30 s overall timeout
	// and dial, TLS-handshake and response-header timeouts; its idle
	// connections are closed by Close. A caller-supplied client is used as
	// is: give it a Timeout, or a hung gateway holds a batch until Close.
	HTTPClient *http.Client
	// Logger receives delivery problems (retries, rejected events, batches
	// given up). Nil discards them.
	Logger *slog.Logger
	// Gzip compresses request bodies and sends "Content-Encoding: gzip".
	// Off by default: turn it on only for a gateway that accepts it.
	Gzip bool
}

// withDefaults validates cfg and returns it with defaults filled in, and the
// URL events are posted to.
func (cfg Config) withDefaults() (Config, string, error) {
	eventsURL, err := eventsURL(cfg.Endpoint)
	if err != nil {
		return Config{}, "", err
	}
	if cfg.WriteKey == "" {
		return Config{}, "", fmt.Errorf("%w: WriteKey is required", ErrInvalidConfig)
	}
	for _, r := range cfg.WriteKey {
		if r <= ' ' || r > '~' {
			return Config{}, "", fmt.Errorf("%w: WriteKey holds a character that is not printable ASCII", ErrInvalidConfig)
		}
	}
	for _, f := range []struct {
		name  string
		value int64
	}{
		{"BatchSize", int64(cfg.BatchSize)},
		{"BufferSize", int64(cfg.BufferSize)},
		{"FlushInterval", int64(cfg.FlushInterval)},
		{"MaxRetryElapsed", int64(cfg.MaxRetryElapsed)},
		{"RetryBaseDelay", int64(cfg.RetryBaseDelay)},
		{"RetryMaxDelay", int64(cfg.RetryMaxDelay)},
	} {
		if f.value < 0 {
			return Config{}, "", fmt.Errorf("%w: %s must not be negative", ErrInvalidConfig, f.name)
		}
	}
	setDefault(&cfg.BatchSize, DefaultBatchSize)
	setDefault(&cfg.BufferSize, DefaultBufferSize)
	setDefault(&cfg.FlushInterval, DefaultFlushInterval)
	setDefault(&cfg.MaxRetries, DefaultMaxRetries)
	setDefault(&cfg.MaxRetryElapsed, DefaultMaxRetryElapsed)
	setDefault(&cfg.RetryBaseDelay, DefaultRetryBaseDelay)
	setDefault(&cfg.RetryMaxDelay, DefaultRetryMaxDelay)
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.BatchSize > cfg.BufferSize {
		return Config{}, "", fmt.Errorf("%w: BatchSize %d is over BufferSize %d", ErrInvalidConfig, cfg.BatchSize, cfg.BufferSize)
	}
	if cfg.RetryMaxDelay < cfg.RetryBaseDelay {
		return Config{}, "", fmt.Errorf("%w: RetryMaxDelay %s is under RetryBaseDelay %s", ErrInvalidConfig, cfg.RetryMaxDelay, cfg.RetryBaseDelay)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, eventsURL, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// eventsURL checks the gateway base URL and returns its /events/ route.
func eventsURL(endpoint string) (string, error) {
	if endpoint == "" {
		return "", fmt.Errorf("%w: Endpoint is required", ErrInvalidConfig)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("%w: Endpoint: %w", ErrInvalidConfig, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w: Endpoint %q is not an http(s) URL with a host", ErrInvalidConfig, endpoint)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%w: Endpoint %q must not carry a query, fragment or user info", ErrInvalidConfig, endpoint)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/events/"
	u.RawPath = ""
	return u.String(), nil
}

// defaultHTTPClient is the HTTP client used when Config.HTTPClient is nil.
func defaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout: DefaultHTTPTimeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          10,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 20 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}
