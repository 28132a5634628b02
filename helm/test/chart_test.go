// Package helmtest tests the Helm chart in ../prechat and the container
// image's binary. It is its own Go module so that Helm and client-go stay out
// of the service's go.mod. Run it with scripts/helm-test. Every file is in
// the external test package helmtest_test: govulncheck (scripts/vulncheck)
// misses the modules that in-package test files import (golang/go#80601).
package helmtest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// valueSet is a realistic set of values: its files, the manifests it must
// render (Kind → names) and what is particular to it.
type valueSet struct {
	name  string
	files []string
	want  map[string][]string
	check func(t *testing.T, r *release)
}

var (
	consumer = fullname + "-consumer"
	api      = fullname + "-api"
	migrate  = fullname + "-migrate"
)

// the manifests of the default install
func defaultKinds() map[string][]string {
	return withTestHook(map[string][]string{
		"ConfigMap":           {fullname + "-settings"},
		"Deployment":          {api, consumer},
		"Job":                 {migrate},
		"PodDisruptionBudget": {api, consumer},
		"Secret":              {fullname, migrate},
		"Service":             {api},
		"ServiceAccount":      {fullname},
	}, "api", "consumer")
}

// withTestHook adds the "helm test" hook's manifests (on by default): its
// pod, and a Service on the admin port of each enabled role.
func withTestHook(kinds map[string][]string, roles ...string) map[string][]string {
	kinds = plus(kinds, "Pod", fullname+"-test")
	for _, role := range roles {
		kinds = plus(kinds, "Service", fullname+"-"+role+"-test")
	}
	return kinds
}

func plus(base map[string][]string, kind string, names ...string) map[string][]string {
	out := map[string][]string{}
	for k, v := range base {
		out[k] = slices.Clone(v)
	}
	out[kind] = append(out[kind], names...)
	slices.Sort(out[kind])
	return out
}

var valueSets = []valueSet{
	{
		name:  "default",
		files: []string{valueSetFile("default")},
		want:  defaultKinds(),
		check: checkDefault,
	},
	{
		name:  "existing-secret",
		files: []string{valueSetFile("existing-secret")},
		want: withTestHook(map[string][]string{
			"Deployment":          {api, consumer},
			"Job":                 {migrate},
			"PodDisruptionBudget": {api, consumer},
			"Service":             {api},
		}, "api", "consumer"),
		check: checkExistingSecret,
	},
	{
		name:  "identity",
		files: []string{valueSetFile("identity")},
		want:  defaultKinds(),
		check: checkIdentity,
	},
	{
		name:  "ingress-hpa",
		files: []string{valueSetFile("ingress-hpa")},
		want:  plus(plus(defaultKinds(), "Ingress", api), "HorizontalPodAutoscaler", api),
		check: checkIngressHPA,
	},
	{
		name:  "servicemonitor",
		files: []string{valueSetFile("servicemonitor")},
		want:  plus(plus(defaultKinds(), "Service", api+"-metrics", consumer+"-metrics"), "ServiceMonitor", fullname),
		check: checkServiceMonitor,
	},
	{
		name:  "networkpolicy",
		files: []string{valueSetFile("networkpolicy")},
		want:  plus(defaultKinds(), "NetworkPolicy", api, consumer),
		check: checkNetworkPolicy,
	},
	{
		name:  "consumer-only",
		files: []string{valueSetFile("consumer-only")},
		want: withTestHook(map[string][]string{
			"ConfigMap":           {fullname + "-settings"},
			"Deployment":          {consumer},
			"Job":                 {migrate},
			"PodDisruptionBudget": {consumer},
			"Secret":              {fullname, migrate},
			"ServiceAccount":      {fullname},
		}, "consumer"),
		check: checkConsumerOnly,
	},
	{
		name:  "api-only",
		files: []string{valueSetFile("api-only")},
		want: withTestHook(map[string][]string{
			"ConfigMap":           {fullname + "-settings"},
			"Deployment":          {api},
			"PodDisruptionBudget": {api},
			"Secret":              {fullname},
			"Service":             {api},
			"ServiceAccount":      {fullname},
		}, "api"),
		check: checkAPIOnly,
	},
	{
		name:  "production-example",
		files: []string{"../examples/production-values.yaml"},
		want: withTestHook(map[string][]string{
			"ConfigMap":               {fullname + "-settings"},
			"Deployment":              {api, consumer},
			"HorizontalPodAutoscaler": {api},
			"Ingress":                 {api},
			"Job":                     {migrate},
			"PodDisruptionBudget":     {api, consumer},
			"Service":                 {api, api + "-metrics", consumer + "-metrics"},
			"ServiceAccount":          {fullname},
			"ServiceMonitor":          {fullname},
		}, "api", "consumer"),
	},
	{
		name:  "features",
		files: []string{valueSetFile("features")},
		want: withTestHook(map[string][]string{
			"ConfigMap":           {fullname + "-dashboard", fullname + "-extra", fullname + "-settings"},
			"Deployment":          {api, consumer},
			"Job":                 {migrate},
			"NetworkPolicy":       {api, consumer},
			"PodDisruptionBudget": {api, consumer},
			"PrometheusRule":      {fullname},
			"ScaledObject":        {consumer},
			"Secret":              {fullname + "-keda-prometheus"},
			"Service":             {api, api + "-metrics", consumer + "-metrics"},
			"ServiceAccount":      {fullname},
			"ServiceMonitor":      {fullname},
		}, "api", "consumer"),
		check: checkFeatures,
	},
}

// TestLint runs "helm lint --strict" (warnings are errors) for every value set.
func TestLint(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			for _, err := range lint(readValues(t, vs.files...)) {
				t.Error(err)
			}
		})
	}
}

// TestRender renders every value set, decodes every manifest strictly into
// the k8s.io/api types, and checks what must hold everywhere and what is
// particular to the set.
func TestRender(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			r := mustRender(t, readValues(t, vs.files...))
			got := kindsOf(r)
			t.Logf("%s renders %s", vs.name, formatKinds(got))
			if fmt.Sprint(got) != fmt.Sprint(vs.want) {
				t.Errorf("manifests:\n got %v\nwant %v", got, vs.want)
			}
			checkRelease(t, r)
			if vs.check != nil {
				vs.check(t, r)
			}
		})
	}
}

func formatKinds(k map[string][]string) string {
	var parts []string
	for _, kind := range sortedKeys(k) {
		parts = append(parts, fmt.Sprintf("%s×%d", kind, len(k[kind])))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func checkDefault(t *testing.T, r *release) {
	c := r.deployment(t, consumer)
	a := r.deployment(t, api)
	if *c.Spec.Replicas != 2 || *a.Spec.Replicas != 2 {
		t.Errorf("replicas consumer %d api %d, want 2 and 2", *c.Spec.Replicas, *a.Spec.Replicas)
	}
	cc := c.Spec.Template.Spec.Containers[0]
	ac := a.Spec.Template.Spec.Containers[0]
	// 90% of 512Mi.
	if got := envValue(&cc, "GOMEMLIMIT"); got != "483183820" {
		t.Errorf("consumer GOMEMLIMIT=%s, want 483183820", got)
	}
	if cc.Image != "ghcr.io/prechat/prechat:0.1.0" {
		t.Errorf("image %s, want the chart's appVersion tag", cc.Image)
	}
	for name, want := range map[string]string{
		"SHUTDOWN_GRACE": "20s", "KAFKA_START_OFFSET": "earliest", "BATCH_SIZE": "10000", "BATCH_TIMEOUT": "50ms", "APPLY_LANES": "2",
		"PRECHAT_TTL": "30m", "LOG_FORMAT": "json", "SETTINGS_FILE": "/etc/prechat/settings/settings.json",
	} {
		if got := envValue(&cc, name); got != want {
			t.Errorf("consumer %s=%q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]string{"RATE_LIMIT": "5", "MAX_WAITERS": "10000", "HTTP_ADDR": ":8080",
		"MAX_WAITERS_PER_CLIENT": "20", "DOCUMENT_ACCESS": "token", "DOCUMENT_READ_TIMEOUT": "2s",
		"TRUSTED_PROXIES": "1", "RATE_LIMIT_CLIENTS": "100000", "INGEST_RATE_LIMIT": "50", "MAX_INGEST_REQUESTS": "128",
		"MAX_INGEST_REQUESTS_PER_CLIENT": "8", "MAX_INGEST_BYTES": "33554432", "PPROF": "false"} {
		if got := envValue(&ac, name); got != want {
			t.Errorf("api %s=%q, want %q", name, got, want)
		}
	}
	// api-only and consumer-only variables stay on their role.
	for _, name := range []string{"BATCH_SIZE", "BATCH_TIMEOUT", "APPLY_LANES", "KAFKA_START_OFFSET"} {
		if envVar(&ac, name) != nil {
			t.Errorf("api sets the consumer's %s", name)
		}
	}
	// Postgres timeouts and pool on both.
	for name, want := range map[string]string{"DATABASE_STATEMENT_TIMEOUT": "60s", "DATABASE_LOCK_TIMEOUT": "30s",
		"DATABASE_IDLE_IN_TRANSACTION_TIMEOUT": "60s", "DATABASE_MAX_CONNS": "0"} {
		if got, gota := envValue(&cc, name), envValue(&ac, name); got != want || gota != want {
			t.Errorf("consumer %s=%q, api %q, want %q", name, got, gota, want)
		}
	}
	for _, name := range []string{"RATE_LIMIT", "MAX_WAITERS", "WRITE_KEYS", "ALLOWED_ORIGINS", "DOCUMENT_ACCESS", "TRUSTED_PROXIES", "MAX_INGEST_REQUESTS"} {
		if envVar(&cc, name) != nil {
			t.Errorf("consumer sets the api's %s", name)
		}
	}
	if envVar(&ac, "WRITE_KEYS") != nil || !strings.Contains(r.notes, "ingest: disabled") {
		t.Errorf("without write keys the ingest must be off and NOTES.txt must say so")
	}
	// No trust-model secrets configured: nothing of them in the pods; the
	// event-time window at the binary's defaults, on the consumer.
	for _, name := range []string{"IDENTITY_SECRET", "SERVER_WRITE_KEYS", "IDENTITY_JWT_KEYS", "IDENTITY_JWT_ISSUER", "IDENTITY_JWT_AUDIENCE"} {
		if envVar(&cc, name) != nil || envVar(&ac, name) != nil {
			t.Errorf("%s set although not configured", name)
		}
	}
	if envValue(&cc, "EVENT_TIME_PAST") != "24h" || envValue(&cc, "EVENT_TIME_FUTURE") != "5m" {
		t.Errorf("consumer EVENT_TIME_PAST=%q EVENT_TIME_FUTURE=%q, want 24h and 5m", envValue(&cc, "EVENT_TIME_PAST"), envValue(&cc, "EVENT_TIME_FUTURE"))
	}
	if ref := secretRef(&ac, "DATABASE_URL"); ref.Key != "DATABASE_URL" {
		t.Errorf("api DATABASE_URL from key %s, want the owner's without apiDatabaseURL", ref.Key)
	}
	for _, want := range []string{"the API connects as the owner", "userHash: off", "identity tokens: off"} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, r.notes)
		}
	}
	if ac.Lifecycle == nil || ac.Lifecycle.PreStop == nil || ac.Lifecycle.PreStop.Sleep == nil || ac.Lifecycle.PreStop.Sleep.Seconds != 5 {
		t.Errorf("api: want a 5 s preStop sleep")
	}
	sa, _ := r.find("ServiceAccount", fullname).(*corev1.ServiceAccount)
	if sa == nil || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount must not automount its token")
	}
	if s := r.secret(fullname); s == nil || len(s.Data) != 1 || string(s.Data["DATABASE_URL"]) != r.str("secrets.databaseURL") {
		t.Errorf("Secret %s: want exactly DATABASE_URL", fullname)
	}
	svc := r.find("Service", api).(*corev1.Service)
	if svc.Spec.Type != corev1.ServiceTypeClusterIP || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service %s: want ClusterIP 80 → http(8080), got %+v", api, svc.Spec.Ports)
	}
	for _, name := range []string{consumer, api} {
		p := r.find("PodDisruptionBudget", name).(*policyv1.PodDisruptionBudget)
		if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("PodDisruptionBudget %s: want maxUnavailable 1", name)
		}
	}
	j := r.job(t, migrate)
	if *j.Spec.BackoffLimit != 3 || *j.Spec.ActiveDeadlineSeconds != 300 {
		t.Errorf("Job: backoffLimit %d activeDeadlineSeconds %d", *j.Spec.BackoffLimit, *j.Spec.ActiveDeadlineSeconds)
	}
	if j.Spec.Template.Spec.ServiceAccountName != "" {
		t.Errorf("Job: serviceAccountName %q, want the namespace default", j.Spec.Template.Spec.ServiceAccountName)
	}
}

func checkExistingSecret(t *testing.T, r *release) {
	for _, name := range []string{consumer, api} {
		d := r.deployment(t, name)
		c := &d.Spec.Template.Spec.Containers[0]
		if got := envValue(c, "SETTINGS_FILE"); got != "/etc/prechat/settings/live-agent.json" {
			t.Errorf("%s: SETTINGS_FILE=%s", name, got)
		}
		if got := envValue(c, "KAFKA_TLS_CA_FILE"); got != "/etc/prechat/kafka-ca/ca.crt" || envValue(c, "KAFKA_TLS") != "true" {
			t.Errorf("%s: KAFKA_TLS_CA_FILE=%q KAFKA_TLS=%q", name, got, envValue(c, "KAFKA_TLS"))
		}
		var ca *corev1.Volume
		for i, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == "kafka-ca" {
				ca = &d.Spec.Template.Spec.Volumes[i]
			}
		}
		if ca == nil || ca.Secret == nil || ca.Secret.SecretName != "events-cluster-ca-cert" || ca.Secret.Items[0].Key != "ca.crt" || ca.Secret.Items[0].Path != "ca.crt" {
			t.Errorf("%s: Kafka CA volume %+v", name, ca)
		}
		if d.Spec.Template.Spec.ServiceAccountName != "prechat" {
			t.Errorf("%s: serviceAccountName %s, want the existing prechat", name, d.Spec.Template.Spec.ServiceAccountName)
		}
		if got := envValue(c, "KAFKA_SASL_MECHANISM"); got != "scram-sha-512" {
			t.Errorf("%s: KAFKA_SASL_MECHANISM=%s", name, got)
		}
	}
	a := &r.deployment(t, api).Spec.Template.Spec.Containers[0]
	if e := envVar(a, "WRITE_KEYS"); e == nil || e.ValueFrom.SecretKeyRef.Optional == nil || !*e.ValueFrom.SecretKeyRef.Optional {
		t.Errorf("api: WRITE_KEYS from an existing Secret must be optional (absent key: ingest off)")
	}
	if got := *r.deployment(t, consumer).Spec.Replicas; got != 6 {
		t.Errorf("consumer replicas %d, want 6", got)
	}
	// The api role's own key; identity keys optional; token keys from a Secret.
	cc := &r.deployment(t, consumer).Spec.Template.Spec.Containers[0]
	for c, want := range map[*corev1.Container]string{a: "api-database-url", cc: "database-url", &r.job(t, migrate).Spec.Template.Spec.Containers[0]: "database-url"} {
		if ref := secretRef(c, "DATABASE_URL"); ref.Name != "prechat-credentials" || ref.Key != want {
			t.Errorf("%s: DATABASE_URL from %s key %s, want prechat-credentials key %s", c.Name, ref.Name, ref.Key, want)
		}
	}
	for _, name := range []string{"IDENTITY_SECRET", "SERVER_WRITE_KEYS"} {
		if ref := secretRef(a, name); ref.Optional == nil || !*ref.Optional {
			t.Errorf("api: %s from an existing Secret must be optional", name)
		}
	}
	if got := envValue(cc, "IDENTITY_JWT_KEYS"); got != "/etc/prechat/identity/keys.pem" {
		t.Errorf("consumer: IDENTITY_JWT_KEYS=%q", got)
	}
	if !strings.Contains(r.notes, "key api-database-url") || !strings.Contains(r.notes, "Secret shop-identity-jwks (key keys.pem)") {
		t.Errorf("NOTES.txt does not say where the api role and the token keys come from:\n%s", r.notes)
	}
	j := r.job(t, migrate)
	if j.Spec.Template.Spec.ServiceAccountName != "prechat" {
		t.Errorf("Job: serviceAccountName %q, want the existing prechat", j.Spec.Template.Spec.ServiceAccountName)
	}
}

// checkIdentity: the api pods run as their own role, everyone else as the
// owner; the identity secrets, the server write keys and the token keys reach
// exactly the pods that read them.
func checkIdentity(t *testing.T, r *release) {
	a := &r.deployment(t, api).Spec.Template.Spec.Containers[0]
	c := &r.deployment(t, consumer).Spec.Template.Spec.Containers[0]
	j := &r.job(t, migrate).Spec.Template.Spec.Containers[0]
	for _, x := range []struct {
		c           *corev1.Container
		secret, key string
	}{{a, fullname, "API_DATABASE_URL"}, {c, fullname, "DATABASE_URL"}, {j, migrate, "DATABASE_URL"}} {
		if ref := secretRef(x.c, "DATABASE_URL"); ref.Name != x.secret || ref.Key != x.key {
			t.Errorf("DATABASE_URL from %s key %s, want %s key %s", ref.Name, ref.Key, x.secret, x.key)
		}
	}
	s := r.secret(fullname)
	for key, want := range map[string]string{
		"DATABASE_URL":      r.str("secrets.databaseURL"),
		"API_DATABASE_URL":  r.str("secrets.apiDatabaseURL"),
		"IDENTITY_SECRET":   "new-identity-secret-0123456789abcdef0123456789,old-identity-secret-0123456789abcdef0123456789",
		"SERVER_WRITE_KEYS": "wk-server-s3cr3t-1",
		"WRITE_KEYS":        "wk-browser-1",
	} {
		if got := string(s.Data[key]); got != want {
			t.Errorf("Secret %s: %s=%q, want %q", fullname, key, got, want)
		}
	}
	if m := r.secret(migrate); len(m.Data) != 1 || string(m.Data["DATABASE_URL"]) != r.str("secrets.databaseURL") {
		t.Errorf("Secret %s: want only the owner's DATABASE_URL, got keys %v", migrate, sortedKeys(m.Data))
	}
	for _, x := range []*corev1.Container{a, c} {
		if ref := secretRef(x, "IDENTITY_SECRET"); ref.Name != fullname || ref.Key != "IDENTITY_SECRET" {
			t.Errorf("%s: IDENTITY_SECRET not from the chart's Secret: %+v", x.Name, envVar(x, "IDENTITY_SECRET"))
		}
	}
	if envVar(a, "SERVER_WRITE_KEYS") == nil || envVar(c, "SERVER_WRITE_KEYS") != nil {
		t.Errorf("SERVER_WRITE_KEYS must reach the api only")
	}
	for name, want := range map[string]string{
		"IDENTITY_JWT_KEYS": "/etc/prechat/identity/jwks.json", "IDENTITY_JWT_ISSUER": "https://shop.example.com",
		"IDENTITY_JWT_AUDIENCE": "prechat", "EVENT_TIME_PAST": "12h", "EVENT_TIME_FUTURE": "2m",
	} {
		if got := envValue(c, name); got != want {
			t.Errorf("consumer %s=%q, want %q", name, got, want)
		}
		if envVar(a, name) != nil {
			t.Errorf("api sets the consumer's %s", name)
		}
	}
	for _, v := range r.deployment(t, consumer).Spec.Template.Spec.Volumes {
		if v.Name == "identity-jwt-keys" && (v.ConfigMap == nil || v.ConfigMap.Name != "shop-identity-jwks" || v.ConfigMap.Items[0].Key != "jwks.json") {
			t.Errorf("consumer: identity token keys volume %+v", v)
		}
	}
	for _, want := range []string{"its own role (Secret " + fullname + ", key API_DATABASE_URL)", "userHash: IDENTITY_SECRET from Secret " + fullname + " (key IDENTITY_SECRET).", "ConfigMap shop-identity-jwks (key jwks.json)"} {
		if !strings.Contains(r.notes, want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, r.notes)
		}
	}
}

func checkIngressHPA(t *testing.T, r *release) {
	h := r.find("HorizontalPodAutoscaler", api).(*autoscalingv2.HorizontalPodAutoscaler)
	if *h.Spec.MinReplicas != 3 || h.Spec.MaxReplicas != 12 || *h.Spec.Metrics[0].Resource.Target.AverageUtilization != 60 ||
		h.Spec.Metrics[0].Resource.Target.Type != autoscalingv2.UtilizationMetricType {
		t.Errorf("HPA: min %d max %d target %+v", *h.Spec.MinReplicas, h.Spec.MaxReplicas, h.Spec.Metrics[0].Resource.Target)
	}
	ing := r.find("Ingress", api).(*networkingv1.Ingress)
	if *ing.Spec.IngressClassName != "nginx" || ing.Spec.Rules[0].Host != "prechat.example.com" ||
		ing.Spec.Rules[0].HTTP.Paths[0].Path != "/v1" || ing.Spec.TLS[0].SecretName != "prechat-example-com-tls" ||
		ing.Annotations["cert-manager.io/cluster-issuer"] != "letsencrypt" {
		t.Errorf("Ingress: %+v", ing.Spec)
	}
	c := &r.deployment(t, api).Spec.Template.Spec.Containers[0]
	for name, want := range map[string]string{
		"ALLOWED_ORIGINS":  "https://www.example.com,https://shop.example.com",
		"CLIENT_IP_HEADER": "X-Forwarded-For",
		"RATE_LIMIT":       "2.5",
		"GOMEMLIMIT":       "966367641", // 90% of 1Gi
	} {
		if got := envValue(c, name); got != want {
			t.Errorf("api %s=%q, want %q", name, got, want)
		}
	}
	s := r.secret(fullname)
	if got := string(s.Data["WRITE_KEYS"]); got != "wk-live-0123456789,wk-live-abcdefghij" {
		t.Errorf("Secret WRITE_KEYS=%q", got)
	}
	cm := r.find("ConfigMap", fullname+"-settings").(*corev1.ConfigMap)
	if got := strings.TrimSpace(cm.Data["settings.json"]); got != r.str("settings") {
		t.Errorf("settings given as a JSON string must be used verbatim, got %s", got)
	}
	if !strings.Contains(r.notes, "https://prechat.example.com/v1/prechat.js") || !strings.Contains(r.notes, "autoscaled") {
		t.Errorf("NOTES.txt: want the ingress URL and the autoscaling:\n%s", r.notes)
	}
}

func checkServiceMonitor(t *testing.T, r *release) {
	u := r.find("ServiceMonitor", fullname).(*unstructured.Unstructured)
	if u.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor: labels %v", u.GetLabels())
	}
	eps, _, _ := unstructured.NestedSlice(u.Object, "spec", "endpoints")
	if len(eps) != 1 || eps[0].(map[string]any)["interval"] != "15s" {
		t.Errorf("ServiceMonitor: endpoints %v", eps)
	}
	ptl, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "podTargetLabels")
	if !slices.Contains(ptl, "app.kubernetes.io/component") {
		t.Errorf("ServiceMonitor: podTargetLabels %v, want the component (role)", ptl)
	}
	for _, name := range []string{api + "-metrics", consumer + "-metrics"} {
		s := r.find("Service", name).(*corev1.Service)
		if s.Spec.Ports[0].Port != 9090 || s.Spec.Ports[0].TargetPort.String() != "admin" {
			t.Errorf("Service %s: ports %+v", name, s.Spec.Ports)
		}
	}
}

func checkNetworkPolicy(t *testing.T, r *release) {
	np := r.find("NetworkPolicy", api).(*networkingv1.NetworkPolicy)
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("NetworkPolicy %s: policyTypes %v", api, np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != 3 || np.Spec.Ingress[0].Ports[0].Port.String() != "http" ||
		np.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "ingress-nginx" ||
		np.Spec.Ingress[1].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
		t.Errorf("NetworkPolicy %s: ingress %+v", api, np.Spec.Ingress)
	}
	// DNS, Kafka, Postgres.
	if len(np.Spec.Egress) != 3 || np.Spec.Egress[0].Ports[0].Port.IntValue() != 53 || np.Spec.Egress[2].To[0].IPBlock.CIDR != "10.20.0.0/16" {
		t.Errorf("NetworkPolicy %s: egress %+v", api, np.Spec.Egress)
	}
	cnp := r.find("NetworkPolicy", consumer).(*networkingv1.NetworkPolicy)
	if len(cnp.Spec.Ingress) != 2 || cnp.Spec.Ingress[0].Ports[0].Port.String() != "admin" {
		t.Errorf("NetworkPolicy %s: the consumer only accepts the admin port (and the test pod), got %+v", consumer, cnp.Spec.Ingress)
	}
	// The "helm test" pod reaches what it checks: each role's admin port,
	// and the API's http port.
	for _, x := range []struct {
		np    *networkingv1.NetworkPolicy
		ports []string
	}{{np, []string{"http", "admin"}}, {cnp, []string{"admin"}}} {
		rule := x.np.Spec.Ingress[len(x.np.Spec.Ingress)-1]
		var ports []string
		for _, p := range rule.Ports {
			ports = append(ports, p.Port.String())
		}
		if len(rule.From) != 1 || rule.From[0].PodSelector == nil || rule.From[0].PodSelector.MatchLabels["app.kubernetes.io/component"] != "test" ||
			!slices.Equal(ports, x.ports) {
			t.Errorf("NetworkPolicy %s: the test pod's rule %+v, want ports %v from the test pod", x.np.Name, rule, x.ports)
		}
	}
}

func checkConsumerOnly(t *testing.T, r *release) {
	d := r.deployment(t, consumer)
	if *d.Spec.Replicas != 4 {
		t.Errorf("replicas %d, want 4", *d.Spec.Replicas)
	}
	tsc := d.Spec.Template.Spec.TopologySpreadConstraints
	if len(tsc) != 1 || tsc[0].TopologyKey != "topology.kubernetes.io/zone" || tsc[0].LabelSelector == nil ||
		tsc[0].LabelSelector.MatchLabels["app.kubernetes.io/component"] != "consumer" {
		t.Errorf("topologySpreadConstraints %+v: want the zone spread with the consumer's selector filled in", tsc)
	}
	if strings.Contains(r.notes, "port-forward svc/") {
		t.Errorf("NOTES.txt: mentions the API although it is disabled:\n%s", r.notes)
	}
}

func checkAPIOnly(t *testing.T, r *release) {
	d := r.deployment(t, api)
	c := &d.Spec.Template.Spec.Containers[0]
	if c.Lifecycle != nil {
		t.Errorf("preStopSleepSeconds 0 must leave out the preStop hook")
	}
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas %d, want 3", *d.Spec.Replicas)
	}
	p := r.find("PodDisruptionBudget", api).(*policyv1.PodDisruptionBudget)
	if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() != 2 || p.Spec.MaxUnavailable != nil {
		t.Errorf("PodDisruptionBudget: want minAvailable 2 only, got %+v", p.Spec)
	}
	if strings.Contains(r.notes, "kafka-consumer-groups") {
		t.Errorf("NOTES.txt: mentions the consumer although it is disabled")
	}
	if e := envVar(c, "WRITE_KEYS"); e == nil || e.ValueFrom.SecretKeyRef.Optional != nil {
		t.Errorf("WRITE_KEYS from the chart's Secret must not be optional")
	}
}

// TestChecksumRollsPods: changing the settings or the chart-created Secret
// changes the pods' checksum annotations (so Deployments roll), and
// nothing else does.
func TestChecksumRollsPods(t *testing.T) {
	base := readValues(t, valueSetFile("default"))
	annotations := func(vals map[string]any) map[string]map[string]string {
		r := mustRender(t, vals)
		out := map[string]map[string]string{}
		for _, name := range []string{consumer, api} {
			out[name] = r.deployment(t, name).Spec.Template.Annotations
		}
		return out
	}
	before := annotations(base)
	settings := annotations(with(t, base, "settings: {enableLogging: true}"))
	secret := annotations(with(t, base, "secrets: {databaseURL: 'postgres://prechat:rotated@postgres:5432/prechat'}"))
	apiRole := annotations(with(t, base, "secrets: {apiDatabaseURL: 'postgres://prechat_api:pw@postgres:5432/prechat'}"))
	identity := annotations(with(t, base, "secrets: {identitySecrets: [rotated-identity-secret-0123456789abcdef0123]}"))
	replicas := annotations(with(t, base, "consumer: {replicaCount: 3}"))
	for _, name := range []string{consumer, api} {
		if before[name]["checksum/settings"] == settings[name]["checksum/settings"] {
			t.Errorf("%s: checksum/settings unchanged when the settings change", name)
		}
		if before[name]["checksum/secret"] != settings[name]["checksum/secret"] {
			t.Errorf("%s: checksum/secret changed with the settings", name)
		}
		if before[name]["checksum/secret"] == secret[name]["checksum/secret"] {
			t.Errorf("%s: checksum/secret unchanged when DATABASE_URL changes", name)
		}
		if before[name]["checksum/secret"] == apiRole[name]["checksum/secret"] || before[name]["checksum/secret"] == identity[name]["checksum/secret"] {
			t.Errorf("%s: checksum/secret unchanged when the api role's URL or the identity secrets change", name)
		}
		if before[name]["checksum/settings"] != secret[name]["checksum/settings"] {
			t.Errorf("%s: checksum/settings changed with the secret", name)
		}
		if fmt.Sprint(before[name]) != fmt.Sprint(replicas[name]) {
			t.Errorf("%s: annotations changed with the replica count", name)
		}
	}
	// Same values, same checksums: renders are deterministic.
	if again := annotations(base); fmt.Sprint(again) != fmt.Sprint(before) {
		t.Errorf("checksums differ between two renders of the same values")
	}
}

// TestNotesNeverPrintSecrets sets every secret value to a marker and
// checks NOTES.txt (and every non-Secret manifest) for them.
func TestNotesNeverPrintSecrets(t *testing.T) {
	vals := with(t, readValues(t, valueSetFile("default")), `
secrets:
  databaseURL: postgres://prechat:MARKER-DB-PASSWORD@postgres:5432/prechat
  writeKeys: [MARKER-WRITE-KEY-1, MARKER-WRITE-KEY-2]
  kafkaSASLPassword: MARKER-SASL-PASSWORD
  apiDatabaseURL: postgres://prechat_api:MARKER-API-DB-PASSWORD@postgres:5432/prechat
  identitySecrets: [MARKER-IDENTITY-SECRET-0123456789abcdef0123456789]
  serverWriteKeys: [MARKER-SERVER-WRITE-KEY]
kafka:
  sasl: {mechanism: plain, username: prechat}
api:
  ingress: {enabled: true}
metrics:
  serviceMonitor: {enabled: true}
`)
	r := mustRender(t, vals)
	if strings.Contains(r.notes, "MARKER") {
		t.Errorf("NOTES.txt prints a secret:\n%s", r.notes)
	}
	checkRelease(t, r)
	s := r.secret(fullname)
	if string(s.Data["KAFKA_SASL_PASSWORD"]) != "MARKER-SASL-PASSWORD" || string(s.Data["WRITE_KEYS"]) != "MARKER-WRITE-KEY-1,MARKER-WRITE-KEY-2" {
		t.Errorf("Secret data: %v", s.Data)
	}
	for _, name := range []string{consumer, api} {
		c := &r.deployment(t, name).Spec.Template.Spec.Containers[0]
		if envVar(c, "KAFKA_SASL_PASSWORD") == nil {
			t.Errorf("%s: no KAFKA_SASL_PASSWORD", name)
		}
	}
}

// TestNameOverrides: fullnameOverride and a release name that contains the
// chart name give the resource names public charts give.
func TestNameOverrides(t *testing.T) {
	r := mustRender(t, with(t, readValues(t, valueSetFile("default")), "fullnameOverride: chat"))
	if r.find("Deployment", "chat-consumer") == nil || r.find("Job", "chat-migrate") == nil {
		t.Errorf("fullnameOverride: got %v", r.kinds())
	}
	r.deployment(t, "chat-api")
}

// TestSettingsFromSetFile: the chart README's install command, where
// --set-file passes the settings file as a string and the ConfigMap must
// carry it byte for byte.
func TestSettingsFromSetFile(t *testing.T) {
	file, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := mustRender(t, map[string]any{
		"kafka":    map[string]any{"brokers": []any{"kafka:9092"}},
		"secrets":  map[string]any{"existingSecret": "prechat-credentials"},
		"settings": string(file),
	})
	checkRelease(t, r)
	cm := r.find("ConfigMap", fullname+"-settings").(*corev1.ConfigMap)
	if got := cm.Data["settings.json"]; strings.TrimSpace(got) != strings.TrimSpace(string(file)) {
		t.Errorf("ConfigMap settings.json differs from the file:\n%s", got)
	}
}
