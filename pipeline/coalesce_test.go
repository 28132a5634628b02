package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// TestRefreshesCoalesceWhileBehind: a backlog of many batches that each
// change one live visitor rebuilds its document about once per
// RefreshCoalesce, not once per batch: while the consumer is behind, the
// queued change waits for the next ones. Once caught up (the last batch
// leaves nothing behind it), the document shows the last change at once.
func TestRefreshesCoalesceWhileBehind(t *testing.T) {
	tb := setup(t, 1)
	reg := prometheus.NewRegistry()
	tb.registerer = reg
	tb.refreshCoalesce = 10 * time.Second
	const changes, batch = 300, 10
	at := func(i int) string {
		return tb.now.Add(time.Duration(i-changes) * time.Millisecond).Format(time.RFC3339Nano)
	}
	raws := [][]byte{fmt.Appendf(nil, `{"type":"track","messageId":"c","anonymousId":"v","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":%q}`, at(0))}
	for i := 1; i <= changes; i++ {
		raws = append(raws, fmt.Appendf(nil, `{"type":"identify","messageId":"i-%d","anonymousId":"v","traits":{"firstName":"Name %d"},"timestamp":%q}`, i, i, at(i)))
	}
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws...)
	start := time.Now()
	tb.start(t, batch)
	tb.waitConsumed(t, int64(len(raws)))
	took := time.Since(start)
	raw, _, err := tb.store.DocumentGet(context.Background(), "v")
	if err != nil || !strings.Contains(string(raw), fmt.Sprintf(`"Name %d"`, changes)) {
		t.Fatalf("once caught up, the document does not show the last change: %s, %v", raw, err)
	}
	// One rebuild per RefreshCoalesce the backlog lasted, and the last.
	written := counter(t, reg, "prechat_documents_written_total", nil)
	if limit := 1 + int(took/tb.refreshCoalesce) + 1; int(written) > limit {
		t.Fatalf("the document was rebuilt %v times for %d batches in %s, want at most %d", written, len(raws)/batch+1, took.Round(time.Millisecond), limit)
	}
	t.Logf("the document was rebuilt %v times for %d batches in %s", written, len(raws)/batch+1, took.Round(time.Millisecond))
}
