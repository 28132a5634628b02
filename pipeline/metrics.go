package pipeline

import (
	"slices"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the consumer's Prometheus metrics.
type metrics struct {
	events    *prometheus.CounterVec
	batchSize prometheus.Histogram
	apply     prometheus.Histogram
	lag       *prometheus.GaugeVec
	lagMu     sync.Mutex
	lagged    map[lagKey]bool // the partitions lag reports
	documents prometheus.Counter
	retries   prometheus.Counter
	skipped   prometheus.Counter
	queued    prometheus.Counter
	refresh   prometheus.Histogram
	// refreshDelay is the age of the oldest queued change.
	refreshDelay prometheus.Gauge
	// unwritable counts documents a refresh could not write.
	unwritable prometheus.Counter
	proofs     *prometheus.CounterVec
	clamped    prometheus.Counter
	splits     prometheus.Counter
}

type lagKey struct {
	topic     string
	partition int
}

// newMetrics registers the consumer's metrics with reg; a nil reg keeps them
// private (tests, several consumers in one process).
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prechat_events_total",
			Help: "Kafka messages consumed, by event type and outcome (applied, ignored, suppressed, dead_letter).",
		}, []string{"type", "outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prechat_batch_messages",
			Help:    "Messages per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prechat_batch_apply_seconds",
			Help:    "Time to commit a batch to Postgres (one transaction), retries included.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prechat_consumer_lag",
			Help: "Messages behind the partition's high watermark after the last committed batch.",
		}, []string{"topic", "partition"}),
		documents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prechat_documents_written_total",
			Help: "Pre-chat documents written (created or changed).",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prechat_retries_total",
			Help: "Failed attempts to reach Postgres or Kafka that were retried.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prechat_retention_skipped_messages_total",
			Help: "Messages that Kafka's retention deleted before they were consumed (never applied); anything above zero means the consumers fell further behind than the topic's retention.",
		}),
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prechat_documents_queued_total",
			Help: "Changes (visitors, users, groups, rechecks) batches offered the refresh queue; those that can have a document wait there, one entry per visitor, user or group, until a refresh works it off.",
		}),
		refresh: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prechat_refresh_duration_seconds",
			Help:    "Duration of a refresh transaction: claiming queued changes, rebuilding and writing their documents, committing.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		refreshDelay: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prechat_refresh_delay_seconds",
			Help: "How long the oldest change in the refresh queue (document_refreshes) has waited, as last seen by this consumer: how far documents are behind committed batches. Near zero in steady state.",
		}),
		unwritable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prechat_documents_unwritable_total",
			Help: "Documents a refresh could not encode (a time past the year 9999) or that Postgres refused, left as they were; see the error log.",
		}),
		proofs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prechat_identity_proofs_total",
			Help: "Identity proofs carried by consumed events (context.prechat.userHash or identityToken), by result: valid, invalid, expired, wrong_user, unconfigured. Only valid ones let a user's or group's shared traits reach a visitor.",
		}, []string{"result"}),
		clamped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prechat_event_time_clamped_total",
			Help: "Events whose claimed time lay outside EVENT_TIME_PAST/EVENT_TIME_FUTURE around their Kafka record time, applied at the record time instead.",
		}),
		splits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prechat_batch_splits_total",
			Help: "Batches the store refused (content it cannot hold, not a transient failure) and that were split to find the messages responsible, which became dead letters.",
		}),
	}
	reg.MustRegister(m.events, m.batchSize, m.apply, m.lag, m.documents, m.retries, m.skipped, m.queued, m.refresh, m.refreshDelay, m.unwritable, m.proofs, m.clamped, m.splits)
	return m
}

func (m *metrics) setLag(topic string, partition int, lag int64) {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	if m.lagged == nil {
		m.lagged = map[lagKey]bool{}
	}
	m.lagged[lagKey{topic, partition}] = true
	m.lag.WithLabelValues(topic, strconv.Itoa(partition)).Set(float64(max(lag, 0)))
}

// keepLag deletes the lag of topic's partitions other than keep: a member
// reports lag only for the partitions it consumes, so a revoked partition's
// last value does not stay behind (and fire lag alerts) once another member
// consumes it.
func (m *metrics) keepLag(topic string, keep []int) {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	for k := range m.lagged {
		if k.topic == topic && !slices.Contains(keep, k.partition) {
			m.lag.DeleteLabelValues(k.topic, strconv.Itoa(k.partition))
			delete(m.lagged, k)
		}
	}
}
