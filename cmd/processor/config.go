package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"go.uber.org/zap/zapcore"

	"github.com/prechat/prechat/api"
	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/pipeline"
)

// Config is the processor's configuration: 12-factor environment variables,
// each mirrored by a flag (DATABASE_URL ↔ --database-url), validated once
// before anything starts. docs/configuration.md lists them.
type Config struct {
	// DatabaseURL is the Postgres connection string. Required by serve and migrate.
	DatabaseURL string `env:"DATABASE_URL"`
	// KafkaBrokers are the bootstrap brokers, comma separated host:port. Required by serve.
	KafkaBrokers []string `env:"KAFKA_BROKERS"`
	// KafkaTopic is the topic of Segment events.
	KafkaTopic string `env:"KAFKA_TOPIC" envDefault:"segment-events"`
	// KafkaGroup is the consumer group; offsets are stored per group.
	KafkaGroup string `env:"KAFKA_GROUP" envDefault:"prechat"`
	// KafkaStartOffset is where a partition without stored offsets starts: earliest or latest.
	KafkaStartOffset string `env:"KAFKA_START_OFFSET" envDefault:"earliest"`
	// KafkaSessionTimeout is the consumer group session timeout: how long a
	// member that stopped heartbeating (a killed pod) keeps its partitions.
	KafkaSessionTimeout time.Duration `env:"KAFKA_SESSION_TIMEOUT" envDefault:"30s"`
	// KafkaHeartbeatInterval is how often a member heartbeats.
	KafkaHeartbeatInterval time.Duration `env:"KAFKA_HEARTBEAT_INTERVAL" envDefault:"3s"`
	// KafkaTLS enables TLS to the brokers (system roots, or KAFKA_TLS_CA_FILE).
	KafkaTLS bool `env:"KAFKA_TLS" envDefault:"false"`
	// KafkaTLSCAFile is a PEM bundle of CAs trusted for the brokers.
	KafkaTLSCAFile string `env:"KAFKA_TLS_CA_FILE"`
	// KafkaSASLMechanism is empty (none), plain, scram-sha-256 or scram-sha-512.
	KafkaSASLMechanism string `env:"KAFKA_SASL_MECHANISM"`
	// KafkaSASLUsername and KafkaSASLPassword are the SASL credentials.
	KafkaSASLUsername string `env:"KAFKA_SASL_USERNAME"`
	KafkaSASLPassword string `env:"KAFKA_SASL_PASSWORD"`

	// SettingsFile is the destination settings JSON (Segment's export). Required by serve.
	SettingsFile string `env:"SETTINGS_FILE"`
	// PrechatTTL is how long a document lives after its conversation start.
	PrechatTTL time.Duration `env:"PRECHAT_TTL" envDefault:"30m"`
	// Roles are the roles serve runs, comma separated: consumer, api.
	Roles []string `env:"ROLES" envDefault:"consumer,api"`
	// BatchSize is the most messages applied in one transaction.
	BatchSize int `env:"BATCH_SIZE" envDefault:"10000"`
	// BatchTimeout is the longest a batch waits to fill once it has a message.
	BatchTimeout time.Duration `env:"BATCH_TIMEOUT" envDefault:"50ms"`
	// ApplyLanes is how many batches the consumer applies at once, each
	// over its share of the assigned partitions.
	ApplyLanes int `env:"APPLY_LANES" envDefault:"2"`
	// RefreshCoalesce is how long, while the consumer is behind, a queued
	// change waits for more changes of its visitor, user or group before
	// their documents are rebuilt once for all (negative: never wait).
	RefreshCoalesce time.Duration `env:"REFRESH_COALESCE" envDefault:"1s"`
	// ShutdownGrace bounds the clean stop after SIGTERM.
	ShutdownGrace time.Duration `env:"SHUTDOWN_GRACE" envDefault:"20s"`

	// AdminAddr serves /healthz, /readyz, /metrics and, with PPROF, /debug/pprof/.
	AdminAddr string `env:"ADMIN_ADDR" envDefault:":9090"`
	// ExpiryInterval is how often expired documents and old bookkeeping are deleted (consumer role).
	ExpiryInterval time.Duration `env:"EXPIRY_INTERVAL" envDefault:"1m"`
	// AppliedRetention is how long applied messageIds are kept for read-your-writes.
	AppliedRetention time.Duration `env:"APPLIED_RETENTION" envDefault:"24h"`

	// HTTPAddr is the public HTTP address (api role).
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8080"`
	// WriteKeys are the accepted Segment write keys, comma separated; empty disables ingest.
	WriteKeys []string `env:"WRITE_KEYS"`
	// AllowedOrigins are the origins allowed by CORS, comma separated ("*" for any).
	AllowedOrigins []string `env:"ALLOWED_ORIGINS"`
	// DeploymentScriptURL overrides the deployment.js URL the snippet loads
	// (default: from the settings' hostname and apiVersion).
	DeploymentScriptURL string `env:"DEPLOYMENT_SCRIPT_URL"`
	// RateLimit is the document requests a second allowed per client (bursts of 4×).
	RateLimit float64 `env:"RATE_LIMIT" envDefault:"5"`
	// MaxWaiters bounds concurrent long-polls.
	MaxWaiters int `env:"MAX_WAITERS" envDefault:"10000"`
	// ClientIPHeader names a header to which your proxies append the client address (X-Forwarded-For).
	ClientIPHeader string `env:"CLIENT_IP_HEADER"`
	// TrustedProxies says which hop of CLIENT_IP_HEADER is the client: the
	// number of proxies in front of the service, or their networks, comma
	// separated CIDRs.
	TrustedProxies string `env:"TRUSTED_PROXIES" envDefault:"1"`
	// RateLimitClients bounds the clients each rate limiter tracks.
	RateLimitClients int `env:"RATE_LIMIT_CLIENTS" envDefault:"100000"`
	// IngestRateLimit is the ingest requests a second allowed per client (bursts of 4×).
	IngestRateLimit float64 `env:"INGEST_RATE_LIMIT" envDefault:"50"`
	// MaxIngestRequests bounds concurrent ingest requests.
	MaxIngestRequests int `env:"MAX_INGEST_REQUESTS" envDefault:"128"`
	// MaxIngestRequestsPerClient bounds one client's concurrent ingest requests.
	MaxIngestRequestsPerClient int `env:"MAX_INGEST_REQUESTS_PER_CLIENT" envDefault:"8"`
	// MaxIngestBytes bounds the body bytes ingest requests hold at once.
	MaxIngestBytes int64 `env:"MAX_INGEST_BYTES" envDefault:"33554432"`

	// DatabaseMaxConns bounds each process's Postgres connection pool (0: 8 + APPLY_LANES).
	DatabaseMaxConns int `env:"DATABASE_MAX_CONNS" envDefault:"0"`
	// DatabaseStatementTimeout is statement_timeout on every Postgres connection (0: none).
	DatabaseStatementTimeout time.Duration `env:"DATABASE_STATEMENT_TIMEOUT" envDefault:"60s"`
	// DatabaseLockTimeout is lock_timeout on every Postgres connection (0: none).
	DatabaseLockTimeout time.Duration `env:"DATABASE_LOCK_TIMEOUT" envDefault:"30s"`
	// DatabaseIdleInTransactionTimeout is idle_in_transaction_session_timeout on every Postgres connection (0: none).
	DatabaseIdleInTransactionTimeout time.Duration `env:"DATABASE_IDLE_IN_TRANSACTION_TIMEOUT" envDefault:"60s"`

	// Pprof serves /debug/pprof/ on the admin port.
	Pprof bool `env:"PPROF" envDefault:"false"`

	// DocumentAccess is who may read a document: token (only with the
	// conversation secret, X-Prechat-Token) or anonymousId (anyone naming
	// the visitor; weaker).
	DocumentAccess string `env:"DOCUMENT_ACCESS" envDefault:"token"`
	// MaxWaitersPerClient bounds one client's concurrent long-polls (beyond: 429).
	MaxWaitersPerClient int `env:"MAX_WAITERS_PER_CLIENT" envDefault:"20"`
	// DocumentReadTimeout bounds a document request's storage reads, the
	// wait for a pooled connection included (beyond: 503).
	DocumentReadTimeout time.Duration `env:"DOCUMENT_READ_TIMEOUT" envDefault:"2s"`

	// IdentitySecrets are the HMAC-SHA256 secrets of context.prechat.userHash,
	// comma separated: any verifies (rotation), the first signs the events
	// of SERVER_WRITE_KEYS. Each at least 32 characters.
	IdentitySecrets []string `env:"IDENTITY_SECRET"`
	// IdentityJWTKeys is a file of public keys (JWKS or PEM) that verify
	// context.prechat.identityToken (RS256 or ES256).
	IdentityJWTKeys string `env:"IDENTITY_JWT_KEYS"`
	// IdentityJWTIssuer, when set, must equal an identity token's iss.
	IdentityJWTIssuer string `env:"IDENTITY_JWT_ISSUER"`
	// IdentityJWTAudience, when set, must be in an identity token's aud.
	IdentityJWTAudience string `env:"IDENTITY_JWT_AUDIENCE"`
	// ServerWriteKeys are write keys for the site's servers only, comma
	// separated: the ingest vouches for the userId of the events sent with
	// one (it adds the userHash itself). Needs IDENTITY_SECRET.
	ServerWriteKeys []string `env:"SERVER_WRITE_KEYS"`
	// EventTimePast and EventTimeFuture bound an event's claimed time around
	// its Kafka record time; outside, the record time is used.
	EventTimePast   time.Duration `env:"EVENT_TIME_PAST" envDefault:"24h"`
	EventTimeFuture time.Duration `env:"EVENT_TIME_FUTURE" envDefault:"5m"`

	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	// LogFormat is json or console.
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"`
}

// Secret variables are masked wherever the configuration is shown.
var secretVars = []string{"DATABASE_URL", "KAFKA_SASL_PASSWORD", "WRITE_KEYS", "IDENTITY_SECRET", "SERVER_WRITE_KEYS"}

// loadConfig reads the environment, lets flags override it and parses the
// result. Unknown flags and malformed values are errors naming the variable.
func loadConfig(name string, args []string, environ []string, stderr io.Writer, extra ...func(*flag.FlagSet)) (*Config, []string, error) {
	params, err := env.GetFieldParams(&Config{})
	if err != nil {
		return nil, nil, err
	}
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	fs := flag.NewFlagSet("processor "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := map[string]*string{}
	for _, p := range params {
		usage := "environment " + p.Key
		if p.HasDefaultValue {
			usage += " (default " + p.DefaultValue + ")"
		}
		flags[p.Key] = fs.String(flagName(p.Key), "", usage)
	}
	for _, add := range extra {
		add(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	fs.Visit(func(f *flag.Flag) {
		for k, v := range flags {
			if flagName(k) == f.Name {
				vars[k] = *v
			}
		}
	})
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: vars}); err != nil {
		return nil, nil, explainEnvError(err, params)
	}
	return &cfg, fs.Args(), nil
}

func flagName(envKey string) string { return strings.ToLower(strings.ReplaceAll(envKey, "_", "-")) }

// explainEnvError rewrites the env library's errors to name the variable.
func explainEnvError(err error, params []env.FieldParams) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) || len(agg.Errors) == 0 {
		return err
	}
	var pe env.ParseError
	if errors.As(agg.Errors[0], &pe) {
		key := pe.Name
		if f, ok := reflect.TypeFor[Config]().FieldByName(pe.Name); ok {
			key = f.Tag.Get("env")
		}
		return fmt.Errorf("%s: %v", key, pe.Err)
	}
	return agg.Errors[0]
}

// Validate checks the variables of the parts the command needs; each
// error names the variable. The consumer's ranges (BATCH_SIZE,
// APPLY_LANES, the heartbeat) are pipeline.Config.Validate's, which
// openDeps calls once the settings are loaded.
func (c *Config) Validate(n needs) error {
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return fmt.Errorf("LOG_FORMAT: %q is not json or console", c.LogFormat)
	}
	if n.has(needDB) {
		if c.DatabaseURL == "" {
			return errors.New("DATABASE_URL: required (a Postgres connection string such as postgres://user:pass@host:5432/prechat)")
		}
		if c.DatabaseMaxConns != 0 && c.DatabaseMaxConns < c.lanes()+2 {
			return fmt.Errorf("DATABASE_MAX_CONNS: %d must be 0 (8 + APPLY_LANES) or at least APPLY_LANES + 2 (%d)", c.DatabaseMaxConns, c.lanes()+2)
		}
		for _, t := range []struct {
			name string
			d    time.Duration
		}{{"DATABASE_STATEMENT_TIMEOUT", c.DatabaseStatementTimeout}, {"DATABASE_LOCK_TIMEOUT", c.DatabaseLockTimeout}, {"DATABASE_IDLE_IN_TRANSACTION_TIMEOUT", c.DatabaseIdleInTransactionTimeout}} {
			if t.d < 0 || t.d > 0 && t.d < time.Second {
				return fmt.Errorf("%s: %s must be 0 (none) or at least 1s", t.name, t.d)
			}
		}
	}
	if n.has(needKafka) {
		if len(c.KafkaBrokers) == 0 {
			return errors.New("KAFKA_BROKERS: required (comma separated host:port)")
		}
		for _, b := range c.KafkaBrokers {
			if _, port, err := net.SplitHostPort(strings.TrimSpace(b)); err != nil || port == "" {
				return fmt.Errorf("KAFKA_BROKERS: %q is not host:port", b)
			}
		}
		switch {
		case c.KafkaTopic == "":
			return errors.New("KAFKA_TOPIC: must not be empty")
		case c.KafkaGroup == "":
			return errors.New("KAFKA_GROUP: must not be empty")
		case c.KafkaStartOffset != "earliest" && c.KafkaStartOffset != "latest":
			return fmt.Errorf("KAFKA_START_OFFSET: %q is not earliest or latest", c.KafkaStartOffset)
		case c.ShutdownGrace <= 0:
			return fmt.Errorf("SHUTDOWN_GRACE: %s must be positive", c.ShutdownGrace)
		}
		if err := c.validateSASL(); err != nil {
			return err
		}
		if err := c.validateIdentity(); err != nil {
			return err
		}
	}
	if n.has(needKafka) {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			return fmt.Errorf("ADMIN_ADDR: %q is not host:port", c.AdminAddr)
		}
		if c.ExpiryInterval <= 0 {
			return fmt.Errorf("EXPIRY_INTERVAL: %s must be positive", c.ExpiryInterval)
		}
		if c.AppliedRetention < time.Minute {
			return fmt.Errorf("APPLIED_RETENTION: %s must be at least 1m", c.AppliedRetention)
		}
	}
	if n.has(needSettings) {
		if c.SettingsFile == "" {
			return errors.New("SETTINGS_FILE: required (the destination settings JSON, see docs/configuration.md)")
		}
		if c.PrechatTTL <= 0 || c.PrechatTTL > mapping.MaxTTL {
			return fmt.Errorf("PRECHAT_TTL: %s must be positive and at most %s (a year)", c.PrechatTTL, mapping.MaxTTL)
		}
	}
	if len(c.Roles) == 0 {
		return errors.New("ROLES: at least one of consumer, api")
	}
	for _, r := range c.Roles {
		if r != "consumer" && r != "api" {
			return fmt.Errorf("ROLES: %q is not a known role (known: consumer, api)", r)
		}
	}
	if c.hasRole("api") {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			return fmt.Errorf("HTTP_ADDR: %q is not host:port", c.HTTPAddr)
		}
		if c.RateLimit < 0 {
			return fmt.Errorf("RATE_LIMIT: %v must not be negative", c.RateLimit)
		}
		if c.MaxWaiters < 1 {
			return fmt.Errorf("MAX_WAITERS: %d must be at least 1", c.MaxWaiters)
		}
		if err := c.validateIngestLimits(); err != nil {
			return err
		}
		if _, err := api.ParseDocumentAccess(c.DocumentAccess); err != nil {
			return fmt.Errorf("DOCUMENT_ACCESS: %w", err)
		}
		if c.MaxWaitersPerClient < 1 {
			return fmt.Errorf("MAX_WAITERS_PER_CLIENT: %d must be at least 1", c.MaxWaitersPerClient)
		}
		if c.DocumentReadTimeout <= 0 {
			return fmt.Errorf("DOCUMENT_READ_TIMEOUT: %s must be positive", c.DocumentReadTimeout)
		}
		for _, k := range c.WriteKeys {
			if strings.TrimSpace(k) == "" {
				return errors.New("WRITE_KEYS: holds an empty key")
			}
		}
		if err := c.validateServerKeys(); err != nil {
			return err
		}
		for _, o := range c.AllowedOrigins {
			if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
				return fmt.Errorf("ALLOWED_ORIGINS: %q is not an origin such as https://www.example.com", o)
			}
		}
	}
	return nil
}

// lanes is APPLY_LANES, its 0 being the pipeline's default.
func (c *Config) lanes() int {
	if c.ApplyLanes == 0 {
		return pipeline.DefaultLanes
	}
	return c.ApplyLanes
}

func (c *Config) hasRole(r string) bool { return slices.Contains(c.Roles, r) }

// minIngestBytes is the largest ingest body (a batch): MAX_INGEST_BYTES
// must hold at least one.
const minIngestBytes = 500 << 10

// validateIngestLimits checks the api role's per-client and per-process
// limits.
func (c *Config) validateIngestLimits() error {
	if _, err := api.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	switch {
	case c.RateLimitClients < 1000:
		return fmt.Errorf("RATE_LIMIT_CLIENTS: %d must be at least 1000", c.RateLimitClients)
	case c.IngestRateLimit < 0:
		return fmt.Errorf("INGEST_RATE_LIMIT: %v must not be negative", c.IngestRateLimit)
	case c.MaxIngestRequests < 1:
		return fmt.Errorf("MAX_INGEST_REQUESTS: %d must be at least 1", c.MaxIngestRequests)
	case c.MaxIngestRequestsPerClient < 1 || c.MaxIngestRequestsPerClient > c.MaxIngestRequests:
		return fmt.Errorf("MAX_INGEST_REQUESTS_PER_CLIENT: %d is not between 1 and MAX_INGEST_REQUESTS (%d)", c.MaxIngestRequestsPerClient, c.MaxIngestRequests)
	case c.MaxIngestBytes < minIngestBytes:
		return fmt.Errorf("MAX_INGEST_BYTES: %d must be at least %d, the largest batch body", c.MaxIngestBytes, minIngestBytes)
	}
	return nil
}

func (c *Config) validateSASL() error {
	switch c.KafkaSASLMechanism {
	case "":
		return nil
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.KafkaSASLUsername == "" {
			return errors.New("KAFKA_SASL_USERNAME: required when KAFKA_SASL_MECHANISM is set")
		}
		return nil
	}
	return fmt.Errorf("KAFKA_SASL_MECHANISM: %q is not plain, scram-sha-256 or scram-sha-512", c.KafkaSASLMechanism)
}

// fields lists the configuration as variable=value pairs, secrets masked,
// for the start-up log line.
func (c *Config) fields() map[string]string {
	v := reflect.ValueOf(c).Elem()
	out := map[string]string{}
	for i := range v.NumField() {
		key := v.Type().Field(i).Tag.Get("env")
		if key == "" {
			continue
		}
		val := fmt.Sprint(v.Field(i).Interface())
		if slices.Contains(secretVars, key) && val != "" && val != "[]" {
			val = "********"
		}
		out[key] = val
	}
	return out
}
