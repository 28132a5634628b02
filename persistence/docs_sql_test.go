package persistence_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
)

// TestOperationsDocQueriesRun runs every statement of the SQL blocks of the
// "Inspecting with SQL" section of docs/operations.md
// against a database holding one visitor, so the documented queries stay
// valid as the schema changes, and checks that they find that visitor.
func TestOperationsDocQueriesRun(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "## Inspecting with SQL")
	section, _, _ = strings.Cut(section, "\n## ")
	var stmts []string
	for _, block := range strings.Split(section, "```sql\n")[1:] {
		body, _, _ := strings.Cut(block, "```")
		for _, s := range strings.Split(body, ";\n") {
			if strings.TrimSpace(stripComments(s)) != "" {
				stmts = append(stmts, s)
			}
		}
	}
	if len(stmts) < 6 {
		t.Fatalf("found %d SQL statements in docs/operations.md, want the documented set", len(stmts))
	}

	tb := &testBundle{now: time.Now().UTC().Truncate(time.Microsecond)}
	var url string
	tb.store, url = persistencetest.NewStore(t, &persistence.Config{Now: func() time.Time { return tb.now }})
	tb = withSettings(tb)
	at := tb.now.Format(time.RFC3339Nano)
	tb.apply(t, tb.decodeAll(t, [][]byte{
		[]byte(`{"type":"identify","messageId":"i1","anonymousId":"visitor-1","userId":"u1","traits":{"email":"ada@example.com"},"context":` + mappingtest.Proof("u1") + `,"timestamp":"` + at + `"}`),
		[]byte(`{"type":"group","messageId":"g1","userId":"u1","groupId":"acme","traits":{"website":"acme.test"},"context":` + mappingtest.Proof("u1") + `,"timestamp":"` + at + `"}`),
		[]byte(`{"type":"track","messageId":"c1","anonymousId":"visitor-1","event":"Live Chat Conversation Started","properties":{"subject":"Help"},"timestamp":"` + at + `"}`),
	}))

	// A change not refreshed yet, for the refresh queue's query.
	later := tb.decodeAll(t, [][]byte{[]byte(`{"type":"identify","messageId":"i2","anonymousId":"visitor-1","traits":{"firstName":"Ada"},"timestamp":"` + at + `"}`)})
	if _, err := tb.store.ApplyBatch(context.Background(), newBatch(tb, later)); err != nil {
		t.Fatal(err)
	}

	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		rows, err := conn.Query(context.Background(), s)
		if err != nil {
			t.Fatalf("docs/operations.md query fails: %v\n%s", err, s)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("docs/operations.md query fails: %v\n%s", err, s)
		}
		if n == 0 && !strings.Contains(s, "dead_letters") && !strings.Contains(s, "kafka_offsets") && !strings.Contains(s, "warnings") {
			t.Errorf("docs/operations.md query found nothing for visitor-1:\n%s", s)
		}
	}
}

func stripComments(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
