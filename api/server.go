package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/prechat/prechat/mapping"
)

// Documents is the document storage the API reads; *persistence.Store
// satisfies it.
type Documents interface {
	// DocumentRead returns the unexpired document of a visitor as JSON, with
	// the lowercase hex SHA-256 of its conversation secret ("" when the
	// conversation start carried none) and the W3C traceparent of the
	// refresh that wrote it ("" when untraced), or an error wrapping
	// mapping.ErrNotFound.
	DocumentRead(ctx context.Context, anonymousID string) (doc []byte, tokenHash, traceparent string, err error)
	// Reflects reports whether the visitor's stored document reflects
	// every one of messageIDs (applied, and the document rebuilt since).
	Reflects(ctx context.Context, anonymousID string, messageIDs []string) (bool, error)
}

// Notifier wakes long-polls when a batch concerning a visitor commits;
// *persistence.Hub satisfies it.
type Notifier interface {
	// Subscribe returns a channel that receives when the visitor's state may
	// have changed, and a function that ends the subscription.
	Subscribe(anonymousID string) (<-chan struct{}, func())
	// Watch calls fn with the visitors whose state may have changed (nil:
	// any), before their subscribers are woken.
	Watch(fn func(ids []string))
}

// Producer writes events to the topic and returns once Kafka acknowledged
// all of them, or an error; *pipeline.Writer satisfies it.
type Producer interface {
	Produce(ctx context.Context, records []mapping.Record) error
}

// Config configures the Server. Zero fields take the documented defaults.
type Config struct {
	// AllowedOrigins are the origins CORS allows ("*" for any). Default: none.
	AllowedOrigins []string
	// WriteKeys are the Segment write keys ingest accepts. Empty, with no
	// ServerWriteKeys either, disables ingest (its paths answer 404).
	WriteKeys []string
	// ServerWriteKeys are write keys for the site's servers only: the
	// ingest vouches for the userId of the events sent with one, by adding
	// context.prechat.userHash signed with IdentitySecret (see docs/trust-model.md
	// "Trust model"). Never put one in a page.
	ServerWriteKeys []string
	// IdentitySecret signs the userHash of ServerWriteKeys' events.
	// Required with ServerWriteKeys.
	IdentitySecret []byte
	// DeploymentScriptURL is the deployment.js the snippet loads. Required
	// to serve the snippet.
	DeploymentScriptURL string

	// MaxWait bounds wait=. Default: 30s.
	MaxWait time.Duration
	// DefaultAfterWait is the wait used when after= comes without wait=.
	// Default: 10s.
	DefaultAfterWait time.Duration
	// RecheckInterval is how often a long-poll re-checks even without a
	// notification, a safety net for notifications lost in a reconnect
	// window. Default: 2s.
	RecheckInterval time.Duration
	// CacheSize bounds the documents kept in memory, and separately the
	// visitors known to have none; an entry is dropped as soon as a
	// notification names its visitor. Negative disables the cache.
	// Default: 10000.
	CacheSize int
	// MaxWaiters bounds concurrent long-polls; beyond it requests get 503.
	// Default: 10000.
	MaxWaiters int
	// MaxWaitersPerClient bounds one client's concurrent long-polls; beyond
	// it requests get 429. Default: 20.
	MaxWaitersPerClient int
	// DocumentAccess says who may read a document (AccessToken,
	// AccessAnonymousID). Default: AccessToken.
	DocumentAccess DocumentAccess
	// ReadTimeout bounds the storage reads of one document check, the wait
	// for a pooled connection included; beyond it the request gets 503.
	// Default: 2s.
	ReadTimeout time.Duration
	// RateLimit is the document requests a second allowed per client, with
	// bursts of RateBurst. Default: 5 and 20; negative disables.
	RateLimit float64
	RateBurst int
	// IngestRateLimit is the ingest requests a second allowed per client,
	// with bursts of IngestRateBurst. Default: 50 and 200; negative
	// disables.
	IngestRateLimit float64
	IngestRateBurst int
	// MaxClients bounds the clients each rate limiter tracks; beyond it the
	// least recently seen is forgotten. Default: 100000 (about 20 MB).
	MaxClients int
	// ClientIPHeader names a header to which trusted proxies append the
	// address they received the request from (e.g. X-Forwarded-For); the
	// client is the hop TrustedProxies selects. Default: none, the
	// connection's address.
	ClientIPHeader string
	// TrustedProxies selects the client's hop of ClientIPHeader. Default:
	// one proxy, the rightmost hop.
	TrustedProxies TrustedProxies

	// MaxEventBytes bounds one ingested event. Default: 32 KiB.
	MaxEventBytes int
	// MaxBatchBytes bounds one ingest request body. Default: 500 KiB.
	MaxBatchBytes int
	// MaxBatchEvents bounds the events of one batch; a batch is counted
	// while it is decoded. Default: 2500.
	MaxBatchEvents int
	// MaxIngestRequests bounds concurrent ingest requests; beyond it they
	// get 503 with Retry-After. Default: 128.
	MaxIngestRequests int
	// MaxIngestRequestsPerClient bounds one client's concurrent ingest
	// requests, so that one sender of slow bodies cannot hold the
	// process's; beyond it they get 429 with Retry-After. Default: 8.
	MaxIngestRequestsPerClient int
	// MaxIngestBytes bounds the body bytes ingest requests hold at once (a
	// request reserves its Content-Length, or its size limit when the
	// length is unknown or the body is gzipped); beyond it they get 503
	// with Retry-After. At least MaxBatchBytes. Default: 32 MiB.
	MaxIngestBytes int64
	// IngestReadTimeout bounds the time to receive an ingest request's
	// body, so slow senders cannot hold ingest slots. Default: 10s.
	IngestReadTimeout time.Duration

	// Registerer receives the API's Prometheus metrics. Default: none (kept
	// private).
	Registerer prometheus.Registerer
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives the API's logs. Default: zap.NewNop().
	Logger *zap.Logger
	// TracerProvider, if set, traces every request (docs/tracing.md): a
	// server span continuing the caller's W3C traceparent, whose context the
	// ingest writes into the records' headers, and a document fetch links to
	// the refresh that wrote the document. Default: none (no spans).
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.MaxWait, 30*time.Second)
	def(&c.DefaultAfterWait, 10*time.Second)
	def(&c.RecheckInterval, 2*time.Second)
	def(&c.ReadTimeout, 2*time.Second)
	if c.MaxWaiters <= 0 {
		c.MaxWaiters = 10000
	}
	if c.MaxWaitersPerClient <= 0 {
		c.MaxWaitersPerClient = 20
	}
	if c.DocumentAccess == "" {
		c.DocumentAccess = AccessToken
	}
	if c.CacheSize == 0 {
		c.CacheSize = 10000
	}
	if c.RateLimit == 0 {
		c.RateLimit = 5
	}
	if c.RateBurst <= 0 {
		c.RateBurst = 20
	}
	if c.IngestRateLimit == 0 {
		c.IngestRateLimit = 50
	}
	if c.IngestRateBurst <= 0 {
		c.IngestRateBurst = 200
	}
	if c.MaxClients <= 0 {
		c.MaxClients = 100000
	}
	if c.TrustedProxies.Count <= 0 {
		c.TrustedProxies.Count = 1
	}
	if c.MaxIngestRequests <= 0 {
		c.MaxIngestRequests = 128
	}
	if c.MaxIngestRequestsPerClient <= 0 {
		c.MaxIngestRequestsPerClient = 8
	}
	def(&c.IngestReadTimeout, 10*time.Second)
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = 32 << 10
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 500 << 10
	}
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = 2500
	}
	if c.MaxIngestBytes <= 0 {
		c.MaxIngestBytes = 32 << 20
	}
	c.MaxIngestBytes = max(c.MaxIngestBytes, int64(c.MaxBatchBytes), int64(c.MaxEventBytes))
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Server is the public HTTP handler.
type Server struct {
	cfg      Config
	docs     Documents
	notifier Notifier
	producer Producer
	log      *zap.Logger
	limiter  *rateLimiter
	cache    *docCache
	metrics  *metrics
	waiters  semaphore
	ingests  ingestLimits
	// clientWaiters bounds each client's long-polls.
	clientWaiters *clientSlots
	snippet       []byte
	draining      chan struct{}
	handler       http.Handler
}

// ingest reports whether any write key enables the ingest.
func (c *Config) ingest() bool { return len(c.WriteKeys)+len(c.ServerWriteKeys) > 0 }

// New returns the public handler. producer may be nil when WriteKeys is
// empty.
func New(cfg Config, docs Documents, notifier Notifier, producer Producer) (*Server, error) {
	cfg = cfg.withDefaults()
	switch {
	case docs == nil || notifier == nil:
		return nil, errors.New("api: documents and notifier are required")
	case cfg.ingest() && producer == nil:
		return nil, errors.New("api: a producer is required when write keys are set")
	case len(cfg.ServerWriteKeys) > 0 && len(cfg.IdentitySecret) == 0:
		return nil, errors.New("api: ServerWriteKeys need an IdentitySecret")
	case cfg.DeploymentScriptURL == "":
		return nil, errors.New("api: DeploymentScriptURL is required")
	}
	if _, err := ParseDocumentAccess(string(cfg.DocumentAccess)); err != nil {
		return nil, fmt.Errorf("api: DocumentAccess: %w", err)
	}
	s := &Server{
		cfg: cfg, docs: docs, notifier: notifier, producer: producer,
		log:           cfg.Logger,
		limiter:       newRateLimiter(cfg.RateLimit, cfg.RateBurst, cfg.MaxClients, cfg.Now),
		waiters:       make(semaphore, cfg.MaxWaiters),
		clientWaiters: newClientSlots(cfg.MaxWaitersPerClient),
		ingests: ingestLimits{
			perClient: newRateLimiter(cfg.IngestRateLimit, cfg.IngestRateBurst, cfg.MaxClients, cfg.Now),
			requests:  make(semaphore, cfg.MaxIngestRequests),
			clients:   newClientSlots(cfg.MaxIngestRequestsPerClient),
			bytes:     &byteBudget{max: cfg.MaxIngestBytes},
		},
		cache:    newDocCache(cfg.CacheSize),
		draining: make(chan struct{}),
	}
	s.metrics = newMetrics(cfg.Registerer, func() float64 { return float64(len(s.waiters)) })
	notifier.Watch(s.cache.invalidate)
	snippet, err := renderSnippet(cfg.DeploymentScriptURL)
	if err != nil {
		return nil, err
	}
	s.snippet = snippet
	mux := http.NewServeMux()
	route := func(method, path string, h http.HandlerFunc) {
		name := strings.TrimPrefix(path, "/v1/")
		if strings.HasPrefix(name, "prechat/") {
			name = "prechat/{anonymousId}"
		}
		observed := s.metrics.observe(name, h)
		mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
			scrubSpan(r, path)
			observed(w, r)
		})
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+method, 0)
		})
	}
	route("GET", "/v1/prechat/{anonymousId}", s.getDocument)
	route("GET", "/v1/prechat.js", s.getSnippet)
	if cfg.ingest() {
		for _, path := range ingestPaths {
			route("POST", "/v1/"+path.name, s.ingest(path.typ))
		}
		// analytics-next posts its own client metrics to {apiHost}/m; accept
		// and discard them rather than answering 404 every 30 seconds.
		route("POST", "/v1/m", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
			w.WriteHeader(http.StatusOK)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint", 0)
	})
	s.handler = traced(&cfg, SecureHeaders(s.cors(mux)))
	return s, nil
}

// SecureHeaders sets the headers every response of the service carries,
// public and admin port: X-Content-Type-Options: nosniff, so that no
// answer (an error's JSON, a document) is ever sniffed into a script or a
// page.
func SecureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Drain makes every current and future long-poll answer 503 with
// Retry-After at once, so clients retry against another instance during a
// shutdown.
func (s *Server) Drain() {
	select {
	case <-s.draining:
	default:
		close(s.draining)
	}
}
