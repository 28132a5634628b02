package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// envInt reads a test knob, e.g. PRECHAT_CRASH_KILLS=500 to run longer.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestCrashRecoveryExactlyOnce starts the real processor as a child process
// against an external (kfake) broker and Postgres, streams generated events
// — identifies, groups, conversation starts, duplicates and poison — and
// kills the processor with SIGKILL at random moments, restarting it each
// time; a third of the runs also kill themselves inside the batch's
// transaction, another third between the Postgres commit and the Kafka
// offset commit (PRECHAT_FAILPOINT). The final state must equal
// that of one clean, uninterrupted run over the same log: nothing lost,
// nothing applied twice, no dead letter lost or doubled.
//
// Knobs: PRECHAT_CRASH_KILLS (default 50; 20 under -race),
// PRECHAT_CRASH_EVENTS (default 20000; 8000 under -race), PRECHAT_CRASH_SEED
// (printed, to replay a failure).
func TestCrashRecoveryExactlyOnce(t *testing.T) {
	t.Parallel()
	kills, events := 50, 20000
	if raceDetector {
		// Under -race, after 50 kills of the 20,000-event log the refresh
		// queue the killed runs left did not drain within 6 minutes (seed
		// 662277993); without -race it drains in seconds.
		kills, events = 20, 8000
	}
	kills = envInt("PRECHAT_CRASH_KILLS", kills)
	events = envInt("PRECHAT_CRASH_EVENTS", events)
	seed := uint64(envInt("PRECHAT_CRASH_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("seed %d (rerun with PRECHAT_CRASH_SEED=%d), %d events, %d kills", seed, seed, events, kills)
	r := rand.New(rand.NewPCG(seed, seed))

	topic := pipelinetest.Name(t, "topic")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topic), kfake.GroupMinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()

	// The log: generated events, about 5% sent twice, 1% poison.
	gen := mappingtest.NewGenerator(seed, 3000, 1000, 60)
	var log [][]byte
	for len(log) < events {
		switch n := r.IntN(100); {
		case n < 1:
			log = append(log, gen.Poison())
		case n < 6 && len(log) > 0:
			log = append(log, log[r.IntN(len(log))])
		default:
			log = append(log, gen.Event())
		}
	}
	settings := writeSettings(t, mappingtest.SettingsJSON)
	env := func(dbURL, group string, extra ...string) []string {
		return append([]string{"DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + strings.Join(brokers, ","), "KAFKA_TOPIC=" + topic,
			"KAFKA_GROUP=" + group, "SETTINGS_FILE=" + settings, "ROLES=consumer", "ADMIN_ADDR=127.0.0.1:0",
			"BATCH_SIZE=100", "BATCH_TIMEOUT=5ms", "KAFKA_SESSION_TIMEOUT=1s", "KAFKA_HEARTBEAT_INTERVAL=250ms", "LOG_LEVEL=warn",
			// The generator proves most userIds: verified links, user and
			// shared group traits are part of what must survive the kills.
			"IDENTITY_SECRET=" + mappingtest.IdentitySecret}, extra...)
	}
	consumed := func(store *persistence.Store, group string) int64 {
		offs, err := store.OffsetsGet(context.Background(), group, topic)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, o := range offs {
			n += o
		}
		return n
	}
	// settled: the whole log consumed and every document refreshed.
	settled := func(store *persistence.Store, group string) bool {
		if consumed(store, group) < int64(len(log)) {
			return false
		}
		backlog, err := store.RefreshBacklog(context.Background())
		return err == nil && backlog == 0
	}

	// The log is streamed in chunks, one before each run of the victim, so
	// every run has messages to fetch and batches to commit when it dies.
	victim, victimURL := persistencetest.NewStore(t, nil)
	chunk := (len(log) + kills - 1) / kills
	var mu sync.Mutex
	sent := 0
	produce := func(n int) {
		mu.Lock()
		defer mu.Unlock()
		end := min(sent+n, len(log))
		if sent < end {
			pipelinetest.Produce(t, brokers, topic, log[sent:end]...)
		}
		sent = end
	}

	start := time.Now()
	selfKills, sigkills := 0, 0
	for k := 0; sigkills+selfKills < kills; k++ {
		extra := []string{}
		switch k % 3 {
		case 1:
			extra = append(extra, failpointVar+"=kill-in-transaction:0.25")
		case 2:
			extra = append(extra, failpointVar+"=kill-after-commit:0.25")
		}
		p := startProcessor(t, env(victimURL, "victim", extra...), "serve")
		// Feed this run's share of the log while it runs, so it dies with
		// fetches and batches in flight.
		feeding := make(chan struct{})
		pauses := make([]time.Duration, 8)
		for i := range pauses {
			pauses[i] = time.Duration(20+r.IntN(80)) * time.Millisecond
		}
		go func() {
			defer close(feeding)
			for _, pause := range pauses {
				produce(chunk / 8)
				time.Sleep(pause)
			}
		}()
		select {
		case <-p.exited:
			if p.err == nil || !strings.Contains(p.err.Error(), "killed") {
				t.Fatalf("processor run %d exited by itself (%v), not by the failpoint:\n%s", k, p.err, p.stderr.String())
			}
			selfKills++
		case <-time.After(time.Duration(300+r.IntN(2200)) * time.Millisecond):
			if p.signal(syscall.SIGKILL, 10*time.Second) {
				sigkills++
			}
		}
		<-feeding
	}
	produce(len(log))
	t.Logf("%d SIGKILLs from outside, %d kills inside the transaction or between the Postgres and the Kafka commit, in %v; %d of %d messages consumed so far",
		sigkills, selfKills, time.Since(start).Round(time.Millisecond), consumed(victim, "victim"), len(log))

	// Let a last, uninterrupted victim finish the log, once the killed ones
	// have left the group. kfake, unlike Kafka, never expires a member whose
	// JoinGroup answer could not be delivered (it arms the session timer only
	// after a delivered reply): when the last victim died in a join and the
	// next one joined the same rebalance, the dead member kept half the
	// partitions for good. kfake does drop such a member when the rebalance
	// completes without anyone else, so wait for the group to empty.
	waitGroupEmpty(t, brokers, "victim", time.Minute)
	final := startProcessor(t, env(victimURL, "victim"), "serve")
	// Six minutes: the refreshes the killed runs left (their claims free
	// after the lease) and the rechecks that fall due meanwhile take their
	// turn after the last messages, and -race makes rendering slow.
	waitFor(t, 6*time.Minute, func() bool { return settled(victim, "victim") }, final,
		func() string { return describeGroup(brokers, "victim") + "; " + describeQueue(victim) })
	final.signal(syscall.SIGTERM, 20*time.Second)

	// The reference: one clean run over the same log.
	reference, referenceURL := persistencetest.NewStore(t, nil)
	clean := startProcessor(t, env(referenceURL, "reference"), "serve")
	waitFor(t, 3*time.Minute, func() bool { return settled(reference, "reference") }, clean,
		func() string { return describeGroup(brokers, "reference") })
	clean.signal(syscall.SIGTERM, 20*time.Second)

	got, err := victim.Fingerprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want, err := reference.Fingerprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("state after %d kills differs from a clean run (seed %d):\n got %v\nwant %v", sigkills+selfKills, seed, got, want)
	}
	t.Logf("state after %d kills equals the clean run's: %s", sigkills+selfKills, fmtFingerprint(got))
}

// describeQueue says what waits in a store's refresh queue.
func describeQueue(store *persistence.Store) string {
	backlog, err := store.RefreshBacklog(context.Background())
	delay, derr := store.RefreshDelay(context.Background())
	return fmt.Sprintf("refresh queue: %d due (%v), oldest waited %v (%v)", backlog, err, delay, derr)
}

// waitFor waits until cond holds while p runs. When d passes first it fails
// with what diagnose says and p's log, ending with p's goroutines.
func waitFor(t *testing.T, d time.Duration, cond func() bool, p *child, diagnose func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			state := diagnose()
			// A Go process prints every goroutine's stack when it gets
			// SIGQUIT: where it is stuck ends up in the log below.
			p.signal(syscall.SIGQUIT, 10*time.Second)
			t.Fatalf("not done within %v; %s\nprocessor log, ending with its goroutines:\n%s", d, state, p.stderr.String())
		}
		if !p.running() {
			t.Fatalf("processor exited: %v\n%s", p.err, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fmtFingerprint(fp map[string]string) string {
	var parts []string
	for _, table := range []string{"traits", "identity_links", "group_memberships", "conversations", "prechat_documents", "applied_messages", "dead_letters"} {
		n, _, _ := strings.Cut(fp[table], ":")
		parts = append(parts, fmt.Sprintf("%s %s rows", table, n))
	}
	return strings.Join(parts, ", ")
}

// waitGroupEmpty waits until the broker's consumer group has no member.
func waitGroupEmpty(t *testing.T, brokers []string, group string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if g, err := pipelinetest.DescribeGroup(brokers, group); err == nil && len(g.Members) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s still has members after %v: %s", group, d, describeGroup(brokers, group))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// describeGroup says what the broker knows of a consumer group: its state
// and each member with its client and assigned partitions.
func describeGroup(brokers []string, group string) string {
	g, err := pipelinetest.DescribeGroup(brokers, group)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "group %s: state %s, protocol %s, %d members", g.Group, g.State, g.Protocol, len(g.Members))
	for _, m := range g.Members {
		var a kmsg.ConsumerMemberAssignment
		assigned := "?"
		if a.ReadFrom(m.MemberAssignment) == nil {
			assigned = fmt.Sprint(a.Topics)
		}
		fmt.Fprintf(&b, "\n  member %s client %s host %s assigned %s", m.MemberID, m.ClientID, m.ClientHost, assigned)
	}
	return b.String()
}
