// Package pipelinetest runs Kafka for tests: an in-process kfake cluster that
// speaks the real Kafka protocol, and a franz-go producer that keys Segment
// events as the ingest does.
package pipelinetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/prechat/prechat/mapping"
)

// Name returns a name unique to this test run, for topics and groups.
func Name(t testing.TB, kind string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(name) > 60 {
		name = name[:60]
	}
	return kind + "-" + name + "-" + hex.EncodeToString(b)
}

// NewCluster starts a one-broker kfake cluster with the topics created with
// the given number of partitions, and returns its bootstrap addresses. It is
// closed when the test ends.
func NewCluster(t testing.TB, partitions int32, topics ...string) []string {
	t.Helper()
	return newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
}

// NewSASLCluster is NewCluster with SASL required: the only user is user,
// with pass, for the mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512).
func NewSASLCluster(t testing.TB, mechanism, user, pass string, partitions int32, topics ...string) []string {
	t.Helper()
	return newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...),
		kfake.EnableSASL(), kfake.Superuser(mechanism, user, pass))
}

func newCluster(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// Produce writes values to topic, keyed by anonymousId (else userId) when
// the value decodes as an event, and waits for every acknowledgement.
func Produce(t testing.TB, brokers []string, topic string, values ...[]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(16<<20), kgo.MaxBufferedRecords(len(values)+1))
	if err != nil {
		t.Fatalf("create producer: %v", err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Value: v}
		if e, err := mapping.Decode(v, "x"); err == nil {
			recs[i].Key = []byte(e.PartitionKey())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d messages: %v", len(values), err)
	}
}

// DeleteRecords deletes a partition's messages before offset, as Kafka's
// retention does (the DeleteRecords API), and waits for the answer.
func DeleteRecords(t testing.TB, brokers []string, topic string, partition int32, before int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, before
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("delete records of %s/%d before %d: %v", topic, partition, before, err)
	}
	for _, rt := range res.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("delete records of %s/%d before %d: %v", topic, rp.Partition, before, err)
			}
		}
	}
}
