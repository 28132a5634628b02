package api_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"
)

// TestNotFoundAnswersDoNotTellUnknownFromExpired: an unknown visitor and a
// visitor whose document expired get byte-identical answers, so the public
// port cannot be used to learn which ids exist.
func TestNotFoundAnswersDoNotTellUnknownFromExpired(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	old := time.Now().Add(-31 * time.Minute).UTC().Format(time.RFC3339Nano)
	s.produce(`{"type":"track","messageId":"old-c","anonymousId":"expired-visitor","event":"Live Chat Conversation Started","timestamp":"` + old +
		`","context":{"prechat":{"tokenHash":"` + tokenHash(secretOf("expired-visitor")) + `"}}}`)
	// Applied, and left no document (it expired before it was applied).
	deadline := time.Now().Add(20 * time.Second)
	for {
		missing, err := s.store.AppliedMissing(context.Background(), []string{"old-c"})
		if err != nil {
			t.Fatal(err)
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the expired conversation start was not applied within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	unknown := s.get("never-seen", "")
	expired := s.get("expired-visitor", "")
	if unknown.status != http.StatusNotFound || expired.status != http.StatusNotFound {
		t.Fatalf("statuses %d and %d, want 404", unknown.status, expired.status)
	}
	if !bytes.Equal(unknown.body, expired.body) {
		t.Fatalf("bodies differ:\n%s\n%s", unknown.body, expired.body)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "Content-Length", "Retry-After"} {
		if unknown.header.Get(h) != expired.header.Get(h) {
			t.Fatalf("header %s differs: %q vs %q", h, unknown.header.Get(h), expired.header.Get(h))
		}
	}
}
