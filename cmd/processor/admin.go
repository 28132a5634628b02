package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/prechat/prechat/api"
	"github.com/prechat/prechat/persistence"
)

// newRegistry is the process's Prometheus registry, with Go runtime and
// process metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// readiness checks what the processor needs to serve, at most once a
// second: every role has started, after its one start-up check of the
// schema (no probe reads the schema again, or takes a lock); Postgres
// answers a ping; and, only when a role uses Kafka (the consumer, or the
// api role with the ingest enabled), the topic's metadata can be read.
type readiness struct {
	store     *persistence.Store
	dialer    *kafka.Dialer
	cfg       *Config
	withKafka bool
	// starting counts the roles that have not passed their start-up checks.
	starting atomic.Int32

	mu      sync.Mutex
	checked time.Time
	status  map[string]string
	ok      bool
}

func newReadiness(cfg *Config, store *persistence.Store, dialer *kafka.Dialer, roles int) *readiness {
	withKafka := cfg.hasRole("consumer") || cfg.hasRole("api") && len(cfg.WriteKeys)+len(cfg.ServerWriteKeys) > 0
	r := &readiness{store: store, dialer: dialer, cfg: cfg, withKafka: withKafka}
	r.starting.Store(int32(roles))
	return r
}

// started records that a role passed its start-up checks (the schema is
// current) and starts serving.
func (r *readiness) started() { r.starting.Add(-1) }

// check returns each dependency's state ("ok" or the error) and whether all
// are ok.
func (r *readiness) check(ctx context.Context) (map[string]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < time.Second {
		return r.status, r.ok
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status := map[string]string{"postgres": "ok", "schema": "ok"}
	if r.starting.Load() > 0 {
		status["schema"] = "not checked yet: the roles are starting (waiting for Postgres, or checking the schema)"
	}
	if err := r.store.Ping(ctx); err != nil {
		status["postgres"] = err.Error()
	}
	if r.withKafka {
		status["kafka"] = "ok"
		if err := r.kafka(ctx); err != nil {
			status["kafka"] = err.Error()
		}
	}
	r.ok = true
	for _, v := range status {
		r.ok = r.ok && v == "ok"
	}
	r.status, r.checked = status, time.Now()
	return status, r.ok
}

// kafka dials a broker and reads the topic's partitions.
func (r *readiness) kafka(ctx context.Context) error {
	var lastErr error
	for _, b := range r.cfg.brokers() {
		conn, err := r.dialer.DialContext(ctx, "tcp", b)
		if err != nil {
			lastErr = err
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		parts, err := conn.ReadPartitions(r.cfg.KafkaTopic)
		conn.Close()
		if err != nil {
			return fmt.Errorf("topic %s: %w", r.cfg.KafkaTopic, err)
		}
		if len(parts) == 0 {
			return fmt.Errorf("topic %s has no partitions", r.cfg.KafkaTopic)
		}
		return nil
	}
	return fmt.Errorf("no broker reachable: %w", lastErr)
}

// maxProfileSeconds bounds the seconds= of /debug/pprof/ requests (CPU
// profiles, traces, delta profiles).
const maxProfileSeconds = 30

// boundedProfile refuses a profile longer than maxProfileSeconds.
func boundedProfile(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("seconds"); v != "" {
			if secs, err := strconv.ParseFloat(v, 64); err != nil || secs < 0 || secs > maxProfileSeconds {
				http.Error(w, fmt.Sprintf("seconds must be a number from 0 to %d", maxProfileSeconds), http.StatusBadRequest)
				return
			}
		}
		next(w, r)
	}
}

// adminRole serves /healthz, /readyz, /metrics and, with PPROF=true,
// /debug/pprof/ on ADMIN_ADDR, never on the public port.
func adminRole(cfg *Config, ready *readiness, reg *prometheus.Registry, log *zap.Logger) func(context.Context) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		status, ok := ready.check(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(status)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", boundedProfile(pprof.Index))
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", boundedProfile(pprof.Profile))
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", boundedProfile(pprof.Trace))
	}
	server := &http.Server{
		Handler:           api.SecureHeaders(mux),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      (maxProfileSeconds + 15) * time.Second, // longer than the longest profile
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log),
	}
	return func(ctx context.Context) error {
		return runHTTP(ctx, server, "admin", "ADMIN_ADDR", cfg.AdminAddr, 2*time.Second, nil, log)
	}
}

// expiryRole deletes expired documents, conversations and applied-message
// records every EXPIRY_INTERVAL.
func expiryRole(cfg *Config, store *persistence.Store, log *zap.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTicker(cfg.ExpiryInterval)
		defer t.Stop()
		for {
			rep, err := store.Expire(ctx, cfg.PrechatTTL, cfg.AppliedRetention)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("expiry failed; will retry", zap.Error(err))
			case err == nil && rep != (persistence.ExpireReport{}):
				log.Info("expired", zap.Int64("documents", rep.Documents), zap.Int64("conversations", rep.Conversations), zap.Int64("applied_messages", rep.AppliedMessages))
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
}
