// Package stack runs the pieces of The Eye as real processes on one
// machine, for the suites that measure or break them (pkg/faults, the
// benchmark in pkg/bench): a real Apache Kafka broker through
// scripts/kafka.sh on ports and a data directory of its own, a private
// Postgres cluster (pkg/devstack) that can also be crashed or frozen, the
// service binaries built from the working tree and run under a supervisor,
// and the consumer-group lag as the broker sees it.
package stack
