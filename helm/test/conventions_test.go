package helmtest_test

// The conventions well-kept charts have: extra volumes, mounts, envFrom and
// objects, pod labels, ServiceMonitor relabelings, Artifact Hub annotations,
// a "helm test" hook (run here for real against a live processor), and
// references in the chart's comments that lead somewhere.

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"
)

// checkFeatures: ci/features-values.yaml, every optional feature at once.
func checkFeatures(t *testing.T, r *release) {
	var pods []*corev1.PodSpec
	var what []string
	for _, name := range []string{consumer, api} {
		d := r.deployment(t, name)
		pods = append(pods, &d.Spec.Template.Spec)
		what = append(what, "Deployment/"+name)
		labels := d.Spec.Template.Labels
		if labels["team"] != "support-tools" {
			t.Errorf("%s: podLabels not on the pods: %v", name, labels)
		}
		if (labels["tier"] == "pipeline") != (name == consumer) {
			t.Errorf("%s: consumer.podLabels on the wrong pods: %v", name, labels)
		}
		if d.Labels["team"] != "" {
			t.Errorf("%s: podLabels leaked onto the Deployment's own labels", name)
		}
	}
	j := r.job(t, migrate)
	pods = append(pods, &j.Spec.Template.Spec)
	what = append(what, "Job/"+migrate)
	if j.Spec.Template.Labels["team"] != "support-tools" {
		t.Errorf("Job: podLabels not on its pod")
	}
	for i, spec := range pods {
		c := &spec.Containers[0]
		if !slices.ContainsFunc(spec.Volumes, func(v corev1.Volume) bool {
			return v.Name == "pg-ca" && v.Secret != nil && v.Secret.SecretName == "postgres-ca"
		}) {
			t.Errorf("%s: extraVolumes not added: %v", what[i], spec.Volumes)
		}
		if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.Name == "pg-ca" && m.MountPath == "/etc/prechat/pg-ca" && m.ReadOnly
		}) {
			t.Errorf("%s: extraVolumeMounts not added: %v", what[i], c.VolumeMounts)
		}
		if len(c.EnvFrom) != 2 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != "prechat-extra-env" ||
			c.EnvFrom[1].SecretRef == nil || c.EnvFrom[1].Prefix != "PG_" {
			t.Errorf("%s: extraEnvFrom %+v", what[i], c.EnvFrom)
		}
	}
	// extraObjects, as objects and as templated strings.
	cm, ok := r.find("ConfigMap", fullname+"-extra").(*corev1.ConfigMap)
	if !ok || cm.Data["note"] != "rendered from extraObjects" || cm.Namespace != namespace {
		t.Errorf("extraObjects: ConfigMap %+v", cm)
	}
	if s := r.secret(fullname + "-keda-prometheus"); s == nil || s.StringData["bearerToken"] != "from-extraObjects" {
		t.Errorf("extraObjects: the templated Secret %+v", s)
	}
	// ServiceMonitor relabelings.
	u := r.find("ServiceMonitor", fullname).(*unstructured.Unstructured)
	eps, _, _ := unstructured.NestedSlice(u.Object, "spec", "endpoints")
	ep := eps[0].(map[string]any)
	relabel, _ := ep["relabelings"].([]any)
	metricRelabel, _ := ep["metricRelabelings"].([]any)
	if len(relabel) != 1 || relabel[0].(map[string]any)["targetLabel"] != "cluster" ||
		len(metricRelabel) != 1 || metricRelabel[0].(map[string]any)["action"] != "drop" {
		t.Errorf("ServiceMonitor endpoint %v: relabelings not rendered", ep)
	}
}

// TestDefaultsRenderNoOptionalMonitoring: what the issue asks to be off by
// default is off; the test hook is on, as in "helm create"'s scaffold.
func TestDefaultsRenderNoOptionalMonitoring(t *testing.T) {
	r := mustRender(t, readValues(t, valueSetFile("default")))
	for _, kind := range []string{"PrometheusRule", "ScaledObject", "ServiceMonitor"} {
		if len(r.all(kind)) > 0 {
			t.Errorf("%s rendered by default", kind)
		}
	}
	for _, name := range []string{consumer, api} {
		c := &r.deployment(t, name).Spec.Template.Spec.Containers[0]
		if len(c.EnvFrom) > 0 {
			t.Errorf("%s: envFrom by default", name)
		}
	}
	if r.find("Pod", fullname+"-test") == nil {
		t.Errorf("no test hook by default")
	}
	r = mustRender(t, with(t, readValues(t, valueSetFile("default")), "tests: {enabled: false}"))
	if len(r.all("Pod")) > 0 || r.find("Service", api+"-test") != nil {
		t.Errorf("tests.enabled=false still renders the hook: %v", r.kinds())
	}
}

// testHook returns the rendered test pod and checks its hook annotations,
// security and the Services it reads through.
func testHook(t *testing.T, r *release) *corev1.Pod {
	t.Helper()
	pod, ok := r.find("Pod", fullname+"-test").(*corev1.Pod)
	if !ok {
		t.Fatalf("no test Pod in %v", r.kinds())
	}
	if pod.Annotations["helm.sh/hook"] != "test" {
		t.Errorf("Pod: helm.sh/hook %q, want test", pod.Annotations["helm.sh/hook"])
	}
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("Pod: restartPolicy %s", pod.Spec.RestartPolicy)
	}
	if len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Name != "test-success" {
		t.Fatalf("Pod: want one container test-success")
	}
	checkPodSecurity(t, "Pod/"+pod.Name, &pod.Spec)
	if d := pod.Spec.ActiveDeadlineSeconds; d == nil || *d <= 0 {
		t.Errorf("Pod: no activeDeadlineSeconds bounds a hanging wget")
	}
	for _, o := range r.all("Service") {
		if !strings.HasSuffix(o.name, "-test") {
			continue
		}
		s := o.obj.(*corev1.Service)
		if s.Annotations["helm.sh/hook"] != "test" || !strings.Contains(s.Annotations["helm.sh/hook-delete-policy"], "hook-succeeded") {
			t.Errorf("Service/%s: a test hook Service must be a hook deleted on success: %v", s.Name, s.Annotations)
		}
		if w := s.Annotations["helm.sh/hook-weight"]; w == "" || w[0] != '-' {
			t.Errorf("Service/%s: hook-weight %q, want below the pod's 0", s.Name, w)
		}
	}
	return pod
}

// serviceURL checks that a URL of the test pod names a rendered Service
// and a port of it that leads to the given container port of the role's
// pods; it returns the URL's path.
func serviceURL(t *testing.T, r *release, raw, role, containerPort string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("test pod URL %q: %v", raw, err)
	}
	s, ok := r.find("Service", u.Hostname()).(*corev1.Service)
	if !ok {
		t.Errorf("test pod URL %s: no Service %s", raw, u.Hostname())
		return u.Path
	}
	if s.Spec.Selector["app.kubernetes.io/component"] != role {
		t.Errorf("Service/%s selects %v, want the %s pods", s.Name, s.Spec.Selector, role)
	}
	if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool {
		return fmt.Sprint(p.Port) == u.Port() && p.TargetPort.String() == containerPort
	}) {
		t.Errorf("test pod URL %s: Service/%s has no port %s to %s", raw, s.Name, u.Port(), containerPort)
	}
	return u.Path
}

// TestHelmTestHook renders the test pod for each role layout, checks the
// URLs it reads lead to the right pods, then runs its script with busybox
// (the pod's image's shell and wget) against a live processor: it passes,
// and fails when /readyz fails or the snippet is not served.
func TestHelmTestHook(t *testing.T) {
	layouts := map[string][]string{"default": {"consumer", "api"}, "consumer-only": {"consumer"}, "api-only": {"api"}}
	var script string
	for name, roles := range layouts {
		r := mustRender(t, readValues(t, valueSetFile(name)))
		pod := testHook(t, r)
		c := &pod.Spec.Containers[0]
		if !slices.Equal(c.Command, []string{"sh", "-c"}) || len(c.Args) != 1 {
			t.Fatalf("%s: command %v args %d", name, c.Command, len(c.Args))
		}
		script = c.Args[0]
		readyz := strings.Fields(envValue(c, "PRECHAT_READYZ_URLS"))
		if len(readyz) != len(roles) {
			t.Errorf("%s: /readyz of %v, want one per role %v", name, readyz, roles)
		}
		for i, u := range readyz {
			if p := serviceURL(t, r, u, roles[i], "admin"); p != "/readyz" {
				t.Errorf("%s: %s is not /readyz", name, u)
			}
		}
		snippet := envValue(c, "PRECHAT_SNIPPET_URL")
		if slices.Contains(roles, "api") {
			if p := serviceURL(t, r, snippet, "api", "http"); p != "/v1/prechat.js" {
				t.Errorf("%s: snippet URL %s", name, snippet)
			}
		} else if envVar(c, "PRECHAT_SNIPPET_URL") != nil {
			t.Errorf("%s: fetches the snippet without an API", name)
		}
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox not found (scripts/helm-test installs Debian's busybox): %v", err)
	}
	l, err := startLive(t, "prechat_helmtest_hook")
	if err != nil {
		t.Fatal(err)
	}
	defer l.stop()
	runHook := func(readyz, snippet string) (string, error) {
		// Only busybox's applets on the PATH, as in the busybox image.
		dir := t.TempDir()
		if err := os.Symlink(busybox, filepath.Join(dir, "wget")); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(busybox, "sh", "-c", script)
		cmd.Env = []string{"PATH=" + dir, "PRECHAT_READYZ_URLS=" + readyz, "PRECHAT_SNIPPET_URL=" + snippet}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := runHook(l.admin+"/readyz "+l.admin+"/readyz", l.api+"/v1/prechat.js")
	if err != nil || !strings.HasSuffix(out, "test-success\n") {
		t.Errorf("the test hook against a live processor: %v\n%s", err, out)
	}
	t.Logf("the hook's script against the live processor:\n%s", out)
	if out, err := runHook(l.admin+"/no-such-path", l.api+"/v1/prechat.js"); err == nil {
		t.Errorf("the hook passes although /readyz fails:\n%s", out)
	}
	if out, err := runHook(l.admin+"/readyz", l.admin+"/healthz"); err == nil || !strings.Contains(out, "not the Prechat snippet") {
		t.Errorf("the hook passes although the snippet is not served: %v\n%s", err, out)
	}
}

// artifactHubCategories are Artifact Hub's package categories.
var artifactHubCategories = []string{"ai-machine-learning", "database", "integration-delivery", "monitoring-logging",
	"networking", "security", "storage", "streaming-messaging"}

// TestChartMetadata: Chart.yaml names no address the project does not
// have, and its Artifact Hub annotations are well-formed and true to the
// chart (the images it runs, the kinds of change).
func TestChartMetadata(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		Home        string            `json:"home"`
		Sources     []string          `json:"sources"`
		AppVersion  string            `json:"appVersion"`
		Annotations map[string]string `json:"annotations"`
		Maintainers []struct {
			Name, Email, URL string
		} `json:"maintainers"`
	}
	if err := sigsyaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}
	if chart.Home != "" || len(chart.Sources) > 0 {
		t.Errorf("home %q sources %v: the project has no public address; leave them out", chart.Home, chart.Sources)
	}
	for _, m := range chart.Maintainers {
		if m.URL != "" {
			t.Errorf("maintainer %s: url %s", m.Name, m.URL)
		}
	}
	a := chart.Annotations
	if !slices.Contains(artifactHubCategories, a["artifacthub.io/category"]) {
		t.Errorf("artifacthub.io/category %q", a["artifacthub.io/category"])
	}
	for _, k := range []string{"artifacthub.io/prerelease", "artifacthub.io/containsSecurityUpdates", "artifacthub.io/operator"} {
		if v := a[k]; v != "true" && v != "false" {
			t.Errorf("%s: %q, want \"true\" or \"false\"", k, v)
		}
	}
	var images []struct {
		Name  string `json:"name"`
		Image string `json:"image"`
	}
	if err := sigsyaml.UnmarshalStrict([]byte(a["artifacthub.io/images"]), &images); err != nil {
		t.Errorf("artifacthub.io/images: %v", err)
	}
	defaults := readValues(t, filepath.Join(chartDir, "values.yaml"))
	img := defaults["image"].(map[string]any)
	tests := defaults["tests"].(map[string]any)["image"].(map[string]any)
	want := []string{
		fmt.Sprintf("%s:%s", img["repository"], chart.AppVersion),
		fmt.Sprintf("%s:%s", tests["repository"], tests["tag"]),
	}
	var got []string
	for _, i := range images {
		got = append(got, i.Image)
	}
	if !slices.Equal(got, want) {
		t.Errorf("artifacthub.io/images %v, want the images the chart runs by default %v", got, want)
	}
	var changes []struct {
		Kind        string `json:"kind"`
		Description string `json:"description"`
	}
	if err := sigsyaml.UnmarshalStrict([]byte(a["artifacthub.io/changes"]), &changes); err != nil || len(changes) == 0 {
		t.Errorf("artifacthub.io/changes: %v (%d)", err, len(changes))
	}
	for _, c := range changes {
		if !slices.Contains([]string{"added", "changed", "deprecated", "removed", "fixed", "security"}, c.Kind) || c.Description == "" {
			t.Errorf("artifacthub.io/changes: %+v", c)
		}
	}
}

// TestChartReferencesExist: the files the chart's comments and README
// point to exist in the repository.
func TestChartReferencesExist(t *testing.T) {
	root := repoRoot(t)
	ref := regexp.MustCompile(`(?:^|[\s(\[])((?:helm|docs|examples)/[A-Za-z0-9_./-]+\.(?:md|yaml|json))`)
	for _, f := range []string{"helm/prechat/values.yaml", "helm/prechat/Chart.yaml", "helm/prechat/README.md", "helm/examples/production-values.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(data), -1) {
			if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
				t.Errorf("%s names %s, which does not exist", f, m[1])
			}
		}
	}
}

// TestExtraObjectsAndVolumesOff: without them no envFrom, extra volume or
// object appears, and the pods' volumes are the chart's own.
func TestExtraObjectsAndVolumesOff(t *testing.T) {
	r := mustRender(t, readValues(t, valueSetFile("default")))
	for _, o := range r.all("Deployment") {
		for _, v := range o.obj.(*appsv1.Deployment).Spec.Template.Spec.Volumes {
			if !slices.Contains([]string{"settings", "tmp", "kafka-ca", "identity-jwt-keys"}, v.Name) {
				t.Errorf("%s: volume %s by default", o, v.Name)
			}
		}
	}
}
