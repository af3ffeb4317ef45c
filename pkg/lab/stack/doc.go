// Package stack runs the infrastructure under The Eye as real processes on
// one machine, for the suites that measure or break it (pkg/lab/faults, the
// benchmark in pkg/lab/bench): a real Apache Kafka broker through
// scripts/kafka.sh on ports and a data directory of its own, a private
// Postgres cluster (pkg/devstack) that can also be crashed or frozen, and
// the consumer-group lag as the broker sees it; plus the /proc and polling
// helpers they share. The services themselves run under pkg/lab/harness.
package stack
