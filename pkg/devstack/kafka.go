package devstack

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka is an in-process Kafka-protocol broker (kfake). It speaks the real
// protocol, so the services connect to it exactly as to Apache Kafka.
type Kafka struct {
	c *kfake.Cluster
}

// StartKafka starts a single-broker kfake cluster on port (0: any free
// port), persisting to dataDir when it is not empty.
func StartKafka(dataDir string, port int) (*Kafka, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(6), kfake.AllowAutoTopicCreation()}
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	return &Kafka{c: c}, nil
}

// Brokers returns the broker addresses.
func (k *Kafka) Brokers() []string { return k.c.ListenAddrs() }

// Close stops the broker, flushing its data directory.
func (k *Kafka) Close() { k.c.Close() }
