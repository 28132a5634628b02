package persistence_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
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

// TestAGroupBeyondTheFanOutLimitIsRefreshedInPages: a trait change of a
// group with more live members than FanOutLimit queues one entry (the group,
// besides its sender's own); refreshes expand it a page of FanOutLimit
// visitors at a time (in SQL, never more into memory), remembering where
// they stopped, until every member's document shows the change, exactly as
// the model builds it, and the queue is empty.
func TestAGroupBeyondTheFanOutLimitIsRefreshedInPages(t *testing.T) {
	t.Parallel()
	const members, limit = 300, 70
	tb := &testBundle{now: time.Now().UTC().Truncate(time.Microsecond)}
	tb.store, tb.url = persistencetest.NewStore(t, &persistence.Config{Now: func() time.Time { return tb.now }, FanOutLimit: limit})
	withSettings(tb)
	ctx := context.Background()
	raws := mappingtest.GroupMembers(members, "big", tb.now.Add(-time.Minute))
	first := tb.decodeAll(t, raws)
	if res := tb.apply(t, first); res.Documents != members {
		t.Fatalf("first batch: %d documents, want %d", res.Documents, members)
	}
	change := tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"group","messageId":"change","anonymousId":"member-0","userId":"user-0","groupId":"big","traits":{"website":"big.example"},"context":` +
			mappingtest.Proof("user-0") + `,"timestamp":"` + tb.now.Format(time.RFC3339Nano) + `"}`)})
	b := mapping.NewBatch()
	b.Add(&change[0], tb.now)
	res, err := tb.store.ApplyBatch(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	// The group, and its sender's visitor and user (a link and a
	// membership restamped); batches queue no rechecks.
	if res.Queued != 3 || res.Documents != 0 {
		t.Fatalf("the change: %d documents written, %d queued; want 0 and 3 (the group, member-0, user-0)", res.Documents, res.Queued)
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
	if n := showing(); n != 0 {
		t.Fatalf("%d documents show the change before a refresh, want 0", n)
	}
	var rounds, written int
	for {
		r, err := tb.store.RefreshQueued(ctx, tb.mat, 1000, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if r.Queued == 0 {
			break
		}
		if r.Documents > limit+1 {
			t.Fatalf("one refresh wrote %d documents, more than FanOutLimit %d (+ member-0, queued itself)", r.Documents, limit)
		}
		rounds++
		written += r.Documents
	}
	if want := (members + limit - 1) / limit; rounds != want || written != members || showing() != members {
		t.Fatalf("%d rounds wrote %d documents, %d show the change; want %d rounds, %d documents, all %d", rounds, written, showing(), want, members, members)
	}
	want := tb.modelDocuments(append(first, change...))
	for _, a := range []string{"member-0", "member-150", "member-299"} {
		if got := tb.storedDocument(t, a); !equalJSON(t, got, want[a]) {
			t.Fatalf("%s differs from the model:\n got %+v\nwant %+v", a, got, want[a])
		}
	}
}
