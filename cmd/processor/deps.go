package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/persistence"
)

// deps are what a command uses, opened from its configuration.
type deps struct {
	settings *mapping.Settings
	dialer   *kafka.Dialer
	store    *persistence.Store
	// policy admits events (consumer, replay); set with "kafka".
	policy *mapping.Policy
	// tracer traces the roles (docs/tracing.md); nil when tracing is off
	// (see startTracing, which serve and dev call).
	tracer trace.TracerProvider
}

// startTracing turns tracing on when environ's OTEL_* variables ask for it
// (see startTracing); the returned function flushes the spans left.
func (d *deps) startTracing(ctx context.Context, environ []string, log *zap.Logger) (func(), error) {
	tp, stop, err := startTracing(ctx, environ)
	if err != nil {
		return nil, usageError{err}
	}
	d.tracer = tp
	if tp != nil {
		log.Info("tracing on: exporting spans over OTLP/HTTP")
	}
	return func() {
		if err := stop(5 * time.Second); err != nil {
			log.Warn("exporting the last spans failed", zap.Error(err))
		}
	}, nil
}

// openDeps validates the configuration for what the command needs ("db",
// "kafka", "settings") and opens those parts. Every error names the
// variable at fault and is a usage error; close releases what was opened.
func openDeps(ctx context.Context, cfg *Config, needs ...string) (*deps, error) {
	if err := cfg.Validate(needs...); err != nil {
		return nil, usageError{err}
	}
	d := &deps{}
	var err error
	if slices.Contains(needs, "settings") {
		if d.settings, err = loadSettings(cfg.SettingsFile); err != nil {
			return nil, usageError{fmt.Errorf("SETTINGS_FILE: %w", err)}
		}
	}
	if slices.Contains(needs, "kafka") {
		if d.dialer, err = cfg.kafkaDialer(); err != nil {
			return nil, usageError{err}
		}
		if d.policy, err = cfg.policy(); err != nil {
			return nil, usageError{err}
		}
	}
	if slices.Contains(needs, "db") {
		if d.store, err = persistence.Open(ctx, cfg.DatabaseURL, &persistence.Config{
			MaxConns:                 int32(cfg.poolSize()),
			StatementTimeout:         noneIfZero(cfg.DatabaseStatementTimeout),
			LockTimeout:              noneIfZero(cfg.DatabaseLockTimeout),
			IdleInTransactionTimeout: noneIfZero(cfg.DatabaseIdleInTransactionTimeout),
			BeforeCommit:             failpoint("kill-in-transaction")}); err != nil {
			return nil, usageError{fmt.Errorf("DATABASE_URL: %w", err)}
		}
	}
	return d, nil
}

// poolSize is DATABASE_MAX_CONNS, by default a connection per apply lane
// beside 8 for the API's reads, the expiry loop and the suppression reads.
func (c *Config) poolSize() int {
	if c.DatabaseMaxConns > 0 {
		return c.DatabaseMaxConns
	}
	return 8 + c.ApplyLanes
}

// noneIfZero maps a timeout variable's 0 (none) to persistence's negative
// (none; its 0 is the default).
func noneIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func (d *deps) close() {
	if d.store != nil {
		d.store.Close()
	}
}
