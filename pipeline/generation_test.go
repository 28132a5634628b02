package pipeline_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/pipeline"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// member is one consumer of a test's group, with its own metrics and logs.
type member struct {
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
	stop func()
}

// join starts a consumer in tb's group over store, with shutdownGrace
// (0: the default).
func (tb *testBundle) join(t *testing.T, name string, store pipeline.Store, shutdownGrace time.Duration) *member {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	m := &member{reg: prometheus.NewRegistry(), logs: logs}
	c, err := pipeline.New(pipeline.Config{
		Brokers: tb.brokers, Topic: tb.topic, GroupID: tb.group, Materializer: tb.mat,
		BatchSize: 50, BatchTimeout: 20 * time.Millisecond, MaxWait: 100 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second,
		JoinGroupBackoff: 200 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		ShutdownGrace: shutdownGrace, Registerer: m.reg,
		Logger: zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core)).Named(name),
	}, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	m.stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s", name)
		}
	}
	t.Cleanup(m.stop)
	return m
}

// assigned is the member's latest assignment (nil before its first).
func (m *member) assigned() []int {
	entries := m.logs.FilterMessage("partitions assigned").All()
	if len(entries) == 0 {
		return nil
	}
	ps, _ := entries[len(entries)-1].ContextMap()["partitions"].([]any)
	out := []int{}
	for _, p := range ps {
		switch p := p.(type) {
		case int:
			out = append(out, p)
		case int64:
			out = append(out, int(p))
		}
	}
	slices.Sort(out)
	return out
}

// lagPartitions are the partitions prechat_consumer_lag has a value for.
func lagPartitions(t *testing.T, reg *prometheus.Registry) []int {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := []int{}
	for _, f := range families {
		if f.GetName() != "prechat_consumer_lag" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" {
					p, _ := strconv.Atoi(l.GetValue())
					out = append(out, p)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func eventuallyTrue(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLagOfRevokedPartitionsIsDeleted: a member reports lag only for the
// partitions it holds: after a rebalance moved some to another member,
// their last values are gone from its metrics, and a member that left
// reports none.
func TestLagOfRevokedPartitionsIsDeleted(t *testing.T) {
	tb := setup(t, 4)
	raws := tb.generator(12).Events(800)
	a := tb.join(t, "a", tb.store, 0)
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws[:400]...)
	tb.waitConsumed(t, 400)
	if got := lagPartitions(t, a.reg); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("lag reported for partitions %v, want all four", got)
	}

	b := tb.join(t, "b", tb.store, 0)
	eventuallyTrue(t, 30*time.Second, "the partitions are shared", func() bool {
		return len(a.assigned()) == 2 && len(b.assigned()) == 2
	})
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws[400:]...)
	tb.waitConsumed(t, 800)
	if got, want := lagPartitions(t, a.reg), a.assigned(); len(got) > len(want) || !isSubset(got, want) {
		t.Fatalf("a holds partitions %v and reports lag for %v", want, got)
	}

	a.stop()
	if got := lagPartitions(t, a.reg); len(got) != 0 {
		t.Fatalf("a left the group and still reports lag for %v", got)
	}
}

func isSubset(sub, set []int) bool {
	for _, v := range sub {
		if !slices.Contains(set, v) {
			return false
		}
	}
	return true
}

// TestApplyIsCancelledWhenTheGenerationEnds: a batch stuck in Postgres (here
// behind a lock that nothing times out) does not keep its member in an
// ended generation: the attempt is cancelled ShutdownGrace after the
// rebalance, the batch abandoned for the next owner, and the member
// rejoins at once instead of being expelled from the group.
func TestApplyIsCancelledWhenTheGenerationEnds(t *testing.T) {
	tb := setup(t, 2)
	ctx := context.Background()
	patient, err := persistence.Open(ctx, tb.dbURL, &persistence.Config{StatementTimeout: -1, LockTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer patient.Close()
	holder, err := pgx.Connect(ctx, tb.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	// Every batch queues refreshes; SHARE mode keeps its INSERT waiting.
	held, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Exec(ctx, `LOCK TABLE document_refreshes IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}

	a := tb.join(t, "a", recordingStore{patient, tb}, 300*time.Millisecond)
	eventuallyTrue(t, 30*time.Second, "a is assigned", func() bool { return len(a.assigned()) == 2 })
	pipelinetest.Produce(t, tb.brokers, tb.topic, tb.generator(13).Events(20)...)
	// a's batch now waits for the lock.
	eventuallyTrue(t, 10*time.Second, "a's batch waits for the lock on the refresh queue", func() bool {
		var n int
		err := held.QueryRow(ctx, `SELECT count(*) FROM pg_locks l
			WHERE l.locktype = 'relation' AND l.relation = 'document_refreshes'::regclass AND l.mode = 'RowExclusiveLock' AND NOT l.granted`).Scan(&n)
		return err == nil && n > 0
	})

	tb.join(t, "b", recordingStore{patient, tb}, 300*time.Millisecond)
	start := time.Now()
	eventuallyTrue(t, 20*time.Second, "a leaves its first generation", func() bool {
		return a.logs.FilterMessage("generation ended").Len() > 0
	})
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("a left its generation %v after b joined, want about ShutdownGrace (300ms) after the rebalance", took)
	}
	if a.logs.FilterMessage("batch abandoned; its messages will be consumed again").Len() == 0 {
		t.Fatal("a's stuck batch was not abandoned")
	}
	// Released, the batch is applied by whoever holds its partitions now.
	if err := held.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	tb.waitConsumed(t, 20)
}
