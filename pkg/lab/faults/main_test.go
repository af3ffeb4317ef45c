// Package faults is The Eye's fault-injection suite (`make test-faults`).
//
// It runs the ingest-gateway, validator and writer as processes against a
// real Apache Kafka broker (scripts/kafka.sh) and a private, durable
// Postgres cluster (pkg/devstack), both started by the suite on ports and
// data directories of its own. Under a steady load of events with
// per-session sequence numbers and client ids, each scenario injects faults
// (SIGKILL of the broker, Postgres restarts and a 60 s freeze, SIGKILL of
// the consumers mid-batch, consumer churn, SIGKILL of the gateway during an
// NDJSON stream) and then checks, from Postgres and from the topics
// themselves, that every acknowledged event is stored exactly once and in
// order, and how long the pipeline took to recover. The results are
// printed as a table and written into docs/reliability.md, which also
// defines every figure.
//
// The suite is slow (about ten minutes) and needs Java, Maven's cache of
// the Kafka jars and the PostgreSQL server binaries, so it runs only when
// EYE_FAULTS=1; plain `go test ./...` skips it.
package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/the-eye/eye/pkg/lab/harness"
)

var (
	// binDir holds the service binaries, built once per run.
	binDir string
	// repoRoot is the repository root (scripts/, docs/).
	repoRoot string
	// builtFrom names the commit the binaries were built from, taken when
	// they are built (commits may land while the suite runs).
	builtFrom string
)

// enabled reports whether the suite should run.
func enabled() bool { return os.Getenv("EYE_FAULTS") == "1" }

func TestMain(m *testing.M) {
	if !enabled() {
		os.Exit(m.Run()) // TestFaults skips itself
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "eye-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	builtFrom = gitDescribe()
	// query-api is not run: the checks read Postgres and the topics
	// directly.
	if err := harness.Build(root, dir, harness.Gateway, harness.Validator, harness.Writer); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
