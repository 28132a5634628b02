package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/prechat/prechat/browsertest"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// otlpReceiver is an in-process OTLP/HTTP trace receiver: it keeps every
// span exported to it, with its service's name.
type otlpReceiver struct {
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				o.services = append(o.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (o *otlpReceiver) received() ([]*tracepb.Span, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.spans), slices.Clone(o.services)
}

// TestTraceFromIngestToFetch runs "processor serve" with OTEL_* variables
// pointing at an in-process OTLP receiver. A caller with its own trace
// waits for a visitor's document (a long-poll), then sends the
// conversation start through the ingest, both with a W3C traceparent of
// its trace. The spans exported must form one chain: the ingest's server
// span continues the caller's trace, its send span is the parent the Kafka
// record's headers name, the batch span links to it, the refresh span that
// wrote the document links to the batch span, and the NOTIFY-woken fetch,
// in the caller's trace, links to the refresh span. No span carries the
// anonymousId, an address or the user agent. PRECHAT_TRACE_PNG=path keeps
// the timeline Chromium draws of the spans (docs/tracing-trace.png).
func TestTraceFromIngestToFetch(t *testing.T) {
	t.Parallel()
	browsertest.Require(t)
	receiver := &otlpReceiver{}
	collector := httptest.NewServer(receiver)
	t.Cleanup(collector.Close)

	topic := pipelinetest.Name(t, "topic")
	brokers := pipelinetest.NewCluster(t, 2, topic)
	_, dbURL := persistencetest.NewStore(t, nil)
	proc := startProcessor(t, []string{
		"DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + strings.Join(brokers, ","), "KAFKA_TOPIC=" + topic,
		"KAFKA_GROUP=" + pipelinetest.Name(t, "group"), "SETTINGS_FILE=" + writeSettings(t, mappingtest.SettingsJSON),
		"HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "WRITE_KEYS=wk-1",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.URL, "OTEL_SERVICE_NAME=prechat-trace-test", "OTEL_BSP_SCHEDULE_DELAY=100",
	}, "serve")
	base := "http://" + proc.logAddr(t, "http listening", 10*time.Second)
	admin := "http://" + proc.logAddr(t, "admin listening", 10*time.Second)
	waitReady(t, proc, admin)

	const anon = "visitor-trace-7"
	traceID := randomHex(t, 16)
	callerFetch, callerIngest := randomHex(t, 8), randomHex(t, 8)
	fetched := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/prechat/"+anon+"?wait=20", nil)
		req.Header.Set("X-Prechat-Token", testSecret)
		req.Header.Set("Traceparent", "00-"+traceID+"-"+callerFetch+"-01")
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !hasDetail(body, "Subject", "Socks") {
				err = fmt.Errorf("fetch: %d %s", res.StatusCode, body)
			}
		}
		fetched <- err
	}()
	waitMetric(t, admin, "prechat_waiters 1")

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/t", strings.NewReader(`{"writeKey":"wk-1","event":"Live Chat Conversation Started","anonymousId":"`+anon+`","messageId":"c1","properties":{"subject":"Socks"},`+tokenContext+`}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Traceparent", "00-"+traceID+"-"+callerIngest+"-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("ingest: %d", res.StatusCode)
	}
	select {
	case err := <-fetched:
		if err != nil {
			t.Fatalf("%v; log:\n%s", err, proc.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the waiting fetch was not answered; log:\n%s", proc.stderr.String())
	}
	// SIGTERM flushes the spans not exported yet.
	if !proc.signal(syscall.SIGTERM, 20*time.Second) {
		t.Fatalf("processor did not stop within 20s of SIGTERM; log:\n%s", proc.stderr.String())
	}
	spans, services := receiver.received()
	if len(services) == 0 || slices.ContainsFunc(services, func(s string) bool { return s != "prechat-trace-test" }) {
		t.Errorf("service names %v, want prechat-trace-test (OTEL_SERVICE_NAME)", services)
	}

	chain := traceChain(t, spans, traceID, callerIngest, callerFetch)
	if t.Failed() {
		return
	}
	for _, s := range spans {
		if leak := spanLeak(s, anon); leak != "" {
			t.Errorf("span %q carries %s", s.Name, leak)
		}
	}
	drawTimeline(t, chain, spans)
}

// traceChain finds the spans of the chain, failing the test for each link
// missing: ingest (child of the caller's span), send (child of ingest),
// batch (linked to send), refresh (linked to batch, wrote a document),
// fetch (child of the caller's span, notified, linked to refresh).
func traceChain(t *testing.T, spans []*tracepb.Span, traceID, callerIngest, callerFetch string) []*tracepb.Span {
	t.Helper()
	find := func(what string, ok func(*tracepb.Span) bool) *tracepb.Span {
		for _, s := range spans {
			if ok(s) {
				return s
			}
		}
		names := make([]string, len(spans))
		for i, s := range spans {
			names[i] = s.Name
		}
		t.Errorf("no %s span among %d exported: %v", what, len(spans), names)
		return nil
	}
	id := func(b []byte) string { return hex.EncodeToString(b) }
	linked := func(s, to *tracepb.Span) bool {
		return slices.ContainsFunc(s.Links, func(l *tracepb.Span_Link) bool {
			return bytes.Equal(l.TraceId, to.TraceId) && bytes.Equal(l.SpanId, to.SpanId)
		})
	}
	ingest := find("ingest (POST /v1/t, child of the caller's span)", func(s *tracepb.Span) bool {
		return s.Name == "POST /v1/t" && s.Kind == tracepb.Span_SPAN_KIND_SERVER && id(s.TraceId) == traceID && id(s.ParentSpanId) == callerIngest
	})
	if ingest == nil {
		return nil
	}
	send := find("Kafka send (child of the ingest)", func(s *tracepb.Span) bool {
		return s.Kind == tracepb.Span_SPAN_KIND_PRODUCER && bytes.Equal(s.ParentSpanId, ingest.SpanId)
	})
	if send == nil {
		return nil
	}
	batch := find("batch (linked to the send)", func(s *tracepb.Span) bool {
		return s.Kind == tracepb.Span_SPAN_KIND_CONSUMER && linked(s, send)
	})
	if batch == nil {
		return nil
	}
	refresh := find("refresh (linked to the batch, wrote a document)", func(s *tracepb.Span) bool {
		return s.Name == "refresh documents" && linked(s, batch) && intAttr(s, "prechat.documents.written") >= 1
	})
	if refresh == nil {
		return nil
	}
	fetch := find("fetch (child of the caller's span, woken by NOTIFY, linked to the refresh)", func(s *tracepb.Span) bool {
		notified := slices.ContainsFunc(s.Events, func(e *tracepb.Span_Event) bool { return e.Name == "notified" })
		return s.Name == "GET /v1/prechat/{anonymousId}" && id(s.TraceId) == traceID && id(s.ParentSpanId) == callerFetch &&
			notified && linked(s, refresh)
	})
	if fetch == nil {
		return nil
	}
	t.Logf("trace %s: ingest %s → send %s →(link) batch %s →(link) refresh %s →(link) fetch %s",
		traceID, id(ingest.SpanId), id(send.SpanId), id(batch.SpanId), id(refresh.SpanId), id(fetch.SpanId))
	return []*tracepb.Span{ingest, send, batch, refresh, fetch}
}

func intAttr(s *tracepb.Span, key string) int64 {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.GetValue().GetIntValue()
		}
	}
	return -1
}

// spanLeak names what identifying value the span carries in its name,
// attributes, events or links: the anonymousId, the client's address, its
// user agent.
func spanLeak(s *tracepb.Span, anon string) string {
	values := []string{s.Name}
	add := func(kvs []*commonpb.KeyValue) {
		for _, kv := range kvs {
			if kv.Key != "server.address" { // the service's own host
				values = append(values, kv.Key+"="+kv.GetValue().GetStringValue())
			}
		}
	}
	add(s.Attributes)
	for _, e := range s.Events {
		add(e.Attributes)
	}
	for _, l := range s.Links {
		add(l.Attributes)
	}
	for _, v := range values {
		switch {
		case strings.Contains(v, anon):
			return "the anonymousId: " + v
		case strings.Contains(v, "127.0.0.1"):
			return "an address: " + v
		case strings.Contains(v, "Go-http-client"):
			return "the user agent: " + v
		}
	}
	return ""
}

// drawTimeline has Chromium draw the chain (and the other spans of the
// run, lighter) on a common time axis, with the links as arrows, and keeps
// the PNG at $PRECHAT_TRACE_PNG when set.
func drawTimeline(t *testing.T, chain, all []*tracepb.Span) {
	t.Helper()
	start, end := chain[0].StartTimeUnixNano, chain[0].EndTimeUnixNano
	for _, s := range chain {
		start, end = min(start, s.StartTimeUnixNano), max(end, s.EndTimeUnixNano)
	}
	const width, left, row = 1180.0, 390.0, 46.0
	x := func(ns uint64) float64 { return left + (width-left-90)*float64(ns-start)/float64(max(end-start, 1)) }
	labels := []string{"ingest: HTTP server span (caller's trace)", "Kafka send: producer span, headers carry it", "batch: consumer span, new trace", "refresh: documents written, new trace", "fetch: long-poll woken by NOTIFY (caller's trace)"}
	var svg strings.Builder
	height := row*float64(len(chain)) + 90
	fmt.Fprintf(&svg, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="DejaVu Sans, sans-serif" font-size="13">`, width, height)
	svg.WriteString(`<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#c2410c"/></marker></defs>`)
	fmt.Fprintf(&svg, `<text x="12" y="22" font-size="15" font-weight="bold">One conversation start, ingest to document fetch: %s, %.0f ms</text>`,
		html.EscapeString("TestTraceFromIngestToFetch"), float64(end-start)/1e6)
	colors := []string{"#2563eb", "#0891b2", "#7c3aed", "#059669", "#2563eb"}
	ys := make([]float64, len(chain))
	for i, s := range chain {
		y := 45 + row*float64(i)
		ys[i] = y
		w := max(x(s.EndTimeUnixNano)-x(s.StartTimeUnixNano), 3)
		fmt.Fprintf(&svg, `<text x="12" y="%.0f">%s</text>`, y+16, html.EscapeString(labels[i]))
		fmt.Fprintf(&svg, `<text x="12" y="%.0f" fill="#555" font-size="11">%s · trace %s…</text>`, y+31, html.EscapeString(s.Name), hex.EncodeToString(s.TraceId)[:8])
		fmt.Fprintf(&svg, `<rect x="%.1f" y="%.0f" width="%.1f" height="22" rx="3" fill="%s"/>`, x(s.StartTimeUnixNano), y+4, w, colors[i])
		fmt.Fprintf(&svg, `<text x="%.1f" y="%.0f" fill="#333" font-size="11">%.1f ms</text>`, x(s.StartTimeUnixNano)+w+4, y+19, float64(s.EndTimeUnixNano-s.StartTimeUnixNano)/1e6)
	}
	for i := 1; i < len(chain); i++ {
		kind := "link"
		if i == 1 {
			kind = "child"
		}
		from, to := x(chain[i-1].StartTimeUnixNano)+2, x(chain[i].StartTimeUnixNano)+2
		if i == 2 || i == 3 {
			from = x(chain[i-1].EndTimeUnixNano) - 2
		}
		if i == 4 { // to where the notification woke the fetch
			from = x(chain[3].EndTimeUnixNano) - 2
			to = from
			for _, e := range chain[4].Events {
				if e.Name == "notified" {
					to = x(e.TimeUnixNano)
					fmt.Fprintf(&svg, `<text x="%.1f" y="%.0f" fill="#c2410c" font-size="10" text-anchor="end">notified</text>`, to-6, ys[i]+40)
				}
			}
		}
		fmt.Fprintf(&svg, `<path d="M%.1f,%.0f L%.1f,%.0f" stroke="#c2410c" stroke-width="1.5" fill="none" marker-end="url(#a)"/><text x="%.1f" y="%.0f" fill="#c2410c" font-size="10">%s</text>`,
			from, ys[i-1]+26, to, ys[i]+4, (from+to)/2+4, (ys[i-1]+ys[i])/2+18, kind)
	}
	fmt.Fprintf(&svg, `<text x="12" y="%.0f" fill="#555" font-size="11">Spans exported over OTLP/HTTP by processor serve to the test's receiver (%d spans in all); drawn by cmd/processor/tracing_test.go in headless Chromium.</text></svg>`, height-12, len(all))
	dir := t.TempDir()
	page := filepath.Join(dir, "trace.html")
	if err := os.WriteFile(page, []byte(`<!doctype html><meta charset="utf-8"><body style="margin:0;background:#fff">`+svg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "trace.png")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, browsertest.ChromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), fmt.Sprintf("--window-size=%.0f,%.0f", width, height), "--screenshot="+png, "file://"+page).CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	info, err := os.Stat(png)
	if err != nil || info.Size() < 5000 {
		t.Fatalf("timeline screenshot %s: %v (%v)", png, err, info)
	}
	if keep := os.Getenv("PRECHAT_TRACE_PNG"); keep != "" {
		raw, err := os.ReadFile(png)
		if err == nil {
			err = os.WriteFile(keep, raw, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("timeline kept at %s", keep)
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// waitReady waits until the admin port's /readyz answers 200.
func waitReady(t *testing.T, proc *child, admin string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(admin + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("not ready within 30s; log:\n%s", proc.stderr.String())
}

// waitMetric waits until the admin port's /metrics has the line.
func waitMetric(t *testing.T, admin, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(admin + "/metrics"); err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if bytes.Contains(body, []byte("\n"+line+"\n")) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q in /metrics within 10s", line)
}

// TestTracingEnabledByTheStandardVariables: tracing is off unless an OTLP
// endpoint or OTEL_TRACES_EXPORTER=otlp asks for it; none and
// OTEL_SDK_DISABLED win; exporters and protocols not built in are refused
// with the variable named.
func TestTracingEnabledByTheStandardVariables(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env     map[string]string
		on      bool
		refused string
	}{
		{env: nil},
		{env: map[string]string{"OTEL_SERVICE_NAME": "x"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, refused: "OTEL_TRACES_EXPORTER"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, refused: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, on: true},
	} {
		on, err := tracingEnabled(c.env)
		switch {
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%v: error %v, want one naming %s", c.env, err, c.refused)
		case c.refused == "" && (err != nil || on != c.on):
			t.Errorf("%v: on %v, error %v; want on %v", c.env, on, err, c.on)
		}
	}
	// serve refuses a configuration it cannot honour, naming the variable.
	code, _, stderr := runCmd(t, []string{"DATABASE_URL=postgres://127.0.0.1:1/x", "KAFKA_BROKERS=127.0.0.1:1",
		"SETTINGS_FILE=" + writeSettings(t, mappingtest.SettingsJSON), "OTEL_TRACES_EXPORTER=jaeger"}, "serve")
	if code != exitUsage || !strings.Contains(stderr, "OTEL_TRACES_EXPORTER") {
		t.Errorf("serve with OTEL_TRACES_EXPORTER=jaeger: exit %d, stderr %s", code, stderr)
	}
}
