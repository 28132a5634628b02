package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/pipeline"
	"github.com/prechat/prechat/pipeline/pipelinefake"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// fakeBundle is a consumer test on the in-memory store: a kfake broker
// with the test's own topic and group, and no Postgres. These tests run
// under -short.
type fakeBundle struct {
	brokers      []string
	topic, group string
	store        *pipelinefake.Store
}

func setupFake(t *testing.T, partitions int32) *fakeBundle {
	t.Helper()
	t.Parallel()
	fb := &fakeBundle{topic: pipelinetest.Name(t, "topic"), group: pipelinetest.Name(t, "group"), store: &pipelinefake.Store{}}
	fb.brokers = pipelinetest.NewCluster(t, partitions, fb.topic)
	return fb
}

// start runs a consumer over the fake store until the test ends.
func (fb *fakeBundle) start(t *testing.T, batchSize int) {
	t.Helper()
	c, err := pipeline.New(pipeline.Config{
		Brokers: fb.brokers, Topic: fb.topic, GroupID: fb.group,
		Materializer: &mapping.Materializer{Settings: mappingtest.Settings(), TTL: 30 * time.Minute},
		BatchSize:    batchSize, BatchTimeout: 20 * time.Millisecond, MaxWait: 100 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, JoinGroupBackoff: 200 * time.Millisecond,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Logger: zaptest.NewLogger(t).Named("consumer"),
	}, fb.store)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.Run(ctx); err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// waitConsumed waits until the committed offsets cover total messages.
func (fb *fakeBundle) waitConsumed(t *testing.T, total int64) {
	t.Helper()
	eventuallyTrue(t, 30*time.Second, fmt.Sprintf("%d messages consumed", total), func() bool {
		offs, _ := fb.store.OffsetsGet(context.Background(), fb.group, fb.topic)
		var sum int64
		for _, o := range offs {
			sum += o
		}
		return sum >= total
	})
}

// TestConsumerCutsBatchesAtBatchSize: under backlog the consumer commits
// batches of at most BatchSize messages, each with the position right
// after its last message, so that together they cover the partition once.
func TestConsumerCutsBatchesAtBatchSize(t *testing.T) {
	fb := setupFake(t, 1)
	at := time.Now().UTC().Format(time.RFC3339Nano)
	var raws [][]byte
	for i := range 100 {
		raws = append(raws, fmt.Appendf(nil, `{"type":"identify","messageId":"m%d","anonymousId":"v%d","traits":{"n":%d},"timestamp":%q}`, i, i%7, i, at))
	}
	pipelinetest.Produce(t, fb.brokers, fb.topic, raws...)
	fb.start(t, 30)
	fb.waitConsumed(t, 100)

	var next int64
	full := 0
	for i, b := range fb.store.Batches() {
		if b.Messages > 30 || b.Messages == 0 {
			t.Errorf("batch %d holds %d messages, want 1 to 30", i, b.Messages)
		}
		if b.Messages == 30 {
			full++
		}
		if len(b.Positions) != 1 || b.Positions[0].Partition != 0 || b.Positions[0].NextOffset != next+int64(b.Messages) {
			t.Fatalf("batch %d of %d messages after offset %d has positions %+v", i, b.Messages, next, b.Positions)
		}
		next = b.Positions[0].NextOffset
	}
	if full == 0 {
		t.Errorf("no batch reached BatchSize though the 100 messages were all there at the start: %+v", fb.store.Batches())
	}
	for id, n := range fb.store.Applied() {
		if n != 1 {
			t.Errorf("%s applied %d times, want once", id, n)
		}
	}
	if n := len(fb.store.Applied()); n != 100 {
		t.Errorf("%d messages applied, want 100", n)
	}
}

// TestConsumerDeadLettersAMessageRefusedOnlyWithAnother: when two messages
// are refused together but each is accepted alone (for Postgres, a
// document combining a trait of one with a property of the other), the
// first message refused on top of those before it is dead-lettered, and
// the other applies.
func TestConsumerDeadLettersAMessageRefusedOnlyWithAnother(t *testing.T) {
	fb := setupFake(t, 1)
	fb.store.Refuse = func(b *mapping.Batch) error {
		ids := make([]string, len(b.Applied))
		for i, a := range b.Applied {
			ids[i] = a.MessageID
		}
		if slices.Contains(ids, "a") && slices.Contains(ids, "b") {
			return fmt.Errorf("a and b together: %w", mapping.ErrRejected)
		}
		return nil
	}
	at := time.Now().UTC().Format(time.RFC3339Nano)
	var raws [][]byte
	for i := range 10 {
		raw := fmt.Sprintf(`{"type":"identify","messageId":"i%d","anonymousId":"v%d","traits":{"email":"v%d@example.com"},"timestamp":"%s"}`, i, i, i, at)
		switch i {
		case 2:
			raw = `{"type":"identify","messageId":"a","anonymousId":"pair","traits":{"email":"ada@poison.example"},"timestamp":"` + at + `"}`
		case 7:
			raw = `{"type":"track","messageId":"b","anonymousId":"pair","event":"Live Chat Conversation Started","properties":{"subject":"Poisoned subject"},"timestamp":"` + at + `"}`
		}
		raws = append(raws, []byte(raw))
	}
	pipelinetest.Produce(t, fb.brokers, fb.topic, raws...)
	fb.start(t, 10)
	fb.waitConsumed(t, int64(len(raws)))
	dead := fb.store.DeadLetters()
	if len(dead) != 1 || dead[0].Partition != 0 || dead[0].Offset != 7 || !strings.Contains(dead[0].Reason, "a and b together") {
		t.Fatalf("dead letters %+v, want the conversation start at offset 7", dead)
	}
	applied := fb.store.Applied()
	if applied["a"] != 1 || applied["b"] != 0 || len(applied) != 9 {
		t.Fatalf("applications %v: all but the conversation start must apply once", applied)
	}
}
