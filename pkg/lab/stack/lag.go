package stack

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Lag asks the broker at addr how many messages each consumer group has
// not committed yet (groups maps a group to the topic it reads): end offset
// minus committed offset, summed over partitions, the definition of
// eye_consumer_lag. A group that committed nothing on a partition counts
// from its log start.
func Lag(ctx context.Context, addr string, groups map[string]string) (map[string]int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 5 * time.Second}
	out := map[string]int64{}
	for group, topic := range groups {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return nil, err
		}
		if len(md.Topics) != 1 || md.Topics[0].Error != nil {
			return nil, fmt.Errorf("metadata of %s: %v", topic, md.Topics)
		}
		var ids []int
		var ends, starts []kafka.OffsetRequest
		for _, part := range md.Topics[0].Partitions {
			ids = append(ids, part.ID)
			ends = append(ends, kafka.LastOffsetOf(part.ID))
			starts = append(starts, kafka.FirstOffsetOf(part.ID))
		}
		committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
		if err == nil && committed.Error != nil {
			err = committed.Error
		}
		if err != nil {
			return nil, fmt.Errorf("committed offsets of %s: %w", group, err)
		}
		end, err := ListOffsets(ctx, client, topic, ends, func(o kafka.PartitionOffsets) int64 { return o.LastOffset })
		if err != nil {
			return nil, err
		}
		start, err := ListOffsets(ctx, client, topic, starts, func(o kafka.PartitionOffsets) int64 { return o.FirstOffset })
		if err != nil {
			return nil, err
		}
		var lag int64
		for _, c := range committed.Topics[topic] {
			if c.Error != nil {
				return nil, c.Error
			}
			from := c.CommittedOffset
			if from < 0 {
				from = start[c.Partition]
			}
			lag += max(0, end[c.Partition]-from)
		}
		out[group] = lag
	}
	return out, nil
}

// ListOffsets asks for reqs (one offset per partition: brokers refuse a
// partition listed twice) and returns the one pick selects, by partition.
func ListOffsets(ctx context.Context, client *kafka.Client, topic string, reqs []kafka.OffsetRequest, pick func(kafka.PartitionOffsets) int64) (map[int]int64, error) {
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", topic, err)
	}
	out := map[int]int64{}
	for _, o := range res.Topics[topic] {
		if o.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, o.Partition, o.Error)
		}
		out[o.Partition] = pick(o)
	}
	return out, nil
}

// EndOffsets is the sum of a topic's partitions' end offsets: the records
// ever written to it, when nothing was deleted.
func EndOffsets(ctx context.Context, addr, topic string) (int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 5 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return 0, fmt.Errorf("metadata of %s: %v", topic, md.Topics)
	}
	var ends []kafka.OffsetRequest
	for _, part := range md.Topics[0].Partitions {
		ends = append(ends, kafka.LastOffsetOf(part.ID))
	}
	end, err := ListOffsets(ctx, client, topic, ends, func(o kafka.PartitionOffsets) int64 { return o.LastOffset })
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, e := range end {
		sum += e
	}
	return sum, nil
}

// Sample is one series of a scraped metric: its name and labels as
// written, and its value.
type Sample struct {
	Series string
	Value  float64
}

// Scrape returns the series of a metric from a Prometheus text endpoint.
func Scrape(ctx context.Context, url, metric string) ([]Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, res.Status)
	}
	var out []Sample
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", url, line, err)
		}
		out = append(out, Sample{f[0], v})
	}
	return out, sc.Err()
}
