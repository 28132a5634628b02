package helmtest_test

// The dashboard fed by a real run: a real Prometheus (Debian's) scrapes a
// live "processor dev" every second while events flow; every panel's
// queries are then evaluated by that Prometheus over the run, and each
// panel must show data. The results are drawn in the dashboard's layout by
// testdata/dashboard.html in headless Chromium. Grafana itself cannot be
// installed on these machines; the picture is this page, not Grafana.
// PRECHAT_DASHBOARD_PNG=path keeps the screenshot (docs/grafana/dashboard.png).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rateInterval stands for Grafana's $__rate_interval: four scrape
// intervals of the test's 1 s scrapes, plus margin.
const rateInterval = "10s"

// startPrometheus runs Prometheus scraping target (host:port) every second.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not found (scripts/helm-test installs Debian's prometheus): %v", err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}
scrape_configs:
  - job_name: prod-prechat-api-metrics
    static_configs:
      - targets: [%q]
        labels: {namespace: prechat, pod: prod-prechat-dev-0}
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if res, err := http.Get(base + "/-/ready"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready within 30 s:\n%s", logs.String())
		}
	}
}

// promSeries is one series of a query_range answer.
type promSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"`
}

func queryRange(base, query string, start, end time.Time) ([]promSeries, error) {
	q := url.Values{"query": {query}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"1"}}
	res, err := http.Get(base + "/api/v1/query_range?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promSeries `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s: %s", query, body.Error)
	}
	return body.Data.Result, nil
}

// hasNumbers tells whether any point of the series is a number (not NaN).
func hasNumbers(series []promSeries) bool {
	for _, s := range series {
		for _, v := range s.Values {
			if f, err := strconv.ParseFloat(fmt.Sprint(v[1]), 64); err == nil && f == f {
				return true
			}
		}
	}
	return false
}

// traffic plays visitors for d: conversations, page long-polls for
// documents that never come, refused requests, a raw dead letter now and
// then, and a burst of raw messages that the consumer works off (lag).
func traffic(t *testing.T, l *liveRun, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	loop := func(every time.Duration, f func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if err := f(i); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(every):
				}
			}
		}()
	}
	loop(150*time.Millisecond, func(i int) error { return l.conversation(fmt.Sprintf("shot-%d", i)) })
	loop(400*time.Millisecond, func(i int) error {
		// a page that waits for a document nobody writes: a waiter, then 404
		_, _, err := l.get(fmt.Sprintf("/v1/prechat/waiting-%d?wait=2", i))
		return err
	})
	loop(time.Second, func(i int) error { return l.refusals(strconv.Itoa(i)) })
	loop(7*time.Second, func(i int) error {
		if i == 0 {
			return nil
		}
		return l.produceRaw(fmt.Sprintf("dead-%d", i), `{"type":"track","event":`)
	})
	loop(20*time.Second, func(i int) error {
		if i == 0 {
			return nil
		}
		var records []string
		for j := range 8000 {
			records = append(records, fmt.Sprintf(`{"type":"identify","anonymousId":"burst-%d-%d","messageId":"burst-%d-%d","traits":{"plan":"pro"}}`, i, j, i, j))
		}
		return l.produceRawMany(records)
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("traffic: %v", err)
	}
}

// TestDashboardScreenshot: every panel of the dashboard shows data from a
// real run, evaluated by a real Prometheus; so do the alerts (the one the
// run caused fires, the others stay quiet); the page drawing the panels
// renders in headless Chromium.
func TestDashboardScreenshot(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (scripts/test installs Debian's chromium): %v", err)
	}
	raw, d := readDashboard(t)
	// One address plays every visitor: no per-client rate limits. Small
	// batches, so that a burst takes several and the lag shows.
	l, err := startLive(t, "prechat_helmtest_dashboard", "RATE_LIMIT=0", "INGEST_RATE_LIMIT=0", "BATCH_SIZE=250")
	if err != nil {
		t.Fatal(err)
	}
	defer l.stop()
	prom := startPrometheus(t, strings.TrimPrefix(l.admin, "http://"))
	start := time.Now()
	traffic(t, l, 75*time.Second)
	time.Sleep(3 * time.Second)
	end := time.Now()

	var full map[string]any
	if err := json.Unmarshal(raw, &full); err != nil {
		t.Fatal(err)
	}
	results := map[int]map[string][]promSeries{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		results[p.ID] = map[string][]promSeries{}
		var any bool
		for i, target := range p.Targets {
			q := strings.ReplaceAll(target.Expr, "$__rate_interval", rateInterval)
			q = promQLOf(q)
			series, err := queryRange(prom, q, start, end)
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
				continue
			}
			results[p.ID][string(rune('A'+i))] = series
			any = any || hasNumbers(series)
		}
		if !any {
			t.Errorf("panel %q shows no data from the run", p.Title)
		}
	}
	checkAlertsOnRun(t, prom, end)
	dir := t.TempDir()
	page, err := os.ReadFile("testdata/dashboard.html")
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(map[string]any{
		"dashboard": full, "results": results, "start": start.Unix(), "end": end.Unix(),
		"caption": "drawn from docs/grafana/prechat-dashboard.json by helm/test/testdata/dashboard.html (not Grafana): " +
			"each query evaluated by Prometheus 2.42 over 1 s scrapes of a live processor dev run (75 s of test traffic, $__rate_interval = " + rateInterval + ")",
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"index.html": page, "data.js": append([]byte("const DATA = "), append(data, ';')...)} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	png := filepath.Join(dir, "dashboard.png")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1576,1340", "--screenshot="+png, "file://"+filepath.Join(dir, "index.html"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	info, err := os.Stat(png)
	if err != nil || info.Size() < 20000 {
		t.Fatalf("screenshot %s: %v (%v bytes)", png, err, info)
	}
	if keep := os.Getenv("PRECHAT_DASHBOARD_PNG"); keep != "" {
		if err := copyFile(png, keep); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot kept at %s", keep)
	}
	t.Logf("%d panels with data from %s to %s, screenshot %d bytes", len(results), start.Format(time.TimeOnly), end.Format(time.TimeOnly), info.Size())
}

// checkAlertsOnRun evaluates the chart's alert expressions (as the
// features value set renders them: this Prometheus's job and namespace
// labels are the ones the default selector picks) at the end of the run:
// all evaluate, the dead letters alert fires for the malformed messages,
// and those whose cause the run never had stay quiet.
func checkAlertsOnRun(t *testing.T, prom string, at time.Time) {
	t.Helper()
	r := mustRender(t, readValues(t, valueSetFile("features")))
	quiet := []string{"PrechatConsumerStalled", "PrechatRetrying", "PrechatRetentionSkipped", "PrechatBatchSplits",
		"PrechatIngestUnavailable", "PrechatWaitersNearLimit", "PrechatPodsNotReady"}
	for _, rule := range ruleGroups(t, r).Groups[0].Rules {
		q := url.Values{"query": {rule.Expr}, "time": {strconv.FormatInt(at.Unix(), 10)}}
		res, err := http.Get(prom + "/api/v1/query?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
				} `json:"result"`
			} `json:"data"`
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		switch {
		case err != nil || body.Status != "success":
			t.Errorf("alert %s: Prometheus cannot evaluate it: %v %s", rule.Alert, err, body.Error)
		case rule.Alert == "PrechatDeadLetters":
			if len(body.Data.Result) != 1 || body.Data.Result[0].Metric["type"] != "invalid" {
				t.Errorf("alert %s: %v, want it firing for type invalid", rule.Alert, body.Data.Result)
			}
		case slices.Contains(quiet, rule.Alert) && len(body.Data.Result) > 0:
			t.Errorf("alert %s fires on a run that never had its cause: %v", rule.Alert, body.Data.Result)
		default:
			t.Logf("alert %s: %d series", rule.Alert, len(body.Data.Result))
		}
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
