package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/prechat/prechat/api"
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
	d, err := openDeps(ctx, cfg, needDB|needKafka|needSettings)
	if err != nil {
		return err
	}
	defer d.close()
	log := newLogger(cfg, stderr)
	defer func() { _ = log.Sync() }()
	log.Info("starting", zap.Strings("roles", cfg.Roles), zap.Any("config", cfg.fields()))
	flushTraces, err := d.startTracing(ctx, environ, log)
	if err != nil {
		return err
	}
	defer flushTraces()
	roles, err := buildRoles(cfg, d, nil, log)
	if err != nil {
		return usageError{err}
	}
	err = runAll(ctx, cfg.ShutdownGrace, roles)
	log.Info("stopped")
	return err
}

// buildRoles builds what serve runs: the admin server always, and the
// consumer (with the expiry loop) and the api as ROLES says. extra, if set,
// serves the public port's paths outside /v1/ (processor dev's demo page).
func buildRoles(cfg *Config, d *deps, extra http.Handler, log *zap.Logger) ([]func(context.Context) error, error) {
	dialer, store := d.dialer, d.store
	reg := newRegistry()
	var roles []func(context.Context) error
	if cfg.hasRole("consumer") {
		pc := cfg.pipelineConfig(d)
		pc.ShutdownGrace = cfg.ShutdownGrace / 2
		pc.Logger = log.Named("pipeline")
		pc.Registerer = reg
		pc.AfterCommit = failpoint("kill-after-commit")
		pc.TracerProvider = d.tracer
		consumer, err := pipeline.New(pc, store)
		if err != nil {
			return nil, err
		}
		roles = append(roles, consumer.Run, expiryRole(cfg, store, log.Named("expiry")))
	}
	if cfg.hasRole("api") {
		run, err := apiRole(cfg, d, reg, extra, log.Named("api"))
		if err != nil {
			return nil, err
		}
		roles = append(roles, run)
	}
	// The admin server starts at once, so probes answer (not ready) while
	// the other roles wait for Postgres and check the schema; once each has
	// checked it, readiness only pings.
	ready := newReadiness(cfg, store, dialer, len(roles))
	for i, run := range roles {
		roles[i] = func(ctx context.Context) error {
			if err := waitForPostgres(ctx, store, log); err != nil {
				return nil // stopped while waiting
			}
			if err := checkSchema(ctx, store); err != nil {
				return err
			}
			ready.started()
			return run(ctx)
		}
	}
	return append(roles, adminRole(cfg, ready, reg, log.Named("admin"))), nil
}

// runAll runs the roles until ctx is cancelled or one fails; a failure
// stops the others. Once stopping, the roles have grace to return; after
// that runAll gives up on them (an unfinished batch is rolled back with the
// process: its offsets were not stored, so nothing is lost).
func runAll(ctx context.Context, grace time.Duration, roles []func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, run := range roles {
		wg.Go(func() {
			if err := run(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		select {
		case <-done:
		case <-time.After(grace):
			mu.Lock()
			errs = append(errs, fmt.Errorf("did not stop within SHUTDOWN_GRACE (%s)", grace))
			mu.Unlock()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(errs...)
}

// apiRole builds the public HTTP server: documents, snippet and ingest, with
// the LISTEN/NOTIFY hub that wakes long-polls.
func apiRole(cfg *Config, d *deps, reg prometheus.Registerer, extra http.Handler, log *zap.Logger) (func(context.Context) error, error) {
	settings, dialer, store := d.settings, d.dialer, d.store
	hub := persistence.NewHub(cfg.DatabaseURL, 2*time.Second, func(err error) { log.Warn("notification listener", zap.Error(err)) })
	var producer api.Producer
	var writer *kafka.Writer
	if len(cfg.WriteKeys)+len(cfg.ServerWriteKeys) > 0 {
		w := pipeline.NewWriter(cfg.brokers(), cfg.KafkaTopic, dialer, log.Named("writer")).WithTracing(d.tracer)
		writer, producer = w.Writer, w
	}
	scriptURL := cfg.DeploymentScriptURL
	if scriptURL == "" {
		scriptURL = settings.ScriptURL()
	}
	rate, ingestRate := cfg.RateLimit, cfg.IngestRateLimit
	if rate == 0 {
		rate = -1 // 0 disables the limit
	}
	if ingestRate == 0 {
		ingestRate = -1
	}
	trusted, err := api.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	server, err := api.New(api.Config{
		AllowedOrigins:             cfg.AllowedOrigins,
		WriteKeys:                  cfg.WriteKeys,
		ServerWriteKeys:            cfg.ServerWriteKeys,
		IdentitySecret:             cfg.signingSecret(),
		DeploymentScriptURL:        scriptURL,
		MaxWaiters:                 cfg.MaxWaiters,
		MaxWaitersPerClient:        cfg.MaxWaitersPerClient,
		DocumentAccess:             api.DocumentAccess(cfg.DocumentAccess),
		ReadTimeout:                cfg.DocumentReadTimeout,
		RateLimit:                  rate,
		RateBurst:                  int(4*rate) + 1,
		IngestRateLimit:            ingestRate,
		IngestRateBurst:            int(4*ingestRate) + 1,
		MaxClients:                 cfg.RateLimitClients,
		ClientIPHeader:             cfg.ClientIPHeader,
		TrustedProxies:             trusted,
		MaxIngestRequests:          cfg.MaxIngestRequests,
		MaxIngestRequestsPerClient: cfg.MaxIngestRequestsPerClient,
		MaxIngestBytes:             cfg.MaxIngestBytes,
		Registerer:                 reg,
		Logger:                     log,
		TracerProvider:             d.tracer,
	}, store, hub, producer)
	if err != nil {
		return nil, err
	}
	var handler http.Handler = server
	if extra != nil {
		mux := http.NewServeMux()
		mux.Handle("/v1/", server)
		mux.Handle("/", api.SecureHeaders(extra))
		handler = mux
	}
	httpServer := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      45 * time.Second, // longer than the longest long-poll (30s)
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	return func(ctx context.Context) error {
		// The hub outlives ctx: waiters keep being woken while the server
		// drains and shuts down.
		hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
		defer stopHub()
		go func() { _ = hub.Run(hubCtx) }()
		if writer != nil {
			defer func() { _ = writer.Close() }()
		}
		return runHTTP(ctx, httpServer, "http", "HTTP_ADDR", cfg.HTTPAddr, cfg.ShutdownGrace/2, server.Drain, log, zap.Bool("ingest", writer != nil))
	}, nil
}

// waitForPostgres pings until Postgres answers, with backoff, so that a
// processor started before its database waits instead of crash-looping.
func waitForPostgres(ctx context.Context, store *persistence.Store, log *zap.Logger) error {
	backoff := pipeline.Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second}
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
		log.Warn("postgres unreachable; retrying", zap.Duration("backoff", backoff.Next()), zap.Error(err))
		if !backoff.Wait(ctx) {
			return ctx.Err()
		}
	}
}
