package persistence_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
)

// TestTraceContextCrossesTheRefreshQueue: a traced batch leaves its
// traceparent with the refreshes it queues; the refresh returns it as a
// link and stores its own traceparent beside the document it writes,
// outside the served JSON. An untraced batch re-arming the entry keeps the
// traced one's; untraced work stores nothing.
func TestTraceContextCrossesTheRefreshQueue(t *testing.T) {
	tb := setup(t)
	ctx := context.Background()
	const (
		batchA  = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		batchB  = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
		refresh = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	event := func(raw string) *mapping.Batch {
		b := mapping.NewBatch()
		for _, e := range tb.decodeAll(t, [][]byte{[]byte(raw)}) {
			b.Add(&e, tb.now)
		}
		return b
	}
	at := tb.now.Format(time.RFC3339Nano)
	start := event(`{"type":"track","messageId":"c1","anonymousId":"a1","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"` + at + `"}`)
	start.Trace = batchA
	if _, err := tb.store.ApplyBatch(ctx, start); err != nil {
		t.Fatal(err)
	}
	identify := event(`{"type":"identify","messageId":"i1","anonymousId":"a1","traits":{"email":"x@example.com"},"timestamp":"` + at + `"}`)
	if _, err := tb.store.ApplyBatch(ctx, identify); err != nil { // untraced
		t.Fatal(err)
	}
	res, err := tb.store.RefreshQueued(ctx, tb.mat, 1000, 0, refresh)
	if err != nil {
		t.Fatal(err)
	}
	if res.Documents != 1 || !slices.Equal(res.Links, []string{batchA}) {
		t.Fatalf("refresh wrote %d documents with links %v, want 1 and [%s]", res.Documents, res.Links, batchA)
	}
	doc, _, tp, err := tb.store.DocumentRead(ctx, "a1")
	if err != nil || tp != refresh {
		t.Fatalf("document traceparent %q (%v), want %s", tp, err, refresh)
	}
	for _, s := range []string{"traceparent", "0af7651916cd43dd", "4bf92f3577b34da6"} {
		if strings.Contains(string(doc), s) {
			t.Fatalf("the served JSON holds trace context: %s", doc)
		}
	}

	// A traced batch, then an untraced refresh: the document's traceparent
	// is cleared with the next write, the link still returned.
	later := event(`{"type":"identify","messageId":"i2","anonymousId":"a1","traits":{"email":"y@example.com"},"timestamp":"` + tb.now.Add(time.Second).Format(time.RFC3339Nano) + `"}`)
	later.Trace = batchB
	if _, err := tb.store.ApplyBatch(ctx, later); err != nil {
		t.Fatal(err)
	}
	if res, err = tb.store.RefreshQueued(ctx, tb.mat, 1000, 0, ""); err != nil || !slices.Equal(res.Links, []string{batchB}) {
		t.Fatalf("untraced refresh: links %v (%v), want [%s]", res.Links, err, batchB)
	}
	if _, _, tp, err = tb.store.DocumentRead(ctx, "a1"); err != nil || tp != "" {
		t.Fatalf("document traceparent after an untraced refresh %q (%v), want none", tp, err)
	}
}
