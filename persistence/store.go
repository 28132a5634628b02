package persistence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// StatementTimeout is Postgres's statement_timeout on every connection:
	// a statement running longer is cancelled (SQLSTATE 57014). Default:
	// 60s; negative: none.
	StatementTimeout time.Duration
	// LockTimeout is lock_timeout on every connection: a statement waiting
	// longer for a lock (a row, a table, the documents advisory lock) fails
	// (SQLSTATE 55P03). Default: 30s; negative: none.
	LockTimeout time.Duration
	// IdleInTransactionTimeout is idle_in_transaction_session_timeout on
	// every connection: Postgres ends a session whose transaction sat idle
	// longer, releasing its locks. Default: 60s; negative: none.
	IdleInTransactionTimeout time.Duration
	// Now is the clock used to decide which documents are unexpired.
	// Default: time.Now.
	Now func() time.Time
	// BeforeCommit, if set, is called inside each batch's and each
	// refresh's transaction just before it commits: the window
	// fault-injection tests kill the process in, or hold it open.
	BeforeCommit func()
	// RefreshChunk is the most documents a batch rebuilds and writes at once
	// (one read of their state, one write): a change to a user or group with
	// many live documents refreshes them in chunks of this size, within
	// bounded memory. Default: 1000.
	RefreshChunk int
	// FanOutLimit is the most documents one refresh transaction writes
	// (RefreshQueued): a user or group with more live visitors is expanded
	// a page of this size at a time, so no transaction needs memory or time
	// for every member of a large group. Default: 10000.
	FanOutLimit int
	// RecheckDelay is how long after a refresh wrote a visitor's first
	// document, or changed the shared profiles (user, group) it is built
	// from, the document is rebuilt once more, for a batch that changed the
	// visitor or those profiles at the same time without seeing the
	// refresh, nor seen by it (see migration 010): longer than a batch
	// transaction lasts. Default: 2m; negative: at once.
	RecheckDelay time.Duration
}

// Store is Prechat's Postgres storage. It is safe for concurrent use.
type Store struct {
	pool         *pgxpool.Pool
	now          func() time.Time
	beforeCommit func()
	session      sessionTimeouts
	refreshChunk int
	fanOutLimit  int
	recheckDelay time.Duration
}

// sessionTimeouts are the timeouts set on every connection, as Postgres
// settings values in milliseconds ("0": none).
type sessionTimeouts struct {
	statement, lock, idleInTransaction string
}

func newSessionTimeouts(cfg *Config) sessionTimeouts {
	ms := func(d, def time.Duration) string {
		switch {
		case d == 0:
			d = def
		case d < 0:
			return "0"
		}
		return strconv.FormatInt(max(d.Milliseconds(), 1), 10)
	}
	return sessionTimeouts{
		statement:         ms(cfg.StatementTimeout, 60*time.Second),
		lock:              ms(cfg.LockTimeout, 30*time.Second),
		idleInTransaction: ms(cfg.IdleInTransactionTimeout, 60*time.Second),
	}
}

// set applies the timeouts to a connection's session. They are set after
// connecting rather than sent as startup parameters, which connection
// poolers such as PgBouncer refuse.
func (t sessionTimeouts) set(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false),
		set_config('idle_in_transaction_session_timeout', $3, false)`, t.statement, t.lock, t.idleInTransaction)
	if err != nil {
		return fmt.Errorf("set session timeouts: %w", err)
	}
	return nil
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
	session := newSessionTimeouts(cfg)
	pc.AfterConnect = session.set
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("create connection pool: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	chunk := cfg.RefreshChunk
	if chunk <= 0 {
		chunk = 1000
	}
	fanOut := cfg.FanOutLimit
	if fanOut <= 0 {
		fanOut = 10000
	}
	recheck := cfg.RecheckDelay
	switch {
	case recheck == 0:
		recheck = 2 * time.Minute
	case recheck < 0:
		recheck = 0
	}
	return &Store{pool: pool, now: now, beforeCommit: cfg.BeforeCommit, session: session, refreshChunk: chunk, fanOutLimit: fanOut, recheckDelay: recheck}, nil
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

// ErrRejected is wrapped by ApplyBatch's and TryBatch's errors when the
// batch's content is refused, which retrying cannot change; it is
// mapping.ErrRejected, so that the pipeline need not import this package.
var ErrRejected = mapping.ErrRejected

// classify marks err as ErrRejected when it says the batch's content was
// refused: a value that cannot be encoded as JSON, or a Postgres data
// exception (SQLSTATE class 22: a number, a time or a JSON text out of
// range), program limit (class 54) or check violation (23514). Any other
// error (connection lost, deadlock, serialization failure, cancelled
// context, a missing table) is returned as it is, to be retried.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrRejected) {
		return err
	}
	var (
		pe *pgconn.PgError
		me *json.MarshalerError
		ve *json.UnsupportedValueError
		te *json.UnsupportedTypeError
	)
	switch {
	case errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "54") || pe.Code == "23514"):
		// Not pe.Detail: it can quote the values, which the reason and the
		// logs must not.
	case errors.As(err, &me), errors.As(err, &ve), errors.As(err, &te):
	default:
		return err
	}
	return fmt.Errorf("%w: %w", ErrRejected, err)
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
