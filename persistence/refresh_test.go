package persistence_test

import (
	"context"
	"testing"
	"time"

	"github.com/prechat/prechat/persistence/persistencetest"
)

// TestRefreshDelayIsTheOldestQueuedChangesAge: a committed batch leaves
// its changes queued, so the delay is above zero until a refresh works
// them off, then zero.
func TestRefreshDelayIsTheOldestQueuedChangesAge(t *testing.T) {
	tb := setup(t)
	ctx := context.Background()
	if d, err := tb.store.RefreshDelay(ctx); err != nil || d != 0 {
		t.Fatalf("empty queue: delay %v, %v; want 0", d, err)
	}
	at := tb.now.Format(time.RFC3339Nano)
	events := tb.decodeAll(t, [][]byte{[]byte(`{"type":"track","event":"Live Chat Conversation Started","messageId":"c1","anonymousId":"a1","timestamp":"` + at + `"}`)})
	b := newBatch(tb, events)
	if _, err := tb.store.ApplyBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	if d, err := tb.store.RefreshDelay(ctx); err != nil || d <= 0 || d > time.Minute {
		t.Fatalf("after a batch: delay %v, %v; want a little above 0", d, err)
	}
	persistencetest.Refresh(t, tb.store, tb.mat)
	if d, err := tb.store.RefreshDelay(ctx); err != nil || d != 0 {
		t.Fatalf("after the refresh: delay %v, %v; want 0", d, err)
	}
}
