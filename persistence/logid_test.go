package persistence_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/persistence/persistencetest"
)

// TestErrorsDoNotCarryIDsInClear: an error that names a visitor (and ends
// up in a log line) names it by mapping.LogID.
func TestErrorsDoNotCarryIDsInClear(t *testing.T) {
	t.Parallel()
	store, _ := persistencetest.NewStore(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := store.DocumentGet(ctx, "visitor-7f3a9")
	if err == nil || strings.Contains(err.Error(), "visitor-7f3a9") || !strings.Contains(err.Error(), mapping.LogID("visitor-7f3a9")) {
		t.Fatalf("error %v: want the visitor as %s, not in clear", err, mapping.LogID("visitor-7f3a9"))
	}
}
