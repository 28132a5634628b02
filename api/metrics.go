package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus metrics.
type metrics struct {
	requests *prometheus.HistogramVec
	ingested *prometheus.CounterVec
	cache    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, waiters func() float64) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prechat_http_request_seconds",
			Help:    "Public HTTP requests by route and status code; for documents this includes long-poll waits.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "code"}),
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prechat_ingest_events_total",
			Help: "Events received by the ingest, by result: produced, or the error code that rejected their request.",
		}, []string{"result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prechat_document_cache_total",
			Help: "Document reads by cache result (hit, miss).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.requests, m.ingested, m.cache, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "prechat_waiters",
		Help: "Document requests currently long-polling.",
	}, waiters))
	return m
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (read
// deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe wraps a route's handler to record its latency and status.
func (m *metrics) observe(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h(rec, r)
		m.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Observe(time.Since(start).Seconds())
	}
}
