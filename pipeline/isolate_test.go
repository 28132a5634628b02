package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// TestConsumerDeadLettersWhatStorageRefusesAndGoesOn proves the second line
// on its own: conversation starts that Decode accepts but Postgres refuses
// (a check constraint added to this test's database stands for any refusal
// Decode cannot foresee) are found by splitting their batch, dead-lettered
// with Postgres's reason in the same transaction as the rest of the batch,
// and every other message is applied exactly once; the offsets pass them.
// Before, such a batch was retried for ever and its partitions stalled.
func TestConsumerDeadLettersWhatStorageRefusesAndGoesOn(t *testing.T) {
	t.Parallel()
	// Poisons in batches of their own, and several in one batch.
	for _, batchSize := range []int{64, 1000} {
		t.Run(fmt.Sprint("batch=", batchSize), func(t *testing.T) { testDeadLettersWhatStorageRefuses(t, batchSize) })
	}
}

func testDeadLettersWhatStorageRefuses(t *testing.T, batchSize int) {
	tb := setup(t, 2)
	reg := prometheus.NewRegistry()
	tb.registerer = reg
	tb.exec(t, `ALTER TABLE conversations ADD CONSTRAINT test_no_poison CHECK (properties->>'subject' IS DISTINCT FROM 'poison')`)
	g := tb.generator(21)
	at := tb.now.Format(time.RFC3339Nano)
	var raws, good [][]byte
	for i := range 400 {
		if i%100 == 50 {
			raws = append(raws, []byte(fmt.Sprintf(`{"type":"track","event":"Live Chat Conversation Started","messageId":"poison-%d","anonymousId":"poisoned-%d","properties":{"subject":"poison"},"timestamp":"%s"}`, i, i, at)))
			continue
		}
		e := g.Event()
		raws, good = append(raws, e), append(good, e)
	}
	want := tb.reference(t, good)
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws...)
	tb.start(t, batchSize)
	tb.waitConsumed(t, int64(len(raws)))

	got := fingerprint(t, tb.store)
	for table, sum := range want {
		if table != "dead_letters" && got[table] != sum {
			t.Errorf("%s: %s, want %s (every other event must apply)", table, got[table], sum)
		}
	}
	tb.assertAppliedOnce(t, good)
	dead := tb.deadLetters(t)
	if len(dead) != 4 {
		t.Fatalf("dead letters %v, want the 4 poisoned conversation starts", dead)
	}
	for key, reason := range dead {
		if want := `storage refused it: apply batch of 1 messages: refused by storage: write effects: ERROR: new row for relation "conversations" violates check constraint "test_no_poison" (SQLSTATE 23514)`; reason != want {
			t.Errorf("dead letter %v: reason %q, want %q", key, reason, want)
		}
		tb.mu.Lock()
		applied, ok := tb.refusedWith[key]
		tb.mu.Unlock()
		if !ok || applied == 0 {
			t.Errorf("dead letter %v was not committed with the rest of its batch (ok %v, applied %d)", key, ok, applied)
		}
	}
	if n := eventsCount(t, reg, "track", "dead_letter"); n != 4 {
		t.Errorf("refused tracks counted %v, want 4", n)
	}
	if n := counter(t, reg, "prechat_batch_splits_total", nil); n < 1 || n > 4 {
		t.Errorf("prechat_batch_splits_total = %v, want 1 to 4", n)
	}
}

// exec runs SQL on the test's database.
func (tb *testBundle) exec(t *testing.T, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), tb.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

// deadLetters returns the stored dead letters' reasons by partition and
// offset.
func (tb *testBundle) deadLetters(t *testing.T) map[[2]int64]string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), tb.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT "partition", "offset", reason FROM dead_letters WHERE topic = $1`, tb.topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[[2]int64]string{}
	var p, off int64
	var reason string
	if _, err := pgx.ForEachRow(rows, []any{&p, &off, &reason}, func() error { out[[2]int64{p, off}] = reason; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
