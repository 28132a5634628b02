// Package persistencetest gives each test its own migrated Postgres database
// on the server named by TEST_DATABASE_URL (default: the local server,
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable).
//
// The first call in a process migrates a template database named after a
// hash of the migrations; every test then gets a copy of it (CREATE DATABASE
// … TEMPLATE), which takes milliseconds, and the copy is dropped when the
// test ends.
package persistencetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/prechat/prechat/migrations"
	"github.com/prechat/prechat/persistence"
)

// DefaultURL is the server used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL is the URL tests connect to to create their databases.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var (
	templateMu   sync.Mutex
	templateName string
	templateErr  error
)

// NewDatabase creates an empty, migrated database for this test and returns
// its URL; the database is dropped when the test ends. The test fails if no
// Postgres server can be reached.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	templateMu.Lock()
	if templateName == "" {
		templateName, templateErr = migratedTemplate(ctx)
	}
	name, err := templateName, templateErr
	templateMu.Unlock()
	if err != nil {
		t.Fatalf("prepare template database on %s: %v", redacted(), err)
	}
	url, err := tryCreateDatabase(t, name)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" { // invalid_catalog_name
		// Another checkout's tests dropped the template: build it again.
		templateMu.Lock()
		if templateName == name {
			templateName, templateErr = migratedTemplate(ctx)
		}
		name, err = templateName, templateErr
		templateMu.Unlock()
		if err == nil {
			url, err = tryCreateDatabase(t, name)
		}
	}
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	return url
}

// NewEmptyDatabase creates a database without any migration for this test
// and returns its URL; it is dropped when the test ends.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	return createDatabase(t, "template1")
}

func createDatabase(t testing.TB, template string) string {
	t.Helper()
	url, err := tryCreateDatabase(t, template)
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	return url
}

func tryCreateDatabase(t testing.TB, template string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "prechat_test_" + randomHex(8)
	if err := admin(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize())
		return err
	}); err != nil {
		return "", err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin(ctx, func(c *pgx.Conn) error {
			_, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			return err
		}); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(AdminURL(), name), nil
}

// NewStore opens a Store on a new database (NewDatabase) and closes it when
// the test ends.
func NewStore(t testing.TB, cfg *persistence.Config) (*persistence.Store, string) {
	t.Helper()
	url := NewDatabase(t)
	s, err := persistence.Open(context.Background(), url, cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(s.Close)
	return s, url
}

// migratedTemplate creates (once per set of migrations, shared by every test
// process) a database with all migrations applied.
func migratedTemplate(ctx context.Context) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	name := "prechat_template_" + hex.EncodeToString(h.Sum(nil))[:16]
	err = admin(ctx, func(c *pgx.Conn) error {
		// Serialise template creation across test processes.
		if _, err := c.Exec(ctx, `SELECT pg_advisory_lock(7146)`); err != nil {
			return err
		}
		defer c.Exec(context.Background(), `SELECT pg_advisory_unlock(7146)`)
		// Templates of earlier migration sets are of little further use,
		// but other checkouts (branches, worktrees) may be testing with
		// them right now: only the oldest beyond the newest eight go.
		rows, err := c.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'prechat\_template\_%' AND datname <> $1 AND datname NOT LIKE '%\_building' ORDER BY oid DESC OFFSET 7`, name)
		if err != nil {
			return err
		}
		stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, db := range stale {
			if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
				return err
			}
		}
		var exists bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil || exists {
			return err
		}
		building := name + "_building"
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{building}.Sanitize()+" WITH (FORCE)"); err != nil {
			return err
		}
		if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{building}.Sanitize()); err != nil {
			return err
		}
		s, err := persistence.Open(ctx, withDatabase(AdminURL(), building), nil)
		if err != nil {
			return err
		}
		err = s.Migrate(ctx)
		s.Close()
		if err != nil {
			return err
		}
		_, err = c.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{building}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize())
		return err
	})
	return name, err
}

func admin(ctx context.Context, fn func(*pgx.Conn) error) error {
	c, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redacted(), err)
	}
	defer c.Close(context.Background())
	return fn(c)
}

// withDatabase returns a keyword/value connection string for database name
// on the server of url (keyword form also covers Unix-socket hosts).
func withDatabase(url, name string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		panic(fmt.Sprintf("TEST_DATABASE_URL is not a valid connection string: %v", err))
	}
	q := func(v string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'" }
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", q(cfg.Host), cfg.Port, q(cfg.User), q(name))
	if cfg.Password != "" {
		dsn += " password=" + q(cfg.Password)
	}
	return dsn
}

func redacted() string {
	cfg, err := pgx.ParseConfig(AdminURL())
	if err != nil {
		return "TEST_DATABASE_URL"
	}
	return fmt.Sprintf("postgres server %s:%d (TEST_DATABASE_URL)", cfg.Host, cfg.Port)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
