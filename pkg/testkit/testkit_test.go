package testkit

import (
	"strings"
	"testing"
)

func TestEYE_TEST_BROKERChoosesTheBroker(t *testing.T) {
	const elsewhere = "192.0.2.1:9092" // TEST-NET: nothing answers there
	for _, tc := range []struct {
		name, choice, brokers string
		source, err           string
	}{
		{name: "kfake wins over EYE_KAFKA_BROKERS", choice: "kfake", brokers: elsewhere, source: "kfake"},
		{name: "env", choice: "env", brokers: elsewhere, source: "env"},
		{name: "unset takes EYE_KAFKA_BROKERS", choice: "", brokers: elsewhere, source: "env"},
		{name: "env without brokers", choice: "env", err: "needs EYE_KAFKA_BROKERS"},
		{name: "unknown", choice: "apache", brokers: elsewhere, err: "want kfake, env or testcontainers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("EYE_TEST_BROKER", tc.choice)
			t.Setenv("EYE_KAFKA_BROKERS", tc.brokers)
			brokers, err := startKafka()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if KafkaSource != tc.source {
				t.Fatalf("KafkaSource = %q, want %q", KafkaSource, tc.source)
			}
			if fromEnv := strings.Join(brokers, ",") == elsewhere; fromEnv != (tc.source == "env") {
				t.Fatalf("brokers %v for source %s", brokers, tc.source)
			}
		})
	}
}
