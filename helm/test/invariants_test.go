package helmtest_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// secretEnv are the variables that must only ever come from a Secret.
var secretEnv = []string{"DATABASE_URL", "WRITE_KEYS", "KAFKA_SASL_PASSWORD", "IDENTITY_SECRET", "SERVER_WRITE_KEYS"}

// consumerOnlyEnv are read by the consumer alone (identity tokens, the
// event-time window); apiOnlyEnv by the api alone.
var (
	consumerOnlyEnv = []string{"IDENTITY_JWT_KEYS", "IDENTITY_JWT_ISSUER", "IDENTITY_JWT_AUDIENCE", "EVENT_TIME_PAST", "EVENT_TIME_FUTURE"}
	apiOnlyEnv      = []string{"WRITE_KEYS", "SERVER_WRITE_KEYS"}
)

// listLen is the length of a list value (0 when unset).
func (r *release) listLen(path string) int {
	l, _ := r.value(path).([]any)
	return len(l)
}

// apiDatabaseURLKey is the Secret key the api pods' DATABASE_URL must come
// from: the api role's when configured, else the owner's.
func (r *release) apiDatabaseURLKey() string {
	switch {
	case r.str("secrets.existingSecret") != "" && r.str("secrets.keys.apiDatabaseURL") != "":
		return r.str("secrets.keys.apiDatabaseURL")
	case r.str("secrets.existingSecret") == "" && r.str("secrets.apiDatabaseURL") != "":
		if k := r.str("secrets.keys.apiDatabaseURL"); k != "" {
			return k
		}
		return "API_DATABASE_URL"
	}
	return r.str("secrets.keys.databaseURL")
}

// checkOptionalRef: a key of an existing Secret is optional (absent: the
// feature is off), a key of the chart's own Secret is not.
func checkOptionalRef(t *testing.T, r *release, what string, c *corev1.Container, name string) {
	t.Helper()
	e := envVar(c, name)
	if e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		return // reported by checkSecretRef
	}
	optional := e.ValueFrom.SecretKeyRef.Optional != nil && *e.ValueFrom.SecretKeyRef.Optional
	if want := r.str("secrets.existingSecret") != ""; optional != want {
		t.Errorf("%s: %s optional=%v, want %v (optional exactly in an existing Secret)", what, name, optional, want)
	}
}

// checkRelease asserts what must hold for every value set.
func checkRelease(t *testing.T, r *release) {
	t.Helper()
	checkLabels(t, r)
	for _, o := range r.all("Deployment") {
		checkDeployment(t, r, o.obj.(*appsv1.Deployment))
	}
	checkMigrations(t, r)
	checkSecretsStaySecret(t, r)
	checkSelectorsAndPorts(t, r)
	checkNotes(t, r)
}

// checkLabels: every object carries the recommended labels.
func checkLabels(t *testing.T, r *release) {
	t.Helper()
	want := map[string]string{
		"app.kubernetes.io/name":       "prechat",
		"app.kubernetes.io/instance":   releaseName,
		"app.kubernetes.io/managed-by": "Helm",
		"app.kubernetes.io/version":    "0.1.0",
		"helm.sh/chart":                "prechat-0.1.0",
	}
	for _, o := range r.objects {
		got := o.meta.GetLabels()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: label %s = %q, want %q", o, k, got[k], v)
			}
		}
		if ns := o.meta.GetNamespace(); ns != namespace {
			t.Errorf("%s: namespace %q, want %q", o, ns, namespace)
		}
	}
}

// checkPodSecurity: the restricted Pod Security Standard, on the pod and
// on every container.
func checkPodSecurity(t *testing.T, what string, spec *corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil {
		t.Fatalf("%s: no pod securityContext", what)
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod runAsNonRoot is not true", what)
	}
	if psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("%s: pod runAsUser is not 65532", what)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile is not RuntimeDefault", what)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken is not false", what)
	}
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		t.Errorf("%s: enableServiceLinks is not false (service env vars could shadow KAFKA_*)", what)
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s/%s: no container securityContext", what, c.Name)
			continue
		}
		switch {
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("%s/%s: runAsNonRoot is not true", what, c.Name)
		case sc.RunAsUser == nil || *sc.RunAsUser != 65532:
			t.Errorf("%s/%s: runAsUser is not 65532", what, c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s/%s: readOnlyRootFilesystem is not true", what, c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s/%s: allowPrivilegeEscalation is not false", what, c.Name)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("%s/%s: privileged", what, c.Name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s/%s: capabilities are not drop [ALL]", what, c.Name)
		case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
			t.Errorf("%s/%s: seccompProfile is not RuntimeDefault", what, c.Name)
		}
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s/%s: no memory request and limit", what, c.Name)
		}
	}
}

// checkSecretRef: the variable comes from a Secret key, never a literal,
// and the Secret is either rendered with that key or the existing one.
func checkSecretRef(t *testing.T, r *release, what string, c *corev1.Container, name, wantSecret, wantKey string) {
	t.Helper()
	e := envVar(c, name)
	if e == nil {
		t.Errorf("%s: %s not set", what, name)
		return
	}
	if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Errorf("%s: %s is not a secretKeyRef", what, name)
		return
	}
	ref := e.ValueFrom.SecretKeyRef
	if ref.Name != wantSecret || ref.Key != wantKey {
		t.Errorf("%s: %s from secret %s key %s, want %s key %s", what, name, ref.Name, ref.Key, wantSecret, wantKey)
	}
	if r.str("secrets.existingSecret") == "" {
		s := r.secret(ref.Name)
		if s == nil {
			t.Errorf("%s: %s refers to secret %s, which the chart does not render", what, name, ref.Name)
		} else if _, ok := s.Data[ref.Key]; !ok {
			t.Errorf("%s: %s refers to key %s missing from secret %s", what, name, ref.Key, ref.Name)
		}
	}
}

// checkDeployment: probes, env wiring, settings mount, secrets, grace
// period, runtime limits and scheduling of the consumer or API.
func checkDeployment(t *testing.T, r *release, d *appsv1.Deployment) {
	t.Helper()
	what := "Deployment/" + d.Name
	role := d.Labels["app.kubernetes.io/component"]
	if role != "consumer" && role != "api" {
		t.Fatalf("%s: component label %q", what, role)
	}
	if d.Name != fullname+"-"+role {
		t.Errorf("%s: want name %s-%s", what, fullname, role)
	}
	spec := &d.Spec.Template.Spec
	c := container(t, what, spec)

	// Selector selects the pod template.
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("%s: selector %v does not match the pod labels %v", what, d.Spec.Selector, d.Spec.Template.Labels)
	}

	// Image, command, role.
	if want := r.str("image.repository") + ":" + r.str("image.tag"); r.str("image.tag") != "" && c.Image != want {
		t.Errorf("%s: image %s, want %s", what, c.Image, want)
	}
	if !strings.HasPrefix(c.Image, r.str("image.repository")) {
		t.Errorf("%s: image %s is not from %s", what, c.Image, r.str("image.repository"))
	}
	if len(c.Command) != 0 || !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("%s: command %v args %v, want the image's entrypoint with [serve]", what, c.Command, c.Args)
	}
	if got := envValue(c, "ROLES"); got != role {
		t.Errorf("%s: ROLES=%q, want %q", what, got, role)
	}

	// Ports and probes: all probes on the admin port, ADMIN_ADDR agrees.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	admin := int32(r.number("ports.admin"))
	if ports["admin"] != admin || envValue(c, "ADMIN_ADDR") != fmt.Sprintf(":%d", admin) {
		t.Errorf("%s: admin port %d, ADMIN_ADDR %q, want %d", what, ports["admin"], envValue(c, "ADMIN_ADDR"), admin)
	}
	if role == "api" {
		http := int32(r.number("ports.http"))
		if ports["http"] != http || envValue(c, "HTTP_ADDR") != fmt.Sprintf(":%d", http) {
			t.Errorf("%s: http port %d, HTTP_ADDR %q, want %d", what, ports["http"], envValue(c, "HTTP_ADDR"), http)
		}
	} else if _, ok := ports["http"]; ok || envVar(c, "HTTP_ADDR") != nil {
		t.Errorf("%s: the consumer exposes an http port", what)
	}
	for name, p := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{
		"liveness":  {c.LivenessProbe, "/healthz"},
		"readiness": {c.ReadinessProbe, "/readyz"},
		"startup":   {c.StartupProbe, "/healthz"},
	} {
		switch {
		case p.probe == nil || p.probe.HTTPGet == nil:
			t.Errorf("%s: no %s httpGet probe", what, name)
		case p.probe.HTTPGet.Path != p.path:
			t.Errorf("%s: %s probe path %s, want %s", what, name, p.probe.HTTPGet.Path, p.path)
		case p.probe.HTTPGet.Port.String() != "admin":
			t.Errorf("%s: %s probe on port %s, want admin", what, name, p.probe.HTTPGet.Port.String())
		}
	}

	// Settings: SETTINGS_FILE is the file of the read-only settings volume.
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == "settings" {
			mount = &c.VolumeMounts[i]
		}
	}
	var vol *corev1.Volume
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == "settings" {
			vol = &spec.Volumes[i]
		}
	}
	switch {
	case mount == nil || vol == nil || vol.ConfigMap == nil || len(vol.ConfigMap.Items) != 1:
		t.Errorf("%s: no settings ConfigMap volume with one item mounted", what)
	case !mount.ReadOnly:
		t.Errorf("%s: settings mounted read-write", what)
	case envValue(c, "SETTINGS_FILE") != mount.MountPath+"/"+vol.ConfigMap.Items[0].Path:
		t.Errorf("%s: SETTINGS_FILE=%q, but the settings are mounted at %s/%s", what, envValue(c, "SETTINGS_FILE"), mount.MountPath, vol.ConfigMap.Items[0].Path)
	default:
		if existing := r.str("existingSettingsConfigMap.name"); existing != "" {
			if vol.ConfigMap.Name != existing || vol.ConfigMap.Items[0].Key != r.str("existingSettingsConfigMap.key") {
				t.Errorf("%s: settings from %s/%s, want the existing ConfigMap %s/%s", what, vol.ConfigMap.Name, vol.ConfigMap.Items[0].Key, existing, r.str("existingSettingsConfigMap.key"))
			}
		} else {
			cm, _ := r.find("ConfigMap", vol.ConfigMap.Name).(*corev1.ConfigMap)
			if cm == nil {
				t.Errorf("%s: settings ConfigMap %s is not rendered", what, vol.ConfigMap.Name)
			} else if data := cm.Data[vol.ConfigMap.Items[0].Key]; !json.Valid([]byte(data)) {
				t.Errorf("ConfigMap/%s: %s is not JSON: %s", cm.Name, vol.ConfigMap.Items[0].Key, data)
			}
		}
	}
	if mount != nil && strings.HasPrefix(mount.MountPath, "/etc/prechat/kafka-ca") {
		t.Errorf("%s: mounts overlap", what)
	}

	// Secrets only through secretKeyRef.
	secretName := r.str("secrets.existingSecret")
	if secretName == "" {
		secretName = fullname
	}
	dbKey := r.str("secrets.keys.databaseURL")
	if role == "api" {
		dbKey = r.apiDatabaseURLKey()
	}
	checkSecretRef(t, r, what, c, "DATABASE_URL", secretName, dbKey)
	if r.str("kafka.sasl.mechanism") != "" {
		checkSecretRef(t, r, what, c, "KAFKA_SASL_PASSWORD", secretName, r.str("secrets.keys.kafkaSASLPassword"))
		if envValue(c, "KAFKA_SASL_USERNAME") != r.str("kafka.sasl.username") || envValue(c, "KAFKA_SASL_MECHANISM") != r.str("kafka.sasl.mechanism") {
			t.Errorf("%s: SASL mechanism and username not wired", what)
		}
	} else if envVar(c, "KAFKA_SASL_PASSWORD") != nil {
		t.Errorf("%s: KAFKA_SASL_PASSWORD without a mechanism", what)
	}
	writeKeys := envVar(c, "WRITE_KEYS")
	switch {
	case role == "api" && (r.str("secrets.existingSecret") != "" || r.value("secrets.writeKeys") != nil && len(r.value("secrets.writeKeys").([]any)) > 0):
		checkSecretRef(t, r, what, c, "WRITE_KEYS", secretName, r.str("secrets.keys.writeKeys"))
	case writeKeys != nil:
		t.Errorf("%s: WRITE_KEYS set without write keys (or on the consumer)", what)
	}
	checkIdentityEnv(t, r, what, role, secretName, &d.Spec.Template.Spec, c)
	for _, e := range c.Env {
		if slices.Contains(secretEnv, e.Name) && e.Value != "" {
			t.Errorf("%s: %s has a literal value", what, e.Name)
		}
	}
	if brokers := envValue(c, "KAFKA_BROKERS"); brokers == "" || brokers != joinValues(r.value("kafka.brokers")) {
		t.Errorf("%s: KAFKA_BROKERS=%q", what, brokers)
	}
	if envValue(c, "KAFKA_TOPIC") != r.str("kafka.topic") || envValue(c, "KAFKA_GROUP") != r.str("kafka.group") {
		t.Errorf("%s: KAFKA_TOPIC/KAFKA_GROUP not wired", what)
	}

	// Checksums roll the pods when settings or the chart's Secret change.
	ann := d.Spec.Template.Annotations
	if len(ann["checksum/settings"]) != 64 {
		t.Errorf("%s: checksum/settings annotation %q", what, ann["checksum/settings"])
	}
	if _, ok := ann["checksum/secret"]; ok != (r.str("secrets.existingSecret") == "") {
		t.Errorf("%s: checksum/secret present=%v, want it exactly when the chart owns the Secret", what, ok)
	}

	// The grace period outlasts SHUTDOWN_GRACE (plus the preStop sleep).
	grace, err := time.ParseDuration(envValue(c, "SHUTDOWN_GRACE"))
	if err != nil {
		t.Errorf("%s: SHUTDOWN_GRACE: %v", what, err)
	}
	need := grace
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Exec != nil {
			t.Errorf("%s: preStop must be a sleep action (the image has no shell)", what)
		} else {
			need += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
	}
	if tg := spec.TerminationGracePeriodSeconds; tg == nil || time.Duration(*tg)*time.Second <= need {
		t.Errorf("%s: terminationGracePeriodSeconds %v is not longer than SHUTDOWN_GRACE (+ preStop) %s", what, tg, need)
	}

	// GOMAXPROCS and GOMEMLIMIT follow the limits.
	if cpu := c.Resources.Limits.Cpu(); !cpu.IsZero() && r.boolean("goRuntime.maxProcsFromLimits") {
		e := envVar(c, "GOMAXPROCS")
		if e == nil || e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil ||
			e.ValueFrom.ResourceFieldRef.Resource != "limits.cpu" || e.ValueFrom.ResourceFieldRef.ContainerName != c.Name {
			t.Errorf("%s: GOMAXPROCS is not a resourceFieldRef to limits.cpu", what)
		}
	}
	checkGoMemLimit(t, r, what, c)

	// Replicas, or the HPA's.
	if role == "api" && r.boolean("api.autoscaling.enabled") || role == "consumer" && r.boolean("keda.enabled") {
		if d.Spec.Replicas != nil {
			t.Errorf("%s: replicas set although the HPA (or KEDA) owns them", what)
		}
	} else if d.Spec.Replicas == nil || float64(*d.Spec.Replicas) != r.number(role+".replicaCount") {
		t.Errorf("%s: replicas %v, want %v", what, d.Spec.Replicas, r.number(role+".replicaCount"))
	}

	// Spread: anti-affinity or topology spread on this role's pods.
	spread := len(spec.TopologySpreadConstraints) > 0
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, term := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			s, err := metav1.LabelSelectorAsSelector(term.PodAffinityTerm.LabelSelector)
			if err == nil && s.Matches(labels.Set(d.Spec.Template.Labels)) && term.PodAffinityTerm.TopologyKey != "" {
				spread = true
			}
		}
	}
	for _, tsc := range spec.TopologySpreadConstraints {
		s, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if err != nil || !s.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: topology spread constraint does not select its own pods", what)
		}
	}
	if !spread {
		t.Errorf("%s: no pod anti-affinity nor topology spread", what)
	}

	if spec.ServiceAccountName == "" {
		t.Errorf("%s: no serviceAccountName", what)
	}
	checkPodSecurity(t, what, spec)
}

// checkIdentityEnv: IDENTITY_SECRET (consumer and api) and SERVER_WRITE_KEYS
// (api) from the Secret exactly when configured; identity token keys
// mounted read-only, and the event-time window, on the consumer only.
func checkIdentityEnv(t *testing.T, r *release, what, role, secretName string, spec *corev1.PodSpec, c *corev1.Container) {
	t.Helper()
	existing := r.str("secrets.existingSecret") != ""
	if existing || r.listLen("secrets.identitySecrets") > 0 {
		checkSecretRef(t, r, what, c, "IDENTITY_SECRET", secretName, r.str("secrets.keys.identitySecret"))
		checkOptionalRef(t, r, what, c, "IDENTITY_SECRET")
	} else if envVar(c, "IDENTITY_SECRET") != nil {
		t.Errorf("%s: IDENTITY_SECRET set without identity secrets", what)
	}
	if role == "api" && (existing || r.listLen("secrets.serverWriteKeys") > 0) {
		checkSecretRef(t, r, what, c, "SERVER_WRITE_KEYS", secretName, r.str("secrets.keys.serverWriteKeys"))
		checkOptionalRef(t, r, what, c, "SERVER_WRITE_KEYS")
	} else if envVar(c, "SERVER_WRITE_KEYS") != nil {
		t.Errorf("%s: SERVER_WRITE_KEYS set without server write keys (or on the consumer)", what)
	}
	other := map[string][]string{"api": consumerOnlyEnv, "consumer": apiOnlyEnv}[role]
	for _, name := range other {
		if envVar(c, name) != nil {
			t.Errorf("%s: sets %s, which only the other role reads", what, name)
		}
	}

	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if m.Name == "identity-jwt-keys" {
			mount = &c.VolumeMounts[i]
		}
	}
	var vol *corev1.Volume
	for i, v := range spec.Volumes {
		if v.Name == "identity-jwt-keys" {
			vol = &spec.Volumes[i]
		}
	}
	cm, secret, key := r.str("identity.jwtKeys.configMap"), r.str("identity.jwtKeys.secret"), r.str("identity.jwtKeys.key")
	if role != "consumer" || cm == "" && secret == "" {
		if mount != nil || vol != nil || envVar(c, "IDENTITY_JWT_KEYS") != nil {
			t.Errorf("%s: identity token keys mounted without identity.jwtKeys (or on the api)", what)
		}
	} else {
		var items []corev1.KeyToPath
		var from string
		switch {
		case vol == nil:
		case vol.ConfigMap != nil:
			items, from = vol.ConfigMap.Items, "configmap/"+vol.ConfigMap.Name
		case vol.Secret != nil:
			items, from = vol.Secret.Items, "secret/"+vol.Secret.SecretName
		}
		want := "configmap/" + cm
		if cm == "" {
			want = "secret/" + secret
		}
		switch {
		case mount == nil || vol == nil || len(items) != 1:
			t.Errorf("%s: no identity token keys volume with one item mounted", what)
		case !mount.ReadOnly:
			t.Errorf("%s: identity token keys mounted read-write", what)
		case from != want || items[0].Key != key:
			t.Errorf("%s: identity token keys from %s key %s, want %s key %s", what, from, items[0].Key, want, key)
		case envValue(c, "IDENTITY_JWT_KEYS") != mount.MountPath+"/"+items[0].Path:
			t.Errorf("%s: IDENTITY_JWT_KEYS=%q, but the keys are mounted at %s/%s", what, envValue(c, "IDENTITY_JWT_KEYS"), mount.MountPath, items[0].Path)
		}
	}
	if role == "consumer" {
		for name, path := range map[string]string{"IDENTITY_JWT_ISSUER": "identity.jwtIssuer", "IDENTITY_JWT_AUDIENCE": "identity.jwtAudience", "EVENT_TIME_PAST": "config.eventTimePast", "EVENT_TIME_FUTURE": "config.eventTimeFuture"} {
			if got, want := envValue(c, name), r.str(path); got != want || want == "" && envVar(c, name) != nil {
				t.Errorf("%s: %s=%q, want %q (%s)", what, name, got, want, path)
			}
		}
	}
}

func checkGoMemLimit(t *testing.T, r *release, what string, c *corev1.Container) {
	t.Helper()
	mem := c.Resources.Limits.Memory()
	got := envValue(c, "GOMEMLIMIT")
	if mem.IsZero() {
		if envVar(c, "GOMEMLIMIT") != nil {
			t.Errorf("%s: GOMEMLIMIT without a memory limit", what)
		}
		return
	}
	want := int64(math.Floor(float64(mem.Value()) * r.number("goRuntime.memLimitRatio")))
	n, err := strconv.ParseInt(got, 10, 64)
	if err != nil || n != want {
		t.Errorf("%s: GOMEMLIMIT=%q, want %d (%v of limits.memory %s)", what, got, want, r.number("goRuntime.memLimitRatio"), mem)
	}
}

// checkMigrations: the migration hook Job and the Secret it reads.
func checkMigrations(t *testing.T, r *release) {
	t.Helper()
	name := fullname + "-migrate"
	if !r.boolean("migrations.enabled") {
		if r.find("Job", name) != nil {
			t.Errorf("migration Job rendered although disabled")
		}
		return
	}
	j := r.job(t, name)
	what := "Job/" + name
	ann := j.Annotations
	if ann["helm.sh/hook"] != "pre-install,pre-upgrade" {
		t.Errorf("%s: helm.sh/hook %q", what, ann["helm.sh/hook"])
	}
	if ann["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
		t.Errorf("%s: helm.sh/hook-delete-policy %q", what, ann["helm.sh/hook-delete-policy"])
	}
	jobWeight, err := strconv.Atoi(ann["helm.sh/hook-weight"])
	if err != nil {
		t.Errorf("%s: helm.sh/hook-weight %q", what, ann["helm.sh/hook-weight"])
	}
	if j.Spec.BackoffLimit == nil || float64(*j.Spec.BackoffLimit) != r.number("migrations.backoffLimit") {
		t.Errorf("%s: backoffLimit %v", what, j.Spec.BackoffLimit)
	}
	if j.Spec.ActiveDeadlineSeconds == nil || *j.Spec.ActiveDeadlineSeconds <= 0 {
		t.Errorf("%s: no activeDeadlineSeconds", what)
	}
	spec := &j.Spec.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("%s: restartPolicy %s", what, spec.RestartPolicy)
	}
	c := container(t, what, spec)
	if len(c.Command) != 0 || !slices.Equal(c.Args, []string{"migrate"}) {
		t.Errorf("%s: command %v args %v, want [migrate]", what, c.Command, c.Args)
	}
	for _, name := range append([]string{"ROLES", "WRITE_KEYS", "KAFKA_SASL_PASSWORD", "IDENTITY_SECRET", "SERVER_WRITE_KEYS"}, consumerOnlyEnv...) {
		if envVar(c, name) != nil {
			t.Errorf("%s: the migration gets more than it needs: %s", what, name)
		}
	}
	if want := 1 + r.listLen("extraVolumes"); len(spec.Volumes) != want {
		t.Errorf("%s: %d volumes, want only its /tmp and extraVolumes (%d)", what, len(spec.Volumes), want)
	}
	checkPodSecurity(t, what, spec)
	checkGoMemLimit(t, r, what, c)
	// A pre-install hook runs before the release's own resources exist.
	if r.boolean("serviceAccount.create") && spec.ServiceAccountName == fullname {
		t.Errorf("%s: uses the chart's ServiceAccount, which does not exist yet at pre-install", what)
	}
	if existing := r.str("secrets.existingSecret"); existing != "" {
		checkSecretRef(t, r, what, c, "DATABASE_URL", existing, r.str("secrets.keys.databaseURL"))
		return
	}
	checkSecretRef(t, r, what, c, "DATABASE_URL", name, r.str("secrets.keys.databaseURL"))
	s := r.secret(name)
	if s == nil {
		return
	}
	if s.Annotations["helm.sh/hook"] != "pre-install,pre-upgrade" {
		t.Errorf("Secret/%s: not a pre-install,pre-upgrade hook: %v", name, s.Annotations)
	}
	if w, err := strconv.Atoi(s.Annotations["helm.sh/hook-weight"]); err != nil || w >= jobWeight {
		t.Errorf("Secret/%s: hook-weight %q must be below the Job's %d", name, s.Annotations["helm.sh/hook-weight"], jobWeight)
	}
	if !strings.Contains(s.Annotations["helm.sh/hook-delete-policy"], "hook-succeeded") {
		t.Errorf("Secret/%s: hook-delete-policy %q leaves the database URL behind", name, s.Annotations["helm.sh/hook-delete-policy"])
	}
	if len(s.Data) != 1 {
		t.Errorf("Secret/%s: holds %d keys, want only the database URL", name, len(s.Data))
	}
}

// checkSecretsStaySecret: secret values appear only in Secrets (base64),
// never in another manifest or in NOTES.txt.
func checkSecretsStaySecret(t *testing.T, r *release) {
	t.Helper()
	var secrets []string
	if v := r.str("secrets.databaseURL"); v != "" {
		secrets = append(secrets, v)
	}
	if v := r.str("secrets.kafkaSASLPassword"); v != "" {
		secrets = append(secrets, v)
	}
	// Never in the migration Job's file, not even its hook Secret.
	var notForMigrations []string
	if v := r.str("secrets.apiDatabaseURL"); v != "" {
		notForMigrations = append(notForMigrations, v)
	}
	for _, path := range []string{"secrets.writeKeys", "secrets.identitySecrets", "secrets.serverWriteKeys"} {
		if keys, ok := r.value(path).([]any); ok {
			for _, k := range keys {
				secrets = append(secrets, fmt.Sprint(k))
				if path != "secrets.writeKeys" {
					notForMigrations = append(notForMigrations, fmt.Sprint(k))
				}
			}
		}
	}
	secrets = append(secrets, notForMigrations...)
	for _, s := range notForMigrations {
		job := r.text["prechat/templates/migrate-job.yaml"]
		if strings.Contains(job, s) || strings.Contains(job, base64.StdEncoding.EncodeToString([]byte(s))) {
			t.Errorf("migrate-job.yaml: holds a secret the migration does not need")
		}
	}
	for file, text := range r.text {
		isSecret := strings.HasSuffix(file, "/secret.yaml") || strings.HasSuffix(file, "/migrate-job.yaml")
		for _, s := range secrets {
			if !isSecret && strings.Contains(text, s) {
				t.Errorf("%s: contains a secret value in clear", file)
			}
			if strings.HasSuffix(file, "NOTES.txt") && strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(s))) {
				t.Errorf("%s: contains a secret value in base64", file)
			}
		}
	}
	if strings.Contains(r.text["prechat/templates/migrate-job.yaml"], "\nkind: Job") {
		job := r.text["prechat/templates/migrate-job.yaml"]
		job = job[strings.Index(job, "\nkind: Job"):]
		for _, s := range secrets {
			if strings.Contains(job, s) {
				t.Errorf("Job: contains a secret value in clear")
			}
		}
	}
}

// checkSelectorsAndPorts: Services, PDBs, HPA, Ingress, NetworkPolicies
// and the ServiceMonitor point at what the chart renders.
func checkSelectorsAndPorts(t *testing.T, r *release) {
	t.Helper()
	deployments := map[string]*appsv1.Deployment{}
	for _, o := range r.all("Deployment") {
		deployments[o.name] = o.obj.(*appsv1.Deployment)
	}
	// selected returns the Deployments whose pods the selector selects.
	selected := func(sel labels.Selector) []*appsv1.Deployment {
		var out []*appsv1.Deployment
		for _, d := range deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				out = append(out, d)
			}
		}
		return out
	}
	containerPort := func(d *appsv1.Deployment, name string) bool {
		for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
			if p.Name == name {
				return true
			}
		}
		return false
	}
	services := map[string]*corev1.Service{}
	for _, o := range r.all("Service") {
		s := o.obj.(*corev1.Service)
		services[s.Name] = s
		ds := selected(labels.SelectorFromSet(s.Spec.Selector))
		if len(ds) != 1 {
			t.Errorf("Service/%s: selects %d Deployments, want 1", s.Name, len(ds))
			continue
		}
		for _, p := range s.Spec.Ports {
			if !containerPort(ds[0], p.TargetPort.String()) {
				t.Errorf("Service/%s: targetPort %s is not a port of %s", s.Name, p.TargetPort.String(), ds[0].Name)
			}
		}
	}
	for _, o := range r.all("PodDisruptionBudget") {
		p := o.obj.(*policyv1.PodDisruptionBudget)
		sel, _ := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if ds := selected(sel); len(ds) != 1 || ds[0].Name != p.Name {
			t.Errorf("PodDisruptionBudget/%s: does not select exactly its Deployment", p.Name)
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PodDisruptionBudget/%s: want exactly one of minAvailable and maxUnavailable", p.Name)
		}
	}
	for _, role := range []string{"consumer", "api"} {
		enabled := r.boolean(role + ".enabled")
		if _, ok := deployments[fullname+"-"+role]; ok != enabled {
			t.Errorf("Deployment %s rendered=%v, enabled=%v", role, ok, enabled)
		}
		pdb := r.find("PodDisruptionBudget", fullname+"-"+role) != nil
		if pdb != (enabled && r.boolean(role+".podDisruptionBudget.enabled")) {
			t.Errorf("PodDisruptionBudget %s rendered=%v", role, pdb)
		}
	}
	for _, o := range r.all("HorizontalPodAutoscaler") {
		h := o.obj.(*autoscalingv2.HorizontalPodAutoscaler)
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.APIVersion != "apps/v1" || deployments[h.Spec.ScaleTargetRef.Name] == nil {
			t.Errorf("HorizontalPodAutoscaler/%s: target %v is not a rendered Deployment", h.Name, h.Spec.ScaleTargetRef)
		}
		if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("HorizontalPodAutoscaler/%s: want one CPU metric", h.Name)
		}
	}
	for _, o := range r.all("Ingress") {
		ing := o.obj.(*networkingv1.Ingress)
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				s := services[p.Backend.Service.Name]
				if s == nil {
					t.Errorf("Ingress/%s: backend %s is not a rendered Service", ing.Name, p.Backend.Service.Name)
					continue
				}
				if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == p.Backend.Service.Port.Name }) {
					t.Errorf("Ingress/%s: backend port %q is not a port of Service/%s", ing.Name, p.Backend.Service.Port.Name, s.Name)
				}
			}
		}
	}
	for _, o := range r.all("NetworkPolicy") {
		np := o.obj.(*networkingv1.NetworkPolicy)
		sel, _ := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		ds := selected(sel)
		if len(ds) != 1 {
			t.Errorf("NetworkPolicy/%s: selects %d Deployments, want 1", np.Name, len(ds))
			continue
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if !containerPort(ds[0], p.Port.String()) {
					t.Errorf("NetworkPolicy/%s: port %s is not a port of %s", np.Name, p.Port.String(), ds[0].Name)
				}
			}
		}
		// The probes' port must stay reachable.
		if !slices.ContainsFunc(np.Spec.Ingress, func(rule networkingv1.NetworkPolicyIngressRule) bool {
			return slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool { return p.Port.String() == "admin" })
		}) {
			t.Errorf("NetworkPolicy/%s: admin port not allowed", np.Name)
		}
	}
	for _, o := range r.all("ServiceMonitor") {
		u := o.obj.(*unstructured.Unstructured)
		if u.GetAPIVersion() != "monitoring.coreos.com/v1" {
			t.Errorf("ServiceMonitor/%s: apiVersion %s", u.GetName(), u.GetAPIVersion())
		}
		matchLabels, _, _ := unstructured.NestedStringMap(u.Object, "spec", "selector", "matchLabels")
		endpoints, _, _ := unstructured.NestedSlice(u.Object, "spec", "endpoints")
		var monitored []string
		for _, s := range services {
			if labels.SelectorFromSet(matchLabels).Matches(labels.Set(s.Labels)) {
				monitored = append(monitored, s.Name)
				for _, e := range endpoints {
					port, _, _ := unstructured.NestedString(e.(map[string]any), "port")
					if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == port }) {
						t.Errorf("ServiceMonitor/%s: endpoint port %q is not a port of Service/%s", u.GetName(), port, s.Name)
					}
				}
			}
		}
		if len(monitored) != len(deployments) {
			t.Errorf("ServiceMonitor/%s: selects Services %v, want one per Deployment", u.GetName(), monitored)
		}
		for _, e := range endpoints {
			if path, _, _ := unstructured.NestedString(e.(map[string]any), "path"); path != "/metrics" {
				t.Errorf("ServiceMonitor/%s: endpoint path %q", u.GetName(), path)
			}
		}
	}
}

// checkNotes: NOTES.txt tells how to reach the API and check the lag.
func checkNotes(t *testing.T, r *release) {
	t.Helper()
	n := r.notes
	if r.boolean("api.enabled") {
		if r.boolean("api.ingress.enabled") {
			for _, h := range r.value("api.ingress.hosts").([]any) {
				host := h.(map[string]any)["host"]
				if !strings.Contains(n, fmt.Sprintf("://%s/v1/prechat.js", host)) {
					t.Errorf("NOTES.txt: no URL for ingress host %s:\n%s", host, n)
				}
			}
		} else if !strings.Contains(n, "port-forward svc/"+fullname+"-api") {
			t.Errorf("NOTES.txt: no port-forward to the API:\n%s", n)
		}
	}
	if r.boolean("consumer.enabled") {
		for _, want := range []string{"kafka-consumer-groups", "--describe --group " + r.str("kafka.group"), "FROM kafka_offsets"} {
			if !strings.Contains(n, want) {
				t.Errorf("NOTES.txt: missing %q:\n%s", want, n)
			}
		}
	}
}

func joinValues(v any) string {
	list, _ := v.([]any)
	var s []string
	for _, x := range list {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, ",")
}

// kindsOf groups a release's objects by kind, for logs and comparisons.
func kindsOf(r *release) map[string][]string {
	out := map[string][]string{}
	for _, o := range r.objects {
		out[o.kind] = append(out[o.kind], o.name)
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}
