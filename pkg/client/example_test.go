package client_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/the-eye/eye/pkg/client"
)

// Example embeds the SDK in an application: one Client for the process,
// Track on every user action, Close on shutdown. It is compiled, not run:
// it needs a gateway at localhost:8080 (`make run`).
func Example() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	c, err := client.New(client.Config{
		Endpoint: "http://localhost:8080",
		WriteKey: os.Getenv("EYE_WRITE_KEY"), // eye_w_…
		Logger:   logger,
	})
	if err != nil {
		logger.Error("eye client", "error", err)
		return
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			logger.Error("eye client: close", "error", err)
		}
		logger.Info("eye client stopped", "stats", c.Stats())
	}()

	err = c.Track(client.Event{
		SessionID: "9ab1b579-7021-4e0c-8ea1-2ac9f52f3058",
		Category:  "page interaction",
		Name:      "pageview",
		Data:      map[string]any{"host": "www.consumeraffairs.com", "path": "/"},
		Timestamp: time.Now(),
	})
	switch {
	case errors.Is(err, client.ErrBufferFull):
		// The gateway is unreachable or slow and 10 000 events are waiting:
		// this one is dropped and counted in Stats().Dropped.
	case err != nil:
		logger.Warn("eye client: event not tracked", "error", err)
	}
}
