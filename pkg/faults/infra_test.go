package faults

import (
	"github.com/the-eye/eye/pkg/harness"
	"github.com/the-eye/eye/pkg/stack"
)

// The broker, the Postgres cluster and the lag reading live in pkg/stack,
// shared with the benchmark (pkg/bench); the services and their
// supervisor in pkg/harness.
type (
	broker    = stack.Broker
	pgCluster = stack.Cluster
	instance  = harness.Process
)

// newBroker picks two free ports for a broker keeping its data in dir.
func newBroker(dir string) (*broker, error) { return stack.NewBroker(repoRoot, dir) }
