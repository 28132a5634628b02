package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/pipeline"
)

// serve runs "processor serve": the roles in ROLES until SIGINT/SIGTERM.
func serve(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cfg, rest, err := loadConfig("serve", args, environ, stderr)
	if err != nil {
		return usageError{err}
	}
	if len(rest) > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " "))}
	}
	if err := cfg.Validate("db", "kafka", "settings"); err != nil {
		return usageError{err}
	}
	settings, err := loadSettings(cfg.SettingsFile)
	if err != nil {
		return usageError{fmt.Errorf("SETTINGS_FILE: %w", err)}
	}
	dialer, err := cfg.kafkaDialer()
	if err != nil {
		return usageError{err}
	}
	log := newLogger(cfg, stderr)
	defer func() { _ = log.Sync() }()
	log.Info("starting", zap.Any("config", cfg.fields()))

	store, err := persistence.Open(ctx, cfg.DatabaseURL, nil)
	if err != nil {
		return usageError{fmt.Errorf("DATABASE_URL: %w", err)}
	}
	defer store.Close()
	if err := waitForPostgres(ctx, store, log); err != nil {
		return nil // stopped while waiting
	}
	if err := checkSchema(ctx, store); err != nil {
		return err
	}

	consumer, err := pipeline.New(pipeline.Config{
		Brokers:       cfg.brokers(),
		Topic:         cfg.KafkaTopic,
		GroupID:       cfg.KafkaGroup,
		Dialer:        dialer,
		Materializer:  &mapping.Materializer{Settings: settings, TTL: cfg.PrechatTTL},
		BatchSize:     cfg.BatchSize,
		BatchTimeout:  cfg.BatchTimeout,
		StartOffset:   cfg.startOffset(),
		ShutdownGrace: cfg.ShutdownGrace / 2,
		Logger:        log.Named("pipeline"),
	}, store)
	if err != nil {
		return usageError{err}
	}
	err = consumer.Run(ctx)
	log.Info("stopped")
	return err
}

// waitForPostgres pings until Postgres answers, with backoff, so that a
// processor started before its database waits instead of crash-looping.
func waitForPostgres(ctx context.Context, store *persistence.Store, log *zap.Logger) error {
	backoff := 200 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := store.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		log.Warn("postgres unreachable; retrying", zap.Duration("backoff", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}
