package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/pipeline"
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

// needs says which parts of the configuration a command uses; openDeps
// validates and opens those.
type needs uint8

const (
	// needDB: DATABASE_URL and the pool's settings, opened as a Store.
	needDB needs = 1 << iota
	// needKafka: the brokers, topic, group and consumer settings, opened as
	// a dialer and the events' admission policy.
	needKafka
	// needSettings: SETTINGS_FILE and PRECHAT_TTL, the destination
	// settings.
	needSettings
)

func (n needs) has(part needs) bool { return n&part != 0 }

// openDeps validates the configuration for what the command needs and
// opens those parts. Every error names the variable at fault and is a
// usage error; close releases what was opened.
func openDeps(ctx context.Context, cfg *Config, n needs) (*deps, error) {
	if err := cfg.Validate(n); err != nil {
		return nil, usageError{err}
	}
	d := &deps{}
	var err error
	if n.has(needSettings) {
		if d.settings, err = loadSettings(cfg.SettingsFile); err != nil {
			return nil, usageError{fmt.Errorf("SETTINGS_FILE: %w", err)}
		}
	}
	if n.has(needKafka) {
		if d.dialer, err = cfg.kafkaDialer(); err != nil {
			return nil, usageError{err}
		}
		if d.policy, err = cfg.policy(); err != nil {
			return nil, usageError{err}
		}
	}
	if n.has(needKafka) && n.has(needSettings) {
		// The consumer's ranges are the pipeline's to check.
		pc := cfg.pipelineConfig(d)
		if err := pc.Validate(); err != nil {
			return nil, usageError{namePipelineVar(err)}
		}
	}
	if n.has(needDB) {
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

// pipelineVars names the variable each pipeline.Config field is set from.
var pipelineVars = map[string]string{
	"Brokers": "KAFKA_BROKERS", "Topic": "KAFKA_TOPIC", "GroupID": "KAFKA_GROUP",
	"BatchSize": "BATCH_SIZE", "BatchTimeout": "BATCH_TIMEOUT", "Lanes": "APPLY_LANES",
	"StartOffset": "KAFKA_START_OFFSET", "SessionTimeout": "KAFKA_SESSION_TIMEOUT",
	"HeartbeatInterval": "KAFKA_HEARTBEAT_INTERVAL", "Materializer": "SETTINGS_FILE",
	"RefreshCoalesce": "REFRESH_COALESCE",
}

// namePipelineVar rewrites a pipeline.FieldError to name the variable.
func namePipelineVar(err error) error {
	var fe *pipeline.FieldError
	if errors.As(err, &fe) && pipelineVars[fe.Field] != "" {
		return fmt.Errorf("%s: %s", pipelineVars[fe.Field], fe.Problem)
	}
	return err
}

// pipelineConfig maps the configuration to the consumer's, with what d
// opened; serve and replay add their hooks.
func (c *Config) pipelineConfig(d *deps) pipeline.Config {
	return pipeline.Config{
		Brokers:           c.brokers(),
		Topic:             c.KafkaTopic,
		GroupID:           c.KafkaGroup,
		Dialer:            d.dialer,
		Materializer:      &mapping.Materializer{Settings: d.settings, TTL: c.PrechatTTL},
		Policy:            d.policy,
		BatchSize:         c.BatchSize,
		BatchTimeout:      c.BatchTimeout,
		Lanes:             c.ApplyLanes,
		RefreshCoalesce:   c.RefreshCoalesce,
		StartOffset:       c.startOffset(),
		SessionTimeout:    c.KafkaSessionTimeout,
		RebalanceTimeout:  c.KafkaSessionTimeout,
		HeartbeatInterval: c.KafkaHeartbeatInterval,
	}
}

// poolSize is DATABASE_MAX_CONNS, by default a connection per apply lane
// beside 8 for the API's reads, the expiry loop and the suppression reads.
func (c *Config) poolSize() int {
	if c.DatabaseMaxConns > 0 {
		return c.DatabaseMaxConns
	}
	return 8 + c.lanes()
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
