package persistencetest

import (
	"context"
	"testing"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/persistence"
)

// Refresh works off the store's refresh queue as the consumers do
// (persistence.Store.RefreshQueued, 1000 changes a transaction) until it is
// empty, and returns the documents written, summed: what a test that applies
// batches itself does before it reads documents.
func Refresh(t testing.TB, store *persistence.Store, m *mapping.Materializer) mapping.BatchResult {
	t.Helper()
	var res mapping.BatchResult
	for {
		r, err := store.RefreshQueued(context.Background(), m, 1000, 0, "")
		if err != nil {
			t.Fatalf("refresh queued documents: %v", err)
		}
		res.Documents += r.Documents
		res.Visitors = append(res.Visitors, r.Visitors...)
		res.Unwritable = append(res.Unwritable, r.Unwritable...)
		res.Queued += r.Queued
		if r.Queued == 0 {
			return res
		}
	}
}
