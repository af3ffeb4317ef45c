package config

import (
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	var cfg struct {
		Common
		Consumer
		Addr    string        `env:"ADDR, default=:8080"`
		Wait    time.Duration `env:"WAIT, default=2s"`
		Secret  string        `env:"SECRET" secret:"true"`
		Origins []string      `env:"ORIGINS"`
		Rate    float64       `env:"RATE, default=2.5"`
	}
	env := map[string]string{"ADDR": ":9", "SECRET": "k", "ORIGINS": "a, b", "EYE_TOPIC_PARTITIONS": "3"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := LoadFrom(lookup, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":9" || cfg.Wait != 2*time.Second || strings.Join(cfg.Origins, "|") != "a|b" || cfg.Partitions != 3 || cfg.TopicPrefix != "eye." || cfg.Rate != 2.5 {
		t.Fatalf("loaded %+v", cfg)
	}
	if cfg.SessionTimeout != 10*time.Second || cfg.HeartbeatInterval != time.Second {
		t.Fatalf("consumer defaults: %+v", cfg.Consumer)
	}
	if got := LogValue(&cfg).String(); !strings.Contains(got, "SECRET=***") || strings.Contains(got, "SECRET=k") {
		t.Fatalf("secret not masked: %s", got)
	}
	env["WAIT"] = "soon"
	if err := LoadFrom(lookup, new(struct {
		Wait time.Duration `env:"WAIT, default=2s"`
	})); err == nil {
		t.Fatal("bad duration accepted")
	}
}

// A variable set to the empty string takes its default, as an unset one.
func TestEmptyMeansDefault(t *testing.T) {
	var cfg struct {
		Addr string `env:"ADDR, default=:8080"`
	}
	lookup := func(string) (string, bool) { return "", true }
	if err := LoadFrom(lookup, &cfg); err != nil || cfg.Addr != ":8080" {
		t.Fatalf("addr %q, err %v", cfg.Addr, err)
	}
}

// A default written as a tag of its own would be ignored: refused.
func TestSeparateDefaultTagRefused(t *testing.T) {
	var cfg struct {
		Common
		Addr string `env:"ADDR" default:":8080"`
	}
	err := LoadFrom(func(string) (string, bool) { return "", false }, &cfg)
	if err == nil || !strings.Contains(err.Error(), "Addr") {
		t.Fatalf("err %v, want the field named", err)
	}
}

// TuneRuntime sets the GC target from EYE_GOGC, and leaves it alone when
// GOGC is set.
func TestTuneRuntime(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	Common{GCPercent: 321}.TuneRuntime()
	if got := debug.SetGCPercent(100); got != 321 {
		t.Fatalf("GC percent %d, want 321", got)
	}
	t.Setenv("GOGC", "150")
	Common{GCPercent: 321}.TuneRuntime()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent %d with GOGC set, want it untouched (100)", got)
	}
}
