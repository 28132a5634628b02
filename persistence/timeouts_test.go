package persistence_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
)

// holdLock takes a session advisory lock on url's database from a
// connection of its own, until release is called.
func holdLock(t *testing.T, url string, key int64) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		t.Fatal(err)
	}
	release = func() { conn.Close(ctx) }
	t.Cleanup(release)
	return release
}

// holdRefresh holds, from a transaction of its own, visitor a1's entry in
// the refresh queue, as a refresh working on it does, until release is
// called: a batch that changes a1 waits for it.
func holdRefresh(t *testing.T, url string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `BEGIN; INSERT INTO document_refreshes (subject_kind, subject_id) VALUES ('anonymous', 'a1')`); err != nil {
		t.Fatal(err)
	}
	release = func() { conn.Close(ctx) }
	t.Cleanup(release)
	return release
}

// TestApplyBatchDoesNotWaitForeverForALock: a batch blocked on a lock fails
// after LockTimeout (55P03), or after StatementTimeout (57014) when lock
// waits are unbounded, instead of hanging its partition.
func TestApplyBatchDoesNotWaitForeverForALock(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  persistence.Config
		code string
	}{
		{"lock_timeout", persistence.Config{LockTimeout: 300 * time.Millisecond}, "55P03"},
		{"statement_timeout", persistence.Config{LockTimeout: -1, StatementTimeout: 300 * time.Millisecond}, "57014"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			store, url := persistencetest.NewStore(t, &c.cfg)
			holdRefresh(t, url)
			now := time.Now()
			e, err := mapping.Decode([]byte(`{"type":"track","event":"Live Chat Conversation Started","messageId":"m1","anonymousId":"a1","timestamp":"`+now.UTC().Format(time.RFC3339Nano)+`"}`), "")
			if err != nil {
				t.Fatal(err)
			}
			b := mapping.NewBatch()
			b.Add(&e, now)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			_, err = store.ApplyBatch(ctx, b)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != c.code || time.Since(start) > 5*time.Second {
				t.Fatalf("ApplyBatch behind a held lock: %v after %v, want SQLSTATE %s within about 300ms", err, time.Since(start), c.code)
			}
		})
	}
}

// TestMigrateLiftsTheTimeouts: a migration waits for tern's advisory lock
// while another migrate run holds it (and may run longer than a statement
// timeout), whatever the pool's timeouts; the pool's connections keep them.
func TestMigrateLiftsTheTimeouts(t *testing.T) {
	t.Parallel()
	url := persistencetest.NewEmptyDatabase(t)
	store, err := persistence.Open(context.Background(), url, &persistence.Config{MaxConns: 1, LockTimeout: 100 * time.Millisecond, StatementTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const ternLock int64 = 9628173550095224 // tern's migrate.lockNum
	release := holdLock(t, url, ternLock)
	time.AfterFunc(time.Second, release)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := store.Migrate(ctx); err != nil {
		t.Fatalf("migrate while another run holds the lock for 1s: %v", err)
	}
	st, err := store.MigrationStatus(ctx)
	if err != nil || !st.UpToDate() {
		t.Fatalf("schema after migrate: %+v %v", st, err)
	}
	// The one pooled connection has its timeouts back.
	release = holdRefresh(t, url)
	defer release()
	e, _ := mapping.Decode([]byte(`{"type":"track","event":"Live Chat Conversation Started","messageId":"m1","anonymousId":"a1"}`), "")
	b := mapping.NewBatch()
	b.Add(&e, time.Now())
	_, err = store.ApplyBatch(ctx, b)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "55P03" {
		t.Fatalf("after migrate, a batch behind a held lock: %v, want lock_timeout (55P03)", err)
	}
}
