package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/prechat/prechat/api"
	"github.com/prechat/prechat/mapping"
)

// load runs fn from conc goroutines for d and returns the calls/s and the
// latency percentiles of the calls.
func load(conc int, d time.Duration, fn func(worker int) error) (rate float64, p50, p99 time.Duration, err error) {
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := fn(w); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if e, _ := firstErr.Load().(error); e != nil {
		return 0, 0, 0, e
	}
	elapsed := time.Since(start)
	p50, p99 = percentile(lat, 50), percentile(lat, 99)
	return float64(len(lat)) / elapsed.Seconds(), p50, p99, nil
}

func percentile(lat []time.Duration, p int) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[(len(lat)-1)*p/100]
}

// getOK fetches url with client and fails unless it answers 200.
// getOK fetches url, presenting token as the conversation secret when it
// is not empty, and wants 200.
func getOK(client *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set(api.TokenHeader, token)
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, res.StatusCode)
	}
	return nil
}

// BenchmarkFetch measures GET /v1/prechat/{id} of a ready document against
// a static in-memory handler serving the same bytes, on the same loopback
// HTTP client, in the same run:
//
//	go test ./api -run '^$' -bench Fetch -benchtime 1x
func BenchmarkFetch(b *testing.B) {
	s := newStack(b, stackOptions{api: api.Config{RateLimit: -1}})
	identify, group, start := visitorEvents("bench-visitor", time.Now())
	s.produce(identify, group, start)
	r := s.get("bench-visitor", "?wait=20&after=bench-visitor-c,bench-visitor-i,bench-visitor-g")
	if r.status != http.StatusOK {
		b.Fatalf("document: %d", r.status)
	}
	doc := r.body
	static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(doc)
	}))
	defer static.Close()
	// The same API without its document cache: every fetch reads Postgres.
	uncached, err := api.New(api.Config{RateLimit: -1, CacheSize: -1, DeploymentScriptURL: "https://x.test/deployment.js"}, s.store, s.hub, nil)
	if err != nil {
		b.Fatal(err)
	}
	miss := httptest.NewServer(uncached)
	defer miss.Close()
	const conc = 32
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	for range b.N {
		baseRate, baseP50, baseP99, err := load(conc, 3*time.Second, func(int) error { return getOK(client, static.URL, "") })
		if err != nil {
			b.Fatal(err)
		}
		rate, p50, p99, err := load(conc, 3*time.Second, func(int) error { return getOK(client, s.url+"/v1/prechat/bench-visitor", secretOf("bench-visitor")) })
		if err != nil {
			b.Fatal(err)
		}
		missRate, missP50, missP99, err := load(conc, 3*time.Second, func(int) error { return getOK(client, miss.URL+"/v1/prechat/bench-visitor", secretOf("bench-visitor")) })
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rate, "req/s")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(baseRate, "static-req/s")
		b.ReportMetric(rate/baseRate, "x-static")
		b.ReportMetric(missRate/baseRate, "uncached-x-static")
		b.Logf("fetch of a ready %d-byte document, %d clients: %.0f req/s, p50 %v, p99 %v (%.2fx static); without the cache %.0f req/s, p50 %v, p99 %v (%.2fx static); static handler %.0f req/s, p50 %v, p99 %v",
			len(doc), conc, rate, p50, p99, rate/baseRate, missRate, missP50, missP99, missRate/baseRate, baseRate, baseP50, baseP99)
	}
}

// BenchmarkIngest measures single-event POSTs to the ingest (each answered
// after Kafka acknowledged it) against a raw kafka-go Writer writing the same
// events one call at a time, with the same concurrency, in the same run:
//
//	go test ./api -run '^$' -bench Ingest -benchtime 1x
func BenchmarkIngest(b *testing.B) {
	const conc = 32
	// Every request comes from one address here: the per-client ingest
	// rate and concurrency limits would measure themselves, not the ingest.
	s := newStack(b, stackOptions{noConsumer: true, api: api.Config{IngestRateLimit: -1, MaxIngestRequestsPerClient: 2 * conc}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	event := func(w int) string {
		return fmt.Sprintf(`{"type":"track","event":"Product Viewed","anonymousId":"anon-%d","properties":{"sku":"sku-1","price":12.5},"writeKey":%q}`, w, testWriteKey)
	}
	for range b.N {
		baseRate, _, baseP99, err := load(conc, 3*time.Second, func(w int) error {
			return s.writer.WriteMessages(context.Background(), kafka.Message{Key: []byte(fmt.Sprint(w)), Value: []byte(event(w))})
		})
		if err != nil {
			b.Fatal(err)
		}
		rate, p50, p99, err := load(conc, 3*time.Second, func(w int) error {
			res, err := client.Post(s.url+"/v1/t", "text/plain", strings.NewReader(event(w)))
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("ingest: %d", res.StatusCode)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(baseRate, "writer-events/s")
		b.ReportMetric(rate/baseRate, "x-writer")
		b.Logf("ingest, %d clients, one event a request: %.0f events/s, p50 %v, p99 %v; raw kafka-go Writer %.0f events/s, p99 %v; ratio %.2f",
			conc, rate, p50, p99, baseRate, baseP99, rate/baseRate)
	}
}

// BenchmarkEndToEnd measures, under a steady background load of other
// events through the ingest, the time from the ingest's 200 for a
// conversation start to the document reaching a fetch that was waiting for
// it:
//
//	go test ./api -run '^$' -bench EndToEnd -benchtime 1x
func BenchmarkEndToEnd(b *testing.B) {
	s := newStack(b, stackOptions{api: api.Config{RateLimit: -1}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(path, body string) error {
		res, err := client.Post(s.url+path, "text/plain", strings.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %d", path, res.StatusCode)
		}
		return nil
	}
	for range b.N {
		// Background: batches of 50 other events, about 2,000 events/s.
		ctx, stop := context.WithCancel(context.Background())
		var bg sync.WaitGroup
		var background atomic.Int64
		bg.Go(func() {
			tick := time.NewTicker(25 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ctx.Err() == nil; i++ {
				var items []string
				for j := range 50 {
					items = append(items, fmt.Sprintf(`{"type":"identify","anonymousId":"bg-%d","traits":{"plan":"pro","n":%d}}`, (i*50+j)%5000, j))
				}
				if post("/v1/b", fmt.Sprintf(`{"writeKey":%q,"batch":[%s]}`, testWriteKey, strings.Join(items, ","))) == nil {
					background.Add(50)
				}
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
			}
		})
		time.Sleep(time.Second)
		const visitors = 200
		lat := make([]time.Duration, 0, visitors)
		started := time.Now()
		for v := range visitors {
			anon := fmt.Sprintf("e2e-%d-%d", v, time.Now().UnixNano())
			got := make(chan time.Time, 1)
			go func() {
				if err := getOK(client, s.url+"/v1/prechat/"+anon+"?wait=10&after="+anon+"-c", secretOf(anon)); err != nil {
					b.Error(err)
				}
				got <- time.Now()
			}()
			for s.hub.Waiters() == 0 {
				time.Sleep(100 * time.Microsecond)
			}
			body := fmt.Sprintf(`{"event":%q,"anonymousId":%q,"messageId":"%s-c","properties":{"subject":"Help"},"context":{"prechat":{"tokenHash":%q}},"writeKey":%q}`,
				mapping.ConversationStarted, anon, anon, tokenHash(secretOf(anon)), testWriteKey)
			if err := post("/v1/t", body); err != nil {
				b.Fatal(err)
			}
			acked := time.Now()
			lat = append(lat, max(0, (<-got).Sub(acked)))
		}
		elapsed := time.Since(started)
		stop()
		bg.Wait()
		bgRate := float64(background.Load()) / (elapsed.Seconds() + 1)
		p50, p99 := percentile(lat, 50), percentile(lat, 99)
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(bgRate, "background-events/s")
		b.Logf("ingest 200 for a conversation start → document at a waiting fetch, %d visitors under %.0f background events/s: p50 %v, p99 %v, max %v",
			visitors, bgRate, p50, p99, percentile(lat, 100))
	}
}
