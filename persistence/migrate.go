package persistence

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
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

// MigrationStatus reports which migrations are applied. It only reads: no
// lock, nothing created (a database no migration has touched is at version
// 0), so it answers at once while a migration runs elsewhere, and a role
// with SELECT on the version table can run it (serve's schema check, on
// every /readyz).
func (s *Store) MigrationStatus(ctx context.Context) (MigrationStatus, error) {
	var st MigrationStatus
	// A migrator without a connection only loads the files.
	m, err := migrate.NewMigrator(ctx, nil, VersionTable)
	if err != nil {
		return st, fmt.Errorf("prepare migrator: %w", err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return st, fmt.Errorf("load migrations: %w", err)
	}
	for _, mig := range m.Migrations {
		name := strings.TrimSuffix(mig.Name, ".sql")
		if _, rest, ok := strings.Cut(name, "_"); ok {
			name = rest
		}
		st.Migrations = append(st.Migrations, Migration{Version: mig.Sequence, Name: name})
		st.Latest = mig.Sequence
	}
	cur, err := s.schemaVersion(ctx)
	if err != nil {
		return st, err
	}
	st.Current = cur
	for i := range st.Migrations {
		st.Migrations[i].Applied = st.Migrations[i].Version <= cur
	}
	return st, nil
}

// schemaVersion reads the version tern recorded; 0 when no migration ever
// ran (no version table, or an empty one). tern updates it in each
// migration's own transaction, so it is never half-way.
func (s *Store) schemaVersion(ctx context.Context) (int32, error) {
	var v int32
	err := s.pool.QueryRow(ctx, `SELECT version FROM prechat_schema_version`).Scan(&v)
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows), errors.As(err, &pe) && pe.Code == "42P01": // undefined_table
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// withMigrator runs fn with a tern migrator on a pooled connection whose
// statement and lock timeouts are lifted meanwhile: a migration may build
// an index for minutes, and waits on tern's advisory lock for another
// migrate run to finish.
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
