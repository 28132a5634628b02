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

// TestARefreshLeavesChangesYoungerThanSettle: a refresh told to let changes
// settle for an hour claims none of a batch's, however often a later batch
// re-arms them; without, it rebuilds the document.
func TestARefreshLeavesChangesYoungerThanSettle(t *testing.T) {
	tb := setup(t)
	ctx := context.Background()
	at := tb.now.Format(time.RFC3339Nano)
	for _, raw := range []string{
		`{"type":"track","event":"Live Chat Conversation Started","messageId":"c1","anonymousId":"a1","timestamp":"` + at + `"}`,
		`{"type":"identify","messageId":"i1","anonymousId":"a1","traits":{"firstName":"Ada"},"timestamp":"` + at + `"}`,
	} {
		if _, err := tb.store.ApplyBatch(ctx, newBatch(tb, tb.decodeAll(t, [][]byte{[]byte(raw)}))); err != nil {
			t.Fatal(err)
		}
		if res, err := tb.store.RefreshQueued(ctx, tb.mat, 1000, time.Hour, ""); err != nil || res.Queued != 0 || res.Documents != 0 {
			t.Fatalf("settling for an hour: %+v, %v; want nothing claimed", res, err)
		}
	}
	if res, err := tb.store.RefreshQueued(ctx, tb.mat, 1000, 0, ""); err != nil || res.Queued != 1 || res.Documents != 1 {
		t.Fatalf("without settling: %+v, %v; want the visitor's one entry and its document", res, err)
	}
}
