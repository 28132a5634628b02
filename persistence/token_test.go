package persistence_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

func tokenHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// TestDocumentCarriesTheLatestStartsTokenHash: the token hash of the
// latest conversation start is stored on the conversation and beside the
// document, never inside it; a later start replaces it, an older one
// delivered late does not, and a refresh of the document by a later
// identify keeps it.
func TestDocumentCarriesTheLatestStartsTokenHash(t *testing.T) {
	tb := setup(t)
	ctx := context.Background()
	start := func(id string, at time.Time, secret string) []byte {
		return []byte(`{"type":"track","messageId":"` + id + `","anonymousId":"a1","event":"Live Chat Conversation Started","properties":{"subject":"x"},"timestamp":"` +
			at.Format(time.RFC3339Nano) + `","context":{"prechat":{"tokenHash":"` + tokenHash(secret) + `"}}}`)
	}
	check := func(step, secret string) {
		t.Helper()
		doc, hash, err := tb.store.DocumentGet(ctx, "a1")
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if hash != tokenHash(secret) {
			t.Fatalf("%s: token hash %q, want the hash of %q", step, hash, secret)
		}
		for _, s := range []string{"first", "second", "older"} {
			if strings.Contains(string(doc), tokenHash(s)) {
				t.Fatalf("%s: the document JSON holds a token hash: %s", step, doc)
			}
		}
	}
	tb.apply(t, tb.decodeAll(t, [][]byte{start("c1", tb.now.Add(-time.Minute), "first")}))
	check("first start", "first")
	tb.apply(t, tb.decodeAll(t, [][]byte{start("c2", tb.now, "second")}))
	check("second start", "second")
	tb.apply(t, tb.decodeAll(t, [][]byte{start("c0", tb.now.Add(-2*time.Minute), "older")}))
	check("an older start delivered late", "second")
	res := tb.apply(t, tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"identify","messageId":"i1","anonymousId":"a1","traits":{"email":"x@example.com"},"timestamp":"` + tb.now.Format(time.RFC3339Nano) + `"}`),
	}))
	if res.Documents != 1 {
		t.Fatalf("the identify rewrote %d documents, want 1", res.Documents)
	}
	check("a refresh by a later identify", "second")

	// Without a tokenHash, the conversation and document hold none.
	tb.apply(t, tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"track","messageId":"c3","anonymousId":"a1","event":"Live Chat Conversation Started","timestamp":"` + tb.now.Add(time.Second).Format(time.RFC3339Nano) + `"}`),
	}))
	if _, hash, err := tb.store.DocumentGet(ctx, "a1"); err != nil || hash != "" {
		t.Fatalf("after a start without a token: hash %q, err %v; want none", hash, err)
	}
}
