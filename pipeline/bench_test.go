package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// BenchmarkPipeline measures the whole pipeline (Kafka → decode → one
// Postgres transaction per batch with documents and offsets) against two
// baselines measured in the same run on the same events:
//
//   - drain: a raw kafka-go drain of the same topic (kafka.Client.Fetch, as
//     the pipeline's fetchers read), no work;
//   - copyfrom: a raw pgx CopyFrom of one row per event into a bare table.
//
// It reports events/s for each and the pipeline's ratio to both, plus the
// peak Go heap. Run it with:
//
//	go test ./pipeline -run '^$' -bench Pipeline -benchtime 1x
//
// PRECHAT_BENCH_EVENTS sets the events per workload (default 200000: enough
// for the steady state to dominate the group join and the first batch's
// fill), PRECHAT_BENCH_BATCH, PRECHAT_BENCH_LANES and
// PRECHAT_BENCH_COALESCE_MS the pipeline's BatchSize, Lanes and
// RefreshCoalesce in milliseconds (default: the pipeline's defaults), and
// PRECHAT_BENCH_DEBUG=1 prints each batch and the consumer's warnings.
func BenchmarkPipeline(b *testing.B) {
	n := benchEnv("PRECHAT_BENCH_EVENTS", 200000)
	workloads := []struct {
		name                    string
		visitors, users, groups int
	}{
		{"many-events-per-visitor", 500, 200, 20},
		{"every-event-a-new-visitor", 0, 0, 0},
	}
	// Legacy Chat alone (Segment's destination), and all three products,
	// whose documents also carry the Embedded Chat and Messaging renderings.
	legacy := *mappingtest.Settings()
	legacy.Products = []mapping.Product{mapping.ProductLiveAgent}
	products := []struct {
		name     string
		settings *mapping.Settings
	}{
		{"legacy-chat", &legacy},
		{"three-products", mappingtest.Settings()},
	}
	for _, p := range products {
		for _, w := range workloads {
			b.Run(p.name+"/"+w.name, func(b *testing.B) {
				for range b.N {
					benchWorkload(b, p.settings, n, w.visitors, w.users, w.groups)
				}
			})
		}
	}
}

const benchPartitions = 4

// benchEnv is the positive integer in the environment variable name, else def.
func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchWorkload(b *testing.B, settings *mapping.Settings, n, visitors, users, groups int) {
	b.StopTimer()
	gen := mappingtest.NewGenerator(uint64(n), visitors, users, groups)
	runBench(b, settings, gen.Events(n), benchOptions{consumers: 1})
}

// benchOptions vary runBench.
type benchOptions struct {
	// sameRows also measures the same-rows baseline (copySameRows).
	sameRows bool
	// consumers is the number of consumers in the group, each with a
	// store (a pool of connections) of its own, as processes would have.
	consumers int
}

// benchRun is what runBench measured.
type benchRun struct {
	events    int
	took      time.Duration
	documents float64
	dbURL     string
}

// runBench produces raws, measures the drain and CopyFrom baselines, then
// runs the pipeline over them until every event is applied and the refresh
// queue is empty (every document shows them), and reports the rates, their
// ratios and the peak live heap; see benchOptions.
func runBench(b *testing.B, settings *mapping.Settings, raws [][]byte, opt benchOptions) {
	b.StopTimer()
	n := len(raws)
	topic := pipelinetest.Name(b, "topic")
	brokers := pipelinetest.NewCluster(b, benchPartitions, topic)
	for i := 0; i < len(raws); i += 10000 {
		pipelinetest.Produce(b, brokers, topic, raws[i:min(i+10000, len(raws))]...)
	}
	store, dbURL := persistencetest.NewStore(b, nil)

	drain := rate(n, func() { drainTopic(b, brokers, topic, n) })
	copyRate := copyRows(b, dbURL, raws)

	// The pipeline's working memory is the heap above what the process holds
	// before it starts (mostly the in-process broker's copy of the log).
	raws = nil
	runtime.GC()
	base := liveHeap()
	var peak atomic.Uint64
	stopSampling := sampleHeap(&peak)
	group := pipelinetest.Name(b, "group")
	var consumed atomic.Int64
	shares := make([]atomic.Int64, opt.consumers)
	done := make(chan struct{})
	regs := make([]*prometheus.Registry, opt.consumers)
	consumers := make([]*pipeline.Consumer, opt.consumers)
	stores := []*persistence.Store{store}
	for i := range consumers {
		st := store
		if i > 0 {
			var err error
			if st, err = persistence.Open(context.Background(), dbURL, nil); err != nil {
				b.Fatal(err)
			}
			stores = append(stores, st)
		}
		regs[i] = prometheus.NewRegistry()
		c, err := pipeline.New(pipeline.Config{
			Brokers:           brokers,
			Topic:             topic,
			GroupID:           group,
			Materializer:      &mapping.Materializer{Settings: settings, TTL: 30 * time.Minute},
			Policy:            mappingtest.Policy(),
			HeartbeatInterval: 200 * time.Millisecond,
			BatchSize:         benchEnv("PRECHAT_BENCH_BATCH", 0),
			Lanes:             benchEnv("PRECHAT_BENCH_LANES", 0),
			RefreshCoalesce:   time.Duration(benchEnv("PRECHAT_BENCH_COALESCE_MS", 0)) * time.Millisecond,
			Logger:            benchLogger(),
			Registerer:        regs[i],
			OnBatch: func(info pipeline.BatchInfo) {
				if os.Getenv("PRECHAT_BENCH_DEBUG") != "" {
					fmt.Fprintf(os.Stderr, "%s: consumer %d batch %d msgs %d queued took %s\n", time.Now().Format("15:04:05.000"), i, info.Messages, info.Result.Queued, info.Took)
				}
				shares[i].Add(int64(info.Messages))
				if consumed.Add(int64(info.Messages)) == int64(n) {
					close(done)
				}
			},
		}, st)
		if err != nil {
			b.Fatal(err)
		}
		consumers[i] = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.StartTimer()
	start := time.Now()
	for _, c := range consumers {
		wg.Go(func() { _ = c.Run(ctx) })
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("pipeline consumed %d of %d events in 10 minutes", consumed.Load(), n)
	}
	applied := time.Since(start)
	waitRefreshed(b, dbURL)
	took := time.Since(start)
	b.Logf("every event applied after %.2fs, every document caught up %.2fs later", applied.Seconds(), (took - applied).Seconds())
	b.StopTimer()
	cancel()
	wg.Wait()
	stopSampling()
	// Their connections' table statistics are flushed as they end (for
	// copySameRows).
	for _, st := range stores {
		st.Close()
	}

	var docs float64
	for i, reg := range regs {
		docs += gathered(b, reg, "prechat_documents_written_total")
		if opt.consumers > 1 {
			b.ReportMetric(float64(shares[i].Load())/float64(n), fmt.Sprintf("share-consumer-%d", i))
		}
	}
	pipe := float64(n) / took.Seconds()

	b.ReportMetric(pipe, "events/s")
	b.ReportMetric(docs/took.Seconds(), "documents/s")
	b.ReportMetric(drain, "drain-events/s")
	b.ReportMetric(copyRate, "copyfrom-rows/s")
	b.ReportMetric(pipe/drain, "x-drain")
	b.ReportMetric(pipe/copyRate, "x-copyfrom")
	work := float64(peak.Load()-min(base, peak.Load())) / (1 << 20)
	b.ReportMetric(work, "pipeline-heap-MiB")
	b.Logf("%d events: pipeline %.0f ev/s, %.0f documents/s; kafka-go drain %.0f ev/s (pipeline %.2fx); pgx CopyFrom %.0f rows/s (pipeline %.2fx); pipeline heap %.1f MiB above the %.1f MiB held before it started",
		n, pipe, docs/took.Seconds(), drain, pipe/drain, copyRate, pipe/copyRate, work, float64(base)/(1<<20))
	if opt.sameRows {
		rows, copyTook := copySameRows(b, dbURL)
		b.ReportMetric(float64(rows)/float64(n), "rows/event")
		b.ReportMetric(copyTook.Seconds()/took.Seconds(), "x-copy-same-rows")
		b.Logf("the pipeline wrote %d rows (%.2f per event); COPYing as many into tables with the same indexes took %s: pipeline %.2fx of that baseline",
			rows, float64(rows)/float64(n), copyTook.Round(time.Millisecond), copyTook.Seconds()/took.Seconds())
	}
}

// waitRefreshed waits until the refresh queue is empty: every document
// shows every committed batch.
func waitRefreshed(b *testing.B, dbURL string) {
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	for {
		var backlog int64
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM document_refreshes WHERE queued_at <= now()`).Scan(&backlog); err != nil {
			b.Fatal(err)
		}
		if backlog == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gathered is the value of a counter in reg.
func gathered(b *testing.B, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	b.Fatalf("no metric %s", name)
	return 0
}

func rate(n int, fn func()) float64 {
	start := time.Now()
	fn()
	return float64(n) / time.Since(start).Seconds()
}

// drainTopic reads every message of the topic as the pipeline's fetchers
// do (kafka-go's kafka.Client.Fetch, one request per partition at a time,
// keys and values copied out), doing nothing with them.
func drainTopic(b testing.TB, brokers []string, topic string, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
	var total atomic.Int64
	var wg sync.WaitGroup
	for p := range benchPartitions {
		wg.Go(func() {
			off, end := int64(0), int64(-1) // end: the high watermark, once known
			for off != end && ctx.Err() == nil {
				res, err := cl.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: off, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 500 * time.Millisecond})
				if err == nil {
					err = res.Error
				}
				if err != nil {
					b.Errorf("fetch partition %d at %d: %v", p, off, err)
					return
				}
				end = res.HighWatermark
				for {
					r, err := res.Records.ReadRecord()
					if err != nil {
						break
					}
					if _, err := kafka.ReadAll(r.Key); err != nil {
						b.Error(err)
					}
					if _, err := kafka.ReadAll(r.Value); err != nil {
						b.Error(err)
					}
					off = r.Offset + 1
					total.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if total.Load() < int64(n) {
		b.Fatalf("drained %d of %d messages", total.Load(), n)
	}
}

// copyRows copies one row per event (ids, time, raw JSON) into a bare table
// with pgx CopyFrom, in chunks of 1000, and returns the rows/s of the copy
// alone (preparing the rows is not timed).
func copyRows(b *testing.B, dbURL string, raws [][]byte) float64 {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE bench_copy (message_id text, anonymous_id text, event_time timestamptz, event jsonb)`); err != nil {
		b.Fatal(err)
	}
	rows := make([][]any, len(raws))
	for i, r := range raws {
		e, err := mapping.Decode(r, "")
		if err != nil {
			b.Fatal(err)
		}
		rows[i] = []any{e.MessageID, e.AnonymousID, e.Timestamp, string(r)}
	}
	const chunk = 1000
	return rate(len(rows), func() {
		for i := 0; i < len(rows); i += chunk {
			if _, err := conn.CopyFrom(ctx, pgx.Identifier{"bench_copy"}, []string{"message_id", "anonymous_id", "event_time", "event"},
				pgx.CopyFromRows(rows[i:min(i+chunk, len(rows))])); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// liveHeap is the heap the last garbage collection found live (garbage
// not yet collected is not counted: it depends on GOGC, not on the pipeline).
func liveHeap() uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// sampleHeap records the peak live heap until the returned func is called.
func sampleHeap(peak *atomic.Uint64) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if live := liveHeap(); live > peak.Load() {
				peak.Store(live)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(stop); wg.Wait() }
}

// benchLogger logs warnings to stderr when PRECHAT_BENCH_DEBUG is set.
func benchLogger() *zap.Logger {
	if os.Getenv("PRECHAT_BENCH_DEBUG") == "" {
		return nil
	}
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	return zap.Must(cfg.Build())
}
