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
	at := tb.now.Add(-time.Minute).Format(time.RFC3339Nano)
	var raws [][]byte
	for i := range members {
		a, u := fmt.Sprintf("member-%d", i), fmt.Sprintf("user-%d", i)
		raws = append(raws,
			[]byte(`{"type":"group","messageId":"g-`+a+`","anonymousId":"`+a+`","userId":"`+u+`","groupId":"big","context":`+mappingtest.Proof(u)+`,"timestamp":"`+at+`"}`),
			[]byte(`{"type":"track","messageId":"c-`+a+`","anonymousId":"`+a+`","event":"Live Chat Conversation Started","timestamp":"`+at+`"}`))
	}
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
