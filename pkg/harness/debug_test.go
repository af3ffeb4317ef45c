package harness_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/the-eye/eye/pkg/contract"
	"github.com/the-eye/eye/pkg/harness"
	"github.com/the-eye/eye/pkg/stack"
)

func debugLag(t *testing.T, p *harness.Pipeline) {
	pre := p.Getenv("EYE_TOPIC_PREFIX")
	tp := contract.NewTopics(pre)
	for k := 0; k < 18; k++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		lag, err := stack.Lag(ctx, strings.Split(p.Getenv("EYE_KAFKA_BROKERS"), ",")[0], map[string]string{pre + "validator": tp.Raw, pre + "writer.events": tp.Events})
		cancel()
		raw, _ := stack.EndOffsets(context.Background(), strings.Split(p.Getenv("EYE_KAFKA_BROKERS"), ",")[0], tp.Raw)
		ev, _ := stack.EndOffsets(context.Background(), strings.Split(p.Getenv("EYE_KAFKA_BROKERS"), ",")[0], tp.Events)
		t.Logf("%s lag %v %v raw=%d events=%d", time.Now().Format("15:04:05"), lag, err, raw, ev)
		for _, s := range []harness.Service{harness.Validator, harness.Writer} {
			for _, i := range p.Instances(s) {
				sm, _ := stack.Scrape(context.Background(), i.URL+"/metrics", "eye_consumer")
				t.Logf("  %s %v", i.Name, sm)
			}
		}
		time.Sleep(10 * time.Second)
	}
}
