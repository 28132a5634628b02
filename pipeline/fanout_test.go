package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// TestConsumerWorksOffQueuedRefreshes: a group change with more live
// members than the store's FanOutLimit is queued by its batch as two
// entries (the group, and its sender's user, whose membership it
// restamped), and the consumer refreshes every member's document, a page
// of FanOutLimit at a time, on its own, without another event.
func TestConsumerWorksOffQueuedRefreshes(t *testing.T) {
	tb := setup(t, 2)
	tb.store, tb.dbURL = persistencetest.NewStore(t, &persistence.Config{FanOutLimit: 50})
	reg := prometheus.NewRegistry()
	tb.registerer = reg
	const members = 200
	raws := mappingtest.GroupMembers(members, "big", tb.now.Add(-time.Minute))
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws...)
	tb.start(t, 1000)
	tb.waitConsumed(t, int64(len(raws)))
	before := counter(t, reg, "prechat_documents_queued_total", nil)
	pipelinetest.Produce(t, tb.brokers, tb.topic, []byte(`{"type":"group","messageId":"change","userId":"user-7","groupId":"big","traits":{"website":"big.example"},"context":`+
		mappingtest.Proof("user-7")+`,"timestamp":"`+tb.now.Format(time.RFC3339Nano)+`"}`))
	tb.waitConsumed(t, int64(len(raws)+1))
	deadline := time.Now().Add(30 * time.Second)
	for {
		stale := 0
		for i := range members {
			raw, _, err := tb.store.DocumentGet(context.Background(), fmt.Sprintf("member-%d", i))
			if err != nil || !strings.Contains(string(raw), "big.example") {
				stale++
			}
		}
		if stale == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d members' documents still lack the group change after 30s", stale, members)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := counter(t, reg, "prechat_documents_queued_total", nil) - before; n != 2 {
		t.Errorf("the change queued %v refreshes, want 2 (the group and user-7)", n)
	}
}
