package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
)

// BenchmarkB2B measures the pipeline on the shape of a B2B site: thousands
// of visitors with a live conversation, in accounts (groups) of about a
// hundred members whose verified users all have a live conversation, and
// identify and group calls that change mapped traits (a site that calls
// analytics.group on every page). Each group call changes its account for
// every member, so documents many visitors share are rebuilt all the time.
// Beside the drain and CopyFrom baselines of BenchmarkPipeline, it measures
// the limit that matters: as many rows as the pipeline wrote (inserted or
// updated, counted by Postgres) COPYed into tables with the same indexes.
//
//	go test ./pipeline -run '^$' -bench B2B -benchtime 1x
//
// PRECHAT_BENCH_LIVE (default 5000) is the number of live conversations,
// PRECHAT_BENCH_GROUP (default 100) the accounts' size, PRECHAT_BENCH_EVENTS
// (default 200000) the events; it runs with 50,000 distinct visitors
// (PRECHAT_BENCH_VISITORS), with one consumer and with two (a group of two,
// each with its own connections, as two processes; each one's share of the
// events is reported), and with a million visitors.
func BenchmarkB2B(b *testing.B) {
	n := benchEnv("PRECHAT_BENCH_EVENTS", 200000)
	live := benchEnv("PRECHAT_BENCH_LIVE", 5000)
	size := benchEnv("PRECHAT_BENCH_GROUP", 100)
	settings := *mappingtest.Settings()
	settings.Products = []mapping.Product{mapping.ProductLiveAgent}
	for _, run := range []struct{ visitors, consumers int }{
		{benchEnv("PRECHAT_BENCH_VISITORS", 50000), 1},
		{benchEnv("PRECHAT_BENCH_VISITORS", 50000), 2},
		{1000000, 1},
	} {
		b.Run(fmt.Sprintf("live=%d/group=%d/visitors=%d/consumers=%d", live, size, run.visitors, run.consumers), func(b *testing.B) {
			for range b.N {
				runBench(b, &settings, b2bEvents(n, live, size, run.visitors), benchOptions{sameRows: true, consumers: run.consumers})
			}
		})
	}
}

// b2bEvents generates n events: first each live visitor's identify, group
// call and conversation start (visitor v-i is user u-i, in account
// g-(i/size), all verified), then page views, identifies that change
// firstName and group calls that change the account's revenue, half from
// live visitors, half from the other visitors (accounts of their own).
// Event times increase, so every change wins.
func b2bEvents(n, live, size, visitors int) [][]byte {
	rng := rand.New(rand.NewPCG(uint64(live), uint64(visitors)))
	base := time.Now().Add(-time.Minute)
	raws := make([][]byte, 0, n)
	at := func() string {
		return base.Add(time.Duration(len(raws)) * time.Microsecond).UTC().Format(time.RFC3339Nano)
	}
	ids := func(i int) (anon, user, group, proof string) {
		u := fmt.Sprint("u-", i)
		return fmt.Sprint("v-", i), u, fmt.Sprint("g-", i/size), mappingtest.Proof(u)
	}
	identify := func(i int, trait string) []byte {
		anon, user, _, proof := ids(i)
		return fmt.Appendf(nil, `{"type":"identify","messageId":"m-%d","anonymousId":%q,"userId":%q,"traits":{%s},"context":%s,"timestamp":%q}`,
			len(raws), anon, user, trait, proof, at())
	}
	group := func(i int, trait string) []byte {
		anon, user, g, proof := ids(i)
		return fmt.Appendf(nil, `{"type":"group","messageId":"m-%d","anonymousId":%q,"userId":%q,"groupId":%q,"traits":{%s},"context":%s,"timestamp":%q}`,
			len(raws), anon, user, g, trait, proof, at())
	}
	for i := range live {
		raws = append(raws, identify(i, fmt.Sprintf(`"email":"u%d@example.com","firstName":"Ada","lastName":"Lovelace"`, i)))
		raws = append(raws, group(i, fmt.Sprintf(`"name":"Account %d","website":"a%d.example","revenue":1`, i/size, i/size)))
		anon, _, _, _ := ids(i)
		raws = append(raws, fmt.Appendf(nil, `{"type":"track","messageId":"m-%d","anonymousId":%q,"event":"Live Chat Conversation Started","properties":{"subject":"Help"},"timestamp":%q}`,
			len(raws), anon, at()))
	}
	for len(raws) < n {
		i := rng.IntN(live)
		if rng.IntN(2) == 1 && visitors > live {
			i = live + rng.IntN(visitors-live)
		}
		switch k := len(raws); rng.IntN(10) {
		case 0, 1, 2, 3:
			anon, _, _, _ := ids(i)
			raws = append(raws, fmt.Appendf(nil, `{"type":"page","messageId":"m-%d","anonymousId":%q,"name":"Pricing","timestamp":%q}`, k, anon, at()))
		case 4, 5, 6:
			raws = append(raws, identify(i, fmt.Sprintf(`"firstName":"Name %d"`, k)))
		default:
			raws = append(raws, group(i, fmt.Sprintf(`"revenue":%d`, k)))
		}
	}
	return raws
}

// sameRowsTables are the tables the pipeline writes, each with a key column
// made unique in the baseline's copies.
var sameRowsTables = []struct{ table, key string }{
	{"traits", "subject_id"},
	{"identity_links", "anonymous_id"},
	{"group_memberships", "member_id"},
	{"conversations", "anonymous_id"},
	{"applied_messages", "message_id"},
	{"prechat_documents", "anonymous_id"},
	{"document_refreshes", "subject_id"},
	{"kafka_offsets", "topic"},
}

// copySameRows counts the rows the pipeline inserted or updated in each
// table (pg_stat_user_tables, flushed once the store's connections ended),
// then COPYs as many rows, copies of the table's own rows with a unique
// key, into a table with the same columns and indexes, one table after the
// other on one connection; it returns the rows and how long the COPYs took.
// Deleted rows (refreshes worked off) are not counted.
func copySameRows(b *testing.B, dbURL string) (int64, time.Duration) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	counts := map[string]int64{}
	for range 50 { // until the ended connections' statistics are in
		time.Sleep(100 * time.Millisecond)
		rows, err := conn.Query(ctx, `SELECT relname::text, n_tup_ins + n_tup_upd FROM pg_stat_user_tables`)
		if err != nil {
			b.Fatal(err)
		}
		next := map[string]int64{}
		var name string
		var n int64
		if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error { next[name] = n; return nil }); err != nil {
			b.Fatal(err)
		}
		stable := next["prechat_documents"] > 0 && fmt.Sprint(next) == fmt.Sprint(counts)
		counts = next
		if stable {
			break
		}
	}
	var total int64
	var took time.Duration
	var each []string
	for _, t := range sameRowsTables {
		n := counts[t.table]
		if n == 0 {
			continue
		}
		each = append(each, fmt.Sprintf("%s %d", t.table, n))
		total += n
		copyTable := "bench_same_" + t.table
		if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING INDEXES)`, copyTable, t.table)); err != nil {
			b.Fatal(err)
		}
		cols, samples := sampleRows(b, conn, t.table)
		key := -1
		for i, c := range cols {
			if c == t.key {
				key = i
			}
		}
		if key < 0 {
			b.Fatalf("%s has no column %s", t.table, t.key)
		}
		rows := make([][]any, n)
		for i := range rows {
			row := append([]any(nil), samples[i%len(samples)]...)
			row[key] = fmt.Sprint(row[key], "#", i)
			rows[i] = row
		}
		start := time.Now()
		for i := 0; i < len(rows); i += 1000 {
			if _, err := conn.CopyFrom(ctx, pgx.Identifier{copyTable}, cols, pgx.CopyFromRows(rows[i:min(i+1000, len(rows))])); err != nil {
				b.Fatalf("copy into %s: %v", copyTable, err)
			}
		}
		took += time.Since(start)
	}
	b.Logf("rows inserted or updated: %s", strings.Join(each, ", "))
	return total, took
}

// sampleRows returns a table's columns and up to 1000 of its rows; for the
// refresh queue, empty once worked off, a typical entry.
func sampleRows(b *testing.B, conn *pgx.Conn, table string) ([]string, [][]any) {
	ctx := context.Background()
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT * FROM %s LIMIT 1000`, table))
	if err != nil {
		b.Fatal(err)
	}
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, f.Name)
	}
	var samples [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			b.Fatal(err)
		}
		samples = append(samples, v)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(samples) == 0 {
		row := make([]any, len(cols))
		for i, c := range cols {
			switch {
			case c == "subject_kind":
				row[i] = "anonymous"
			case strings.HasSuffix(c, "_at"):
				row[i] = time.Now()
			case c == "resume_after", c == "claimed_until":
				row[i] = nil
			default:
				row[i] = "v-0"
			}
		}
		samples = append(samples, row)
	}
	return cols, samples
}
