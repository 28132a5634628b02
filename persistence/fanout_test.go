package persistence_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
)

// TestApplyBatchRefreshesAGroupOfManyLiveMembersInChunks: a trait change of
// a group with 5,000 live members (visitors whose verified users joined it)
// refreshes every member's document, and no statement writes more than
// RefreshChunk of them (a statement trigger refuses any that does), so
// memory and statement size stay bounded however large the group.
func TestApplyBatchRefreshesAGroupOfManyLiveMembersInChunks(t *testing.T) {
	t.Parallel()
	const members, chunk = 5000, 400
	tb := &testBundle{now: time.Now().UTC().Truncate(time.Microsecond)}
	tb.store, tb.url = persistencetest.NewStore(t, &persistence.Config{Now: func() time.Time { return tb.now }, RefreshChunk: chunk})
	withSettings(tb)
	raws := mappingtest.GroupMembers(members, "big", tb.now.Add(-time.Minute))
	if res := tb.apply(t, tb.decodeAll(t, raws)); res.Documents != members {
		t.Fatalf("documents written = %d, want %d", res.Documents, members)
	}

	conn, err := pgx.Connect(context.Background(), tb.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), fmt.Sprintf(`
CREATE FUNCTION test_chunk_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT count(*) FROM rows) > %d THEN
        RAISE EXCEPTION 'one statement wrote %% documents', (SELECT count(*) FROM rows);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER test_chunk_guard_insert AFTER INSERT ON prechat_documents REFERENCING NEW TABLE AS rows
    FOR EACH STATEMENT EXECUTE FUNCTION test_chunk_guard();
CREATE TRIGGER test_chunk_guard_update AFTER UPDATE ON prechat_documents REFERENCING NEW TABLE AS rows
    FOR EACH STATEMENT EXECUTE FUNCTION test_chunk_guard();`, chunk)); err != nil {
		t.Fatal(err)
	}
	change := `{"type":"group","messageId":"change","userId":"user-0","groupId":"big","traits":{"website":"big.example"},"context":` +
		mappingtest.Proof("user-0") + `,"timestamp":"` + tb.now.Format(time.RFC3339Nano) + `"}`
	res := tb.apply(t, tb.decodeAll(t, [][]byte{[]byte(change)}))
	if res.Documents != members || len(res.Visitors) != members {
		t.Fatalf("documents refreshed = %d (%d visitors), want %d", res.Documents, len(res.Visitors), members)
	}
	var refreshed int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM prechat_documents WHERE document::text LIKE '%big.example%'`).Scan(&refreshed); err != nil {
		t.Fatal(err)
	}
	if refreshed != members {
		t.Fatalf("%d documents show the group's new website, want %d", refreshed, members)
	}
}

// TestAGroupBeyondTheFanOutLimitIsRefreshedFromTheQueue: a trait change of
// a group with more live members than FanOutLimit does not refresh them in
// the batch's transaction: the batch queues them (in SQL, never reading
// them into memory) and refreshes only the visitor it touched itself, and
// RefreshQueued then works the queue off, at most limit documents a
// transaction, until every member's document shows the change, exactly as
// the model builds it.
func TestAGroupBeyondTheFanOutLimitIsRefreshedFromTheQueue(t *testing.T) {
	t.Parallel()
	const members, limit, chunk = 300, 100, 70
	tb := &testBundle{now: time.Now().UTC().Truncate(time.Microsecond)}
	tb.store, tb.url = persistencetest.NewStore(t, &persistence.Config{Now: func() time.Time { return tb.now }, FanOutLimit: limit})
	withSettings(tb)
	ctx := context.Background()
	raws := mappingtest.GroupMembers(members, "big", tb.now.Add(-time.Minute))
	first := tb.decodeAll(t, raws)
	// The batch's own visitors are refreshed in it, however many.
	if res := tb.apply(t, first); res.Documents != members || res.Queued != 0 {
		t.Fatalf("first batch: %d documents, %d queued; want %d and 0", res.Documents, res.Queued, members)
	}
	change := tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"group","messageId":"change","anonymousId":"member-0","userId":"user-0","groupId":"big","traits":{"website":"big.example"},"context":` +
			mappingtest.Proof("user-0") + `,"timestamp":"` + tb.now.Format(time.RFC3339Nano) + `"}`)})
	res := tb.apply(t, change)
	if res.Queued != members-1 || res.Documents != 1 {
		t.Fatalf("the change: %d documents refreshed, %d queued; want 1 (its own visitor) and %d", res.Documents, res.Queued, members-1)
	}
	conn, err := pgx.Connect(ctx, tb.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	showing := func() int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM prechat_documents WHERE document::text LIKE '%big.example%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := showing(); n != 1 {
		t.Fatalf("%d documents show the change before the queue is worked off, want 1", n)
	}
	var rounds, written int
	for {
		r, err := tb.store.RefreshQueued(ctx, tb.mat, chunk)
		if err != nil {
			t.Fatal(err)
		}
		if r.Queued > chunk {
			t.Fatalf("one refresh took %d, more than its limit %d", r.Queued, chunk)
		}
		rounds++
		written += r.Documents
		if r.Queued < chunk {
			break
		}
	}
	if rounds != (members-1)/chunk+1 || written != members-1 || showing() != members {
		t.Fatalf("%d rounds wrote %d documents, %d show the change; want %d rounds, %d documents, all %d", rounds, written, showing(), (members-1)/chunk+1, members-1, members)
	}
	want := tb.modelDocuments(append(first, change...))
	for _, a := range []string{"member-0", "member-150", "member-299"} {
		if got := tb.storedDocument(t, a); !equalJSON(t, got, want[a]) {
			t.Fatalf("%s differs from the model:\n got %+v\nwant %+v", a, got, want[a])
		}
	}
}
