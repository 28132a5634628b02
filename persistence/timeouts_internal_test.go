package persistence

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// testServer is the Postgres server of the tests (see persistencetest,
// which this package's own tests cannot import). Only session settings are
// read: no table is touched.
func testServer(t *testing.T, cfg *Config) *Store {
	t.Helper()
	url := os.Getenv("TEST_DATABASE_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	s, err := Open(context.Background(), url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestEveryConnectionHasTheSessionTimeouts: each connection of the pool,
// not only the first, runs with the configured timeouts, and the defaults
// hold without configuration.
func TestEveryConnectionHasTheSessionTimeouts(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg  *Config
		want [3]string
	}{
		{&Config{MaxConns: 3, StatementTimeout: 1500 * time.Millisecond, LockTimeout: 700 * time.Millisecond, IdleInTransactionTimeout: 2 * time.Second},
			[3]string{"1500ms", "700ms", "2s"}},
		{nil, [3]string{"1min", "30s", "1min"}},
		{&Config{MaxConns: 3, StatementTimeout: -1, LockTimeout: -1, IdleInTransactionTimeout: -1}, [3]string{"0", "0", "0"}},
	} {
		s := testServer(t, c.cfg)
		conns := make([]*pgxpool.Conn, 3)
		for i := range conns {
			conn, err := s.pool.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			conns[i] = conn
		}
		var wg sync.WaitGroup
		for _, conn := range conns {
			wg.Go(func() {
				var got [3]string
				err := conn.QueryRow(context.Background(), `SELECT current_setting('statement_timeout'), current_setting('lock_timeout'),
					current_setting('idle_in_transaction_session_timeout')`).Scan(&got[0], &got[1], &got[2])
				if err != nil || got != c.want {
					t.Errorf("connection %d: statement, lock, idle-in-transaction timeouts %v (%v), want %v", conn.Conn().PgConn().PID(), got, err, c.want)
				}
			})
		}
		wg.Wait()
	}
}

// TestIdleTransactionIsEnded: a transaction left idle longer than
// IdleInTransactionTimeout is ended by Postgres, so it cannot hold locks
// for ever.
func TestIdleTransactionIsEnded(t *testing.T) {
	t.Parallel()
	s := testServer(t, &Config{IdleInTransactionTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	_, err = tx.Exec(ctx, `SELECT 1`)
	var pe *pgconn.PgError
	if err == nil || errors.As(err, &pe) && pe.Code != "25P03" {
		t.Fatalf("a transaction idle for 1s under a 300ms timeout still works: %v", err)
	}
}
