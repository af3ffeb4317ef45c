package faults

import (
	"github.com/the-eye/eye/pkg/lab/harness"
	"github.com/the-eye/eye/pkg/lab/stack"
)

// The broker, the Postgres cluster and the lag reading live in pkg/lab/stack,
// shared with the benchmark (pkg/lab/bench); the services and their
// supervisor in pkg/lab/harness.
type (
	broker    = stack.Broker
	pgCluster = stack.Cluster
	instance  = harness.Process
)

// newBroker picks two free ports for a broker keeping its data in dir.
func newBroker(dir string) (*broker, error) { return stack.NewBroker(repoRoot, dir) }
