package persistence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"

	"github.com/prechat/prechat/migrations"
)

// VersionTable is the table in which tern records the schema version.
const VersionTable = "prechat_schema_version"

// Migration is one schema migration and whether it is applied.
type Migration struct {
	Version int32
	// Name is the file name without number and extension, e.g. "initial".
	Name    string
	Applied bool
}

// MigrationStatus is the database's schema version against the binary's.
type MigrationStatus struct {
	// Current is the version the database is at (0: none applied).
	Current int32
	// Latest is the newest version this binary knows.
	Latest int32
	// Migrations lists every migration this binary knows.
	Migrations []Migration
}

// UpToDate reports whether every migration this binary knows is applied. A
// database ahead of the binary (a newer release migrated it during a rolling
// upgrade) is up to date for it: migrations stay backward compatible.
func (m MigrationStatus) UpToDate() bool { return m.Current >= m.Latest }

// Migrate applies every pending migration, each in its own transaction,
// under tern's advisory lock so concurrent runs wait for each other.
func (s *Store) Migrate(ctx context.Context) error {
	return s.withMigrator(ctx, func(m *migrate.Migrator) error {
		if err := m.Migrate(ctx); err != nil {
			return fmt.Errorf("apply migrations: %w", err)
		}
		return nil
	})
}

// MigrationStatus reports which migrations are applied.
func (s *Store) MigrationStatus(ctx context.Context) (MigrationStatus, error) {
	var st MigrationStatus
	err := s.withMigrator(ctx, func(m *migrate.Migrator) error {
		cur, err := m.GetCurrentVersion(ctx)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		st.Current = cur
		for _, mig := range m.Migrations {
			name := strings.TrimSuffix(mig.Name, ".sql")
			if _, rest, ok := strings.Cut(name, "_"); ok {
				name = rest
			}
			st.Migrations = append(st.Migrations, Migration{Version: mig.Sequence, Name: name, Applied: mig.Sequence <= cur})
			st.Latest = mig.Sequence
		}
		return nil
	})
	return st, err
}

// withMigrator runs fn with a tern migrator on a pooled connection whose
// statement and lock timeouts are lifted meanwhile: a migration may build
// an index for minutes, and waits on tern's advisory lock for another
// migrate run to finish.
// SchemaVersion reports the database's schema version against the
// binary's with one query, without tern's migrator (which creates its
// table and takes an advisory lock): for start-up and readiness checks.
// Migrations is left empty.
func (s *Store) SchemaVersion(ctx context.Context) (MigrationStatus, error) {
	st := MigrationStatus{Latest: latestMigration}
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM prechat_schema_version`).Scan(&st.Current) // VersionTable
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table: never migrated
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read schema version: %w", err)
	}
	return st, nil
}

// latestMigration is the version of the newest embedded migration: the
// number its file name starts with, as tern reads it.
var latestMigration = func() int32 {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		panic(err)
	}
	var latest int32
	for _, n := range names {
		digits, _, _ := strings.Cut(n, "_")
		v, err := strconv.ParseInt(digits, 10, 32)
		if err != nil {
			panic(fmt.Sprintf("migration %s: its name does not start with a version number", n))
		}
		latest = max(latest, int32(v))
	}
	return latest
}()

func (s *Store) withMigrator(ctx context.Context, fn func(*migrate.Migrator) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Release()
	if err := (sessionTimeouts{"0", "0", s.session.idleInTransaction}).set(ctx, conn.Conn()); err != nil {
		return err
	}
	defer func() {
		if s.session.set(context.WithoutCancel(ctx), conn.Conn()) != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx)) // the pool drops a closed connection
		}
	}()
	m, err := migrate.NewMigrator(ctx, conn.Conn(), VersionTable)
	if err != nil {
		return fmt.Errorf("prepare migrator: %w", err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	return fn(m)
}
