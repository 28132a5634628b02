package helmtest_test

// The chart's monitoring — the PrometheusRule, the Grafana dashboard and the
// KEDA trigger — parsed with Prometheus's own rule and PromQL parsers and
// checked against what a real run of the binary exports (live_test.go).

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"
)

// externalMetrics are metrics an alert may use that the processor does not
// export, with where they come from.
var externalMetrics = map[string]string{
	"kube_deployment_status_replicas_unavailable": "kube-state-metrics",
}

// targetLabels are labels Prometheus (with the Prometheus Operator's
// service discovery) adds to every scraped series.
var targetLabels = []string{"namespace", "job", "pod", "instance", "service", "container", "endpoint"}

var promParser = parser.NewParser(parser.Options{})

// selectorUse is one metric named by an expression, with the labels it
// matches on.
type selectorUse struct {
	metric string
	labels []string
}

// selectorsOf parses a PromQL expression and returns every metric its
// selectors name. A {__name__=~"a|b"} selector names a and b.
func selectorsOf(expr string) ([]selectorUse, error) {
	e, err := promParser.ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", expr, err)
	}
	var out []selectorUse
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, usesOf(vs.Name, vs.LabelMatchers)...)
		}
		return nil
	})
	return out, nil
}

func usesOf(name string, matchers []*labels.Matcher) []selectorUse {
	var names, used []string
	if name != "" {
		names = []string{name}
	}
	for _, m := range matchers {
		switch {
		case m.Name != model.MetricNameLabel:
			used = append(used, m.Name)
		case name == "" && m.Type == labels.MatchEqual:
			names = append(names, m.Value)
		case name == "" && m.Type == labels.MatchRegexp:
			names = append(names, strings.Split(m.Value, "|")...)
		}
	}
	var out []selectorUse
	for _, n := range names {
		out = append(out, selectorUse{metric: n, labels: used})
	}
	return out
}

// checkExported reports each metric of the expression that the live run
// did not export, and each label matched on that the metric does not have.
func checkExported(t *testing.T, what, expr string, exp exposition) []string {
	t.Helper()
	uses, err := selectorsOf(expr)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return nil
	}
	if len(uses) == 0 {
		t.Errorf("%s: %q selects no metric", what, expr)
	}
	var metrics []string
	for _, u := range uses {
		metrics = append(metrics, u.metric)
		if src, ok := externalMetrics[u.metric]; ok {
			t.Logf("%s: %s comes from %s, not the processor", what, u.metric, src)
			continue
		}
		have, ok := exp[u.metric]
		if !ok {
			t.Errorf("%s: %s is not exported by the processor (expr %q)", what, u.metric, expr)
			continue
		}
		for _, l := range u.labels {
			if !slices.Contains(have, l) && !slices.Contains(targetLabels, l) {
				t.Errorf("%s: %s has no label %q (it has %v)", what, u.metric, l, have)
			}
		}
	}
	return metrics
}

// runbookAnchors are the anchors of docs/operations-alerts.md's "###"
// sections, as GitHub makes them (lower case; for an alert name no more).
func runbookAnchors(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "operations-alerts.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^### (\S+)$`).FindAllStringSubmatch(string(data), -1) {
		out[strings.ToLower(m[1])] = m[1]
	}
	return out
}

// ruleGroups renders the PrometheusRule and parses its spec as a rule file.
func ruleGroups(t *testing.T, r *release) *rulefmt.RuleGroups {
	t.Helper()
	u, ok := r.find("PrometheusRule", fullname).(*unstructured.Unstructured)
	if !ok {
		t.Fatalf("no PrometheusRule %s in %v", fullname, r.kinds())
	}
	if u.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("PrometheusRule apiVersion %s", u.GetAPIVersion())
	}
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	text, err := sigsyaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(text, false, model.UTF8Validation, promParser, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Errorf("rulefmt: %v", err)
	}
	if groups == nil {
		t.Fatalf("rulefmt parsed nothing:\n%s", text)
	}
	return groups
}

// TestPrometheusRule: the alerts parse as a Prometheus rule file, use only
// what the binary exports, and each has a runbook section (and each section
// an alert).
func TestPrometheusRule(t *testing.T) {
	exp := exportedMetrics(t)
	r := mustRender(t, readValues(t, valueSetFile("features")))
	groups := ruleGroups(t, r)
	anchors := runbookAnchors(t)
	base := r.str("prometheusRule.runbookBaseURL")
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		for _, rule := range g.Rules {
			what := "alert " + rule.Alert
			if rule.Alert == "" {
				t.Errorf("recording rule %s: the chart ships alerts only", rule.Record)
				continue
			}
			seen[strings.ToLower(rule.Alert)] = true
			checkExported(t, what, rule.Expr, exp)
			if got, want := rule.Annotations["runbook_url"], base+"#"+strings.ToLower(rule.Alert); got != want {
				t.Errorf("%s: runbook_url %q, want %q", what, got, want)
			}
			if anchors[strings.ToLower(rule.Alert)] != rule.Alert {
				t.Errorf("%s: docs/operations-alerts.md has no section ### %s", what, rule.Alert)
			}
			for _, a := range []string{"summary", "description"} {
				if rule.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", what, a)
				}
			}
			if sev := rule.Labels["severity"]; sev != "warning" && sev != "critical" {
				t.Errorf("%s: severity %q", what, sev)
			}
			if rule.Labels["team"] != "support-tools" {
				t.Errorf("%s: prometheusRule.additionalLabels not applied: %v", what, rule.Labels)
			}
			if !strings.Contains(rule.Expr, `namespace="prechat",job=~"prod-prechat-(consumer|api)-metrics"`) && !strings.Contains(rule.Expr, `namespace="prechat",deployment=~`) {
				t.Errorf("%s: does not select this release's series: %s", what, rule.Expr)
			}
		}
	}
	for anchor, name := range anchors {
		if !seen[anchor] {
			t.Errorf("docs/operations-alerts.md: section %s has no alert", name)
		}
	}
	t.Logf("%d alerts, each with its runbook section", len(seen))
}

// TestPrometheusRuleSelectsTheServiceMonitorsJobs: the default selector's
// job regular expression matches exactly the metrics Services the
// ServiceMonitor scrapes (the operator names each job after its Service).
func TestPrometheusRuleSelectsTheServiceMonitorsJobs(t *testing.T) {
	r := mustRender(t, with(t, readValues(t, valueSetFile("servicemonitor")), "prometheusRule: {enabled: true}"))
	groups := ruleGroups(t, r)
	ms, err := promParser.ParseMetricSelector(`{` + `namespace="prechat",job=~"prod-prechat-(consumer|api)-metrics"` + `}`)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, o := range r.all("Service") {
		if strings.HasSuffix(o.name, "-metrics") {
			jobs = append(jobs, o.name)
		}
	}
	if len(jobs) != 2 {
		t.Fatalf("metrics Services %v", jobs)
	}
	for _, job := range append(jobs, api, consumer, "other-prechat-api-metrics") {
		want := slices.Contains(jobs, job)
		if got := ms[1].Matches(job); got != want {
			t.Errorf("job %s matched=%v, want %v", job, got, want)
		}
	}
	if !strings.Contains(groups.Groups[0].Rules[0].Expr, ms[0].String()+","+ms[1].String()) {
		t.Errorf("the first alert does not use the default selector: %s", groups.Groups[0].Rules[0].Expr)
	}
	// Overrides: another selector, alerts left out, the kube-state-metrics one off.
	r = mustRender(t, with(t, readValues(t, valueSetFile("default")), `
prometheusRule:
  enabled: true
  selector: 'cluster="eu-1"'
  disabled: [PrechatSlowCommits]
  kubeStateMetrics: false
  consumerLagThreshold: 250
`))
	for _, rule := range ruleGroups(t, r).Groups[0].Rules {
		if rule.Alert == "PrechatSlowCommits" || rule.Alert == "PrechatPodsNotReady" {
			t.Errorf("%s rendered although left out", rule.Alert)
		}
		if strings.Contains(rule.Expr, "namespace=") || !strings.Contains(rule.Expr, `cluster="eu-1"`) {
			t.Errorf("%s: selector not replaced: %s", rule.Alert, rule.Expr)
		}
		if rule.Alert == "PrechatConsumerLagHigh" && !strings.HasSuffix(rule.Expr, "> 250") {
			t.Errorf("lag threshold not applied: %s", rule.Expr)
		}
	}
	// An empty selector: every Prechat series.
	r = mustRender(t, with(t, readValues(t, valueSetFile("default")), `prometheusRule: {enabled: true, selector: ""}`))
	for _, rule := range ruleGroups(t, r).Groups[0].Rules {
		if strings.Contains(rule.Expr, ",}") || strings.Contains(rule.Expr, "{,") {
			t.Errorf("%s: %s", rule.Alert, rule.Expr)
		}
	}
}

// dashboard is the part of Grafana's dashboard JSON the tests read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
}

// readDashboard reads the chart's dashboard and checks the copy in docs/
// is the same file.
func readDashboard(t *testing.T) ([]byte, dashboard) {
	t.Helper()
	chartCopy, err := os.ReadFile(filepath.Join(chartDir, "dashboards", "prechat.json"))
	if err != nil {
		t.Fatal(err)
	}
	docsCopy, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "grafana", "prechat-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(chartCopy) != string(docsCopy) {
		t.Errorf("docs/grafana/prechat-dashboard.json differs from helm/prechat/dashboards/prechat.json: copy one over the other")
	}
	var d dashboard
	if err := json.Unmarshal(chartCopy, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	return chartCopy, d
}

// grafanaVariable matches $name, ${name} and ${name:format}.
var grafanaVariable = regexp.MustCompile(`\$\{?(\w+)(?::\w+)?\}?`)

// promQLOf replaces Grafana's variables with what they stand for at query
// time: an interval for the built-in ones, ".*" (All) for the dashboard's.
func promQLOf(expr string) string {
	return grafanaVariable.ReplaceAllStringFunc(expr, func(v string) string {
		name := grafanaVariable.FindStringSubmatch(v)[1]
		if strings.HasPrefix(name, "__") {
			return "1m"
		}
		return ".*"
	})
}

// TestGrafanaDashboard: every panel's queries parse as PromQL and use only
// metrics and labels the binary exports; the panels cover what the
// dashboard promises; the layout has no overlaps.
func TestGrafanaDashboard(t *testing.T) {
	exp := exportedMetrics(t)
	_, d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q", d.UID, d.Title)
	}
	used := map[string][]string{} // metric → panel titles
	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panel %q overlaps %q at %d,%d", p.Title, other, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q is wider than the grid", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %q, want the ${datasource} variable", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			if !strings.Contains(target.Expr, `namespace=~"$namespace",job=~"$job"`) {
				t.Errorf("panel %q: %s does not filter by the namespace and job variables", p.Title, target.Expr)
			}
			for _, m := range checkExported(t, "panel "+p.Title, promQLOf(target.Expr), exp) {
				used[m] = append(used[m], p.Title)
			}
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		text, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, text)
			continue
		}
		ms, err := promParser.ParseMetricSelector(promQLOf(m[1]))
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
			continue
		}
		for _, u := range usesOf("", ms) {
			if _, ok := exp[u.metric]; !ok {
				t.Errorf("variable %s: %s is not exported", v.Name, u.metric)
			}
		}
	}
	// What the dashboard is for: lag, batch rate and latency, documents
	// written, dead letters, retries, fetch latency by code, cache hit rate,
	// waiters, ingest results.
	for _, want := range []string{
		"prechat_consumer_lag", "prechat_batch_messages_count", "prechat_batch_apply_seconds_bucket",
		"prechat_documents_written_total", "prechat_events_total", "prechat_retries_total",
		"prechat_http_request_seconds_bucket", "prechat_document_cache_total", "prechat_waiters",
		"prechat_ingest_events_total", "prechat_batch_splits_total", "prechat_retention_skipped_messages_total",
	} {
		if len(used[want]) == 0 {
			t.Errorf("no panel shows %s", want)
		}
	}
	raw, _ := readDashboard(t)
	for _, want := range []string{`sum by (le, code) (rate(prechat_http_request_seconds_bucket`, `outcome=\"dead_letter\"`, `prechat_document_cache_total{result=\"hit\"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the dashboard has no query with %s", want)
		}
	}
	t.Logf("%d panels over %d metrics", len(ids), len(used))
}

// TestGrafanaDashboardConfigMap: the chart ships the dashboard file
// unchanged in a ConfigMap the Grafana sidecar picks up.
func TestGrafanaDashboardConfigMap(t *testing.T) {
	raw, _ := readDashboard(t)
	r := mustRender(t, readValues(t, valueSetFile("features")))
	cm, ok := r.find("ConfigMap", fullname+"-dashboard").(*corev1.ConfigMap)
	if !ok {
		t.Fatalf("no ConfigMap %s-dashboard in %v", fullname, r.kinds())
	}
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v: want the sidecar's grafana_dashboard: \"1\"", cm.Labels)
	}
	if cm.Annotations["grafana_folder"] != "Prechat" {
		t.Errorf("annotations %v", cm.Annotations)
	}
	if got := cm.Data["prechat.json"]; got != strings.TrimRight(string(raw), "\n") {
		t.Errorf("the ConfigMap's prechat.json differs from dashboards/prechat.json")
	}
	if r := mustRender(t, readValues(t, valueSetFile("default"))); r.find("ConfigMap", fullname+"-dashboard") != nil {
		t.Errorf("the dashboard is rendered by default")
	}
	r = mustRender(t, with(t, readValues(t, valueSetFile("default")), "grafanaDashboard: {enabled: true, label: grafana_dashboard_prechat, labelValue: 'yes', namespace: monitoring}"))
	cm = r.find("ConfigMap", fullname+"-dashboard").(*corev1.ConfigMap)
	if cm.Labels["grafana_dashboard_prechat"] != "yes" || cm.Namespace != "monitoring" {
		t.Errorf("label and namespace not applied: %v %s", cm.Labels, cm.Namespace)
	}
}

// TestKEDAScaledObject: the ScaledObject scales the consumer Deployment,
// which then has no replica count of its own, on a query over exported
// metrics.
func TestKEDAScaledObject(t *testing.T) {
	exp := exportedMetrics(t)
	r := mustRender(t, readValues(t, valueSetFile("features")))
	u, ok := r.find("ScaledObject", consumer).(*unstructured.Unstructured)
	if !ok {
		t.Fatalf("no ScaledObject %s in %v", consumer, r.kinds())
	}
	if u.GetAPIVersion() != "keda.sh/v1alpha1" {
		t.Errorf("apiVersion %s", u.GetAPIVersion())
	}
	target, _, _ := unstructured.NestedStringMap(u.Object, "spec", "scaleTargetRef")
	if target["name"] != consumer || target["kind"] != "Deployment" {
		t.Errorf("scaleTargetRef %v", target)
	}
	if d := r.deployment(t, consumer); d.Spec.Replicas != nil {
		t.Errorf("the consumer Deployment sets replicas %d although KEDA owns them", *d.Spec.Replicas)
	}
	minR, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "minReplicaCount")
	maxR, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "maxReplicaCount")
	if fmt.Sprint(minR) != "2" || fmt.Sprint(maxR) != "12" {
		t.Errorf("replicas %v..%v, want 2..12", minR, maxR)
	}
	triggers, _, _ := unstructured.NestedSlice(u.Object, "spec", "triggers")
	if len(triggers) != 1 {
		t.Fatalf("triggers %v", triggers)
	}
	tr := triggers[0].(map[string]any)
	meta, _ := tr["metadata"].(map[string]any)
	if tr["type"] != "prometheus" || meta["serverAddress"] != "http://kube-prometheus-stack-prometheus.monitoring.svc:9090" || meta["threshold"] != "5000" {
		t.Errorf("trigger %v", tr)
	}
	query, _ := meta["query"].(string)
	if metrics := checkExported(t, "KEDA query", query, exp); !slices.Equal(metrics, []string{"prechat_consumer_lag"}) {
		t.Errorf("KEDA query %q uses %v, want prechat_consumer_lag", query, metrics)
	}
	if !strings.Contains(query, `topic="segment-events"`) {
		t.Errorf("KEDA query %q is not about the release's topic", query)
	}
	if api := r.deployment(t, api); api.Spec.Replicas == nil {
		t.Errorf("KEDA for the consumers took the API's replicas too")
	}
	if r := mustRender(t, readValues(t, valueSetFile("default"))); len(r.all("ScaledObject")) > 0 {
		t.Errorf("a ScaledObject is rendered by default")
	}
}
