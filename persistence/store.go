package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prechat/prechat/mapping"
)

// ErrNotFound is returned when the requested row does not exist; it is
// mapping.ErrNotFound, so callers need not import this package to test it.
var ErrNotFound = mapping.ErrNotFound

// Config configures a Store. The zero value works.
type Config struct {
	// MaxConns bounds the connection pool. Default: 8.
	MaxConns int32
	// Now is the clock used to decide which documents are unexpired.
	// Default: time.Now.
	Now func() time.Time
	// BeforeCommit, if set, is called inside each batch's transaction just
	// before it commits: the window fault-injection tests kill the process in.
	BeforeCommit func()
}

// Store is Prechat's Postgres storage. It is safe for concurrent use.
type Store struct {
	pool         *pgxpool.Pool
	now          func() time.Time
	beforeCommit func()
}

// Open creates a Store over a connection pool for databaseURL. It does not
// connect: the first use does, and Ping checks reachability.
func Open(ctx context.Context, databaseURL string, cfg *Config) (*Store, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	pc, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", redact(err))
	}
	pc.MaxConns = 8
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("create connection pool: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Store{pool: pool, now: now, beforeCommit: cfg.BeforeCommit}, nil
}

// Close closes every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that Postgres answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// withTx runs fn in a transaction, retrying it from the start when Postgres
// aborted it for a deadlock or a serialization failure (both can happen when
// two consumers write the same rows during a rebalance).
func (s *Store) withTx(ctx context.Context, fn func(pgx.Tx) error) error {
	const attempts = 5
	var err error
	for i := range attempts {
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i+1) * 20 * time.Millisecond):
		}
	}
	return err
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// interpret turns driver errors into this package's errors.
func interpret(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// redact keeps a connection string's password out of an error message:
// pgx's parse errors can quote the URL.
func redact(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("invalid connection string (value hidden, as it may hold a password)")
	}
	return err
}
