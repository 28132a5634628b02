package persistence_test

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/prechat/prechat/migrations"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
)

// readOnlySession makes every transaction of a connection read only, so any
// write (a CREATE TABLE, an INSERT) fails: what a role with only SELECT
// would see.
const readOnlySession = " default_transaction_read_only=on"

// TestMigrationStatusOnlyReads: the schema check that serve runs at start
// and on every /readyz works on a session that cannot write, on a migrated
// database and on one no migration has touched (where it reports version 0
// and creates nothing), so the api pods' role needs no more than SELECT.
func TestMigrationStatusOnlyReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	latest := int32(len(files))
	for _, c := range []struct {
		name    string
		url     string
		current int32
	}{
		{"migrated", persistencetest.NewDatabase(t), latest},
		{"empty", persistencetest.NewEmptyDatabase(t), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			store, err := persistence.Open(ctx, c.url+readOnlySession, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			st, err := store.MigrationStatus(ctx)
			if err != nil {
				t.Fatalf("schema status on a read-only session: %v", err)
			}
			if st.Current != c.current || st.Latest != latest || len(st.Migrations) != int(latest) || st.UpToDate() != (c.current == latest) {
				t.Fatalf("status %+v, want version %d of %d", st, c.current, latest)
			}
			conn, err := pgx.Connect(ctx, c.url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var exists bool
			if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, persistence.VersionTable).Scan(&exists); err != nil {
				t.Fatal(err)
			}
			if exists != (c.current > 0) {
				t.Fatalf("version table exists=%v after a status check, want %v", exists, c.current > 0)
			}
		})
	}
}

// TestMigrationStatusDoesNotWaitForAMigration: while a migration runs (and
// holds tern's advisory lock for its whole length, as the upgrade hook Job
// does), the schema check still answers at once. Were it to wait for the
// lock, every pod's /readyz would time out during an upgrade's migration
// and the Service would lose all its endpoints.
func TestMigrationStatusDoesNotWaitForAMigration(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, url := persistencetest.NewStore(t, nil)

	// A long migration, of another version table, run by tern itself.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var pid uint32
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewMigrator(ctx, conn, "long_migration_version")
	if err != nil {
		t.Fatal(err)
	}
	m.AppendMigration("long", "SELECT pg_sleep(10)", "")
	done := make(chan error, 1)
	go func() { done <- m.Migrate(ctx) }()
	defer func() {
		if err := <-done; err != nil {
			t.Errorf("long migration: %v", err)
		}
	}()

	observer, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close(context.Background())
	for {
		var sleeping bool
		if err := observer.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1)
   AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep%')`, pid).Scan(&sleeping); err != nil {
			t.Fatal(err)
		}
		if sleeping {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the long migration ended before it was seen running: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}

	sctx, scancel := context.WithTimeout(ctx, 2*time.Second) // the readiness check's bound
	defer scancel()
	start := time.Now()
	st, err := store.MigrationStatus(sctx)
	if err != nil {
		t.Fatalf("schema status during a migration: %v after %v", err, time.Since(start))
	}
	if !st.UpToDate() {
		t.Fatalf("status %+v during another table's migration", st)
	}
}
