package api_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prechat/prechat/api"
)

// legit is the legitimate visitors' traffic of BenchmarkHostileClients:
// every request from an address of its own, as visitors are many and each
// sends few requests.
type legit struct {
	s       *stack
	client  *http.Client
	next    atomic.Int64 // the next visitor address
	visitor int          // how many visitors have a document
}

func (l *legit) addr() string {
	n := l.next.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
}

// fetch is a visitor's first fetch of its document: after= its
// conversation start, so it reads Postgres, as a fetch after a chat starts
// does.
func (l *legit) fetch(w int) error {
	v := fmt.Sprintf("legit-%d", w%l.visitor)
	req, _ := http.NewRequest("GET", l.s.url+"/v1/prechat/"+v+"?wait=10&after="+v+"-c", nil)
	req.Header.Set("X-Forwarded-For", l.addr())
	req.Header.Set(api.TokenHeader, secretOf(v))
	return l.do(req)
}

// ingest is one analytics.js event.
func (l *legit) ingest(w int) error {
	req, _ := http.NewRequest("POST", l.s.url+"/v1/t", strings.NewReader(fmt.Sprintf(`{"event":"Product Viewed","anonymousId":"legit-ingest-%d","properties":{"sku":"s-1"}}`, w)))
	req.Header.Set("Authorization", basicAuth(testWriteKey))
	req.Header.Set("X-Forwarded-For", l.addr())
	return l.do(req)
}

func (l *legit) do(req *http.Request) error {
	res, err := l.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d", req.Method, req.URL.Path, res.StatusCode)
	}
	return nil
}

// measure runs 8 fetching and 4 ingesting visitors side by side for d,
// each sending a request every 20 ms (400 fetches and 200 events a
// second), and returns the p50 and p99 of their latencies and how many
// failed.
func (l *legit) measure(d time.Duration) (fetch, ingest [2]time.Duration, failed int64) {
	var failures atomic.Int64
	var mu sync.Mutex
	var fetches, ingests []time.Duration
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	run := func(workers int, fn func(int) error, into *[]time.Duration) {
		for w := range workers {
			wg.Go(func() {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for time.Now().Before(deadline) {
					t0 := time.Now()
					if err := fn(w); err != nil {
						failures.Add(1)
					}
					took := time.Since(t0)
					mu.Lock()
					*into = append(*into, took)
					mu.Unlock()
					<-tick.C
				}
			})
		}
	}
	run(8, l.fetch, &fetches)
	run(4, l.ingest, &ingests)
	wg.Wait()
	return [2]time.Duration{percentile(fetches, 50), percentile(fetches, 99)},
		[2]time.Duration{percentile(ingests, 50), percentile(ingests, 99)}, failures.Load()
}

// hostile is the attack of BenchmarkHostileClients; each client writes a
// new address at the left of X-Forwarded-For on every request.
type hostile struct {
	s      *stack
	host   string
	ctx    context.Context
	wg     sync.WaitGroup
	counts sync.Map // status → *atomic.Int64
}

func (h *hostile) count(status string) {
	v, _ := h.counts.LoadOrStore(status, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func (h *hostile) get(status string) int64 {
	if v, ok := h.counts.Load(status); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// forwarded is X-Forwarded-For as the proxy passes it on: the client's own
// spoofed entry, then the address the proxy saw.
func forwarded(i int, real string) string {
	return fmt.Sprintf("203.0.113.%d, %s", i%250, real)
}

// send runs requests from n clients, each at most every pace, until the
// attack ends; mk builds client c's i-th request.
func (h *hostile) send(n int, pace time.Duration, client *http.Client, mk func(c, i int) *http.Request) {
	for c := range n {
		h.wg.Go(func() {
			for i := 0; h.ctx.Err() == nil; i++ {
				started := time.Now()
				res, err := client.Do(mk(c, i).WithContext(h.ctx))
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					h.count(fmt.Sprint(res.StatusCode))
				} else if h.ctx.Err() == nil {
					h.count("error")
					if h.get("error") < 5 {
						fmt.Println("hostile error:", err)
					}
				}
				select {
				case <-h.ctx.Done():
				case <-time.After(pace - time.Since(started)):
				}
			}
		})
	}
}

// slowBodies opens n connections from addresses (round robin) that send
// an authenticated ingest's headers and then one byte of its 400 KB body
// every 500 ms, reconnecting when the server gives up on them.
func (h *hostile) slowBodies(n, addresses int) {
	for c := range n {
		h.wg.Go(func() {
			for h.ctx.Err() == nil {
				conn, err := net.Dial("tcp", h.host)
				if err != nil {
					return
				}
				fmt.Fprintf(conn, "POST /v1/b HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nX-Forwarded-For: %s\r\nContent-Length: 400000\r\n\r\n{",
					h.host, basicAuth(testWriteKey), forwarded(c, fmt.Sprintf("198.51.100.%d", c%addresses)))
				done := context.AfterFunc(h.ctx, func() { conn.Close() })
				for h.ctx.Err() == nil {
					time.Sleep(500 * time.Millisecond)
					if _, err := conn.Write([]byte(" ")); err != nil {
						break // answered (429, 408) and closed
					}
				}
				done()
				conn.Close()
				h.count("slow-body-connection")
			}
		})
	}
}

// BenchmarkHostileClients measures legitimate visitors' first document
// fetches (after= their conversation start, so Postgres is read) and
// analytics.js events, each from an address of its own, first alone and
// then beside hostile clients, in the same run, on loopback:
//
//	go test ./api -run '^$' -bench HostileClients -benchtime 1x
//
// The hostile clients, all behind one trusted proxy (X-Forwarded-For, the
// proxy's hop last) and each writing a new spoofed address at the left:
// 1,000 long-polls for unknown visitors (wait=30, 2 per address, 500
// addresses, so each address stays within its burst), parked before the
// measurement starts; 10 clients fetching unknown visitors from 5
// addresses, 50 requests a second each (beyond the burst answered 429); 4
// clients posting 600 KB bodies (refused by Content-Length) and 4 posting
// 490 KB batches of 160,000 empty events with a wrong write key in the
// body, 10 a second each, from 8 addresses; and 160 connections from 8
// addresses sending an authenticated 400 KB batch one byte every 500 ms.
// The hostile clients are paced because they share the two cores with the
// server: unpaced, the benchmark would measure the load generator. The live heap (as of the last garbage collection) is sampled every
// 100 ms.
func BenchmarkHostileClients(b *testing.B) {
	s := newStack(b, stackOptions{api: api.Config{ClientIPHeader: "X-Forwarded-For"}})
	const visitors = 50
	for v := range visitors {
		identify, group, start := visitorEvents(fmt.Sprintf("legit-%d", v), time.Now())
		s.produce(identify, group, start)
	}
	last := fmt.Sprintf("legit-%d", visitors-1)
	if r := s.do("GET", "/v1/prechat/"+last+"?wait=20&after="+last+"-c", "", map[string]string{"X-Forwarded-For": "10.255.0.1", api.TokenHeader: secretOf(last)}); r.status != http.StatusOK {
		b.Fatalf("documents: %d %s", r.status, r.body)
	}
	u, _ := url.Parse(s.url)
	l := &legit{s: s, visitor: visitors, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	for range b.N {
		runtime.GC()
		heapBefore := liveHeap()
		basePeak := sampleHeap()
		baseFetch, baseIngest, baseFailed := l.measure(3 * time.Second)
		basePeakHeap := basePeak()

		ctx, stop := context.WithCancel(context.Background())
		h := &hostile{s: s, host: u.Host, ctx: ctx}
		attackPeak := sampleHeap()
		polls := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000}}
		h.send(1000, time.Millisecond, polls, func(c, i int) *http.Request {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/prechat/unknown-%d-%d?wait=30", s.url, c, i), nil)
			req.Header.Set("X-Forwarded-For", forwarded(i, fmt.Sprintf("198.18.%d.%d", c/2/250, c/2%250)))
			return req
		})
		hammer := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		h.send(10, 20*time.Millisecond, hammer, func(c, i int) *http.Request {
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/prechat/unknown-%d-%d", s.url, c, i), nil)
			req.Header.Set("X-Forwarded-For", forwarded(i, fmt.Sprintf("198.19.0.%d", c%5)))
			return req
		})
		big := strings.Repeat("x", 600<<10)
		junk := `{"writeKey":"wrong","batch":[` + strings.TrimSuffix(strings.Repeat(`{},`, 160000), ",") + `]}`
		h.send(8, 100*time.Millisecond, hammer, func(c, i int) *http.Request {
			body := big
			if c%2 == 1 {
				body = junk
			}
			req, _ := http.NewRequest("POST", s.url+"/v1/b", strings.NewReader(body))
			req.Header.Set("X-Forwarded-For", forwarded(i, fmt.Sprintf("198.20.0.%d", c)))
			return req
		})
		h.slowBodies(160, 8)
		// The long-polls park, the slow bodies take their slots.
		for start := time.Now(); s.hub.Waiters() < 950 && time.Since(start) < 10*time.Second; {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
		waiting := s.hub.Waiters()
		fetch, ingest, failed := l.measure(3 * time.Second)
		peak := attackPeak()
		stop()
		h.wg.Wait()
		mib := func(v uint64) float64 { return float64(v) / (1 << 20) }
		grown := mib(peak - min(peak, heapBefore))

		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(fetch[1]), "fetch-p99-ms")
		b.ReportMetric(ms(baseFetch[1]), "base-fetch-p99-ms")
		b.ReportMetric(ms(ingest[1]), "ingest-p99-ms")
		b.ReportMetric(ms(baseIngest[1]), "base-ingest-p99-ms")
		b.ReportMetric(grown, "heap-growth-MiB")
		b.Logf("legitimate first fetches: p50 %v, p99 %v alone; p50 %v, p99 %v under attack", baseFetch[0], baseFetch[1], fetch[0], fetch[1])
		b.Logf("legitimate ingests: p50 %v, p99 %v alone; p50 %v, p99 %v under attack", baseIngest[0], baseIngest[1], ingest[0], ingest[1])
		b.Logf("legitimate requests failed: %d alone, %d under attack", baseFailed, failed)
		b.Logf("attack: %d long-polls parked; answers 429: %d, 413: %d, 400: %d, 401: %d, 404: %d, 503: %d; slow-body connections ended: %d; errors %d",
			waiting, h.get("429"), h.get("413"), h.get("400"), h.get("401"), h.get("404"), h.get("503"), h.get("slow-body-connection"), h.get("error"))
		b.Logf("live heap of the test process (server and load generator): %.1f MiB before, peak %.1f MiB alone, peak %.1f MiB under attack (+%.1f MiB)",
			mib(heapBefore), mib(basePeakHeap), mib(peak), grown)
		if failed > 0 {
			b.Errorf("%d legitimate requests failed under attack", failed)
		}
	}
}

// sampleHeap samples liveHeap every 100 ms until the returned function is
// called, which returns the peak.
func sampleHeap() (peak func() uint64) {
	var max atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if v := liveHeap(); v > max.Load() {
				max.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); <-stopped; return max.Load() }
}

// liveHeap is what the garbage collector found live at its last cycle.
func liveHeap() uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}
