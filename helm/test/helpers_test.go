package helmtest_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	sigsyaml "sigs.k8s.io/yaml"
)

const (
	chartDir    = "../prechat"
	releaseName = "prod"
	namespace   = "prechat"
	fullname    = "prod-prechat"
)

// strictDecoder decodes manifests into the k8s.io/api types, rejecting
// unknown and duplicated fields.
var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// release is one rendered chart: every manifest decoded, and NOTES.txt.
type release struct {
	values  chartutil.Values // the coalesced values (.Values)
	objects []object
	notes   string
	text    map[string]string // template path → rendered text
}

// object is one rendered manifest: a typed k8s.io/api object, or
// unstructured for kinds outside client-go's scheme (ServiceMonitor).
type object struct {
	file string
	kind string
	name string
	meta metav1.Object
	obj  runtime.Object
}

func (o object) String() string { return o.kind + "/" + o.name }

// readValues reads and merges value files (later files win), as helm -f does.
func readValues(t testing.TB, files ...string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		out = mergeValues(out, v)
	}
	return out
}

// mergeValues deep-merges b over a (maps merge, everything else replaces).
func mergeValues(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	for k, bv := range b {
		if bm, ok := bv.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(am, bm)
				continue
			}
		}
		out[k] = bv
	}
	return out
}

// with returns vals with a YAML snippet merged over it.
func with(t testing.TB, vals map[string]any, snippet string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValues([]byte(snippet))
	if err != nil {
		t.Fatalf("values snippet: %v\n%s", err, snippet)
	}
	return mergeValues(vals, v)
}

// render renders the chart as "helm install prod -n prechat" would (schema
// validation included), with the template engine in strict mode so that a
// reference to a missing value fails.
func render(vals map[string]any) (*release, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	out, err := engine.Engine{Strict: true}.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	r := &release{text: map[string]string{}}
	r.values, _ = rv.Table("Values")
	for _, file := range slices.Sorted(maps.Keys(out)) {
		text := out[file]
		r.text[file] = text
		if strings.HasSuffix(file, "NOTES.txt") {
			r.notes = text
			continue
		}
		objs, err := decodeManifests(file, text)
		if err != nil {
			return nil, err
		}
		r.objects = append(r.objects, objs...)
	}
	return r, nil
}

// mustRender renders, failing the test on any error.
func mustRender(t testing.TB, vals map[string]any) *release {
	t.Helper()
	r, err := render(vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// decodeManifests splits a rendered template into documents and decodes
// each strictly.
func decodeManifests(file, text string) ([]object, error) {
	var out []object
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if isEmptyYAML(doc) {
			continue
		}
		obj, gvk, err := strictDecoder.Decode(doc, nil, nil)
		switch {
		case runtime.IsNotRegisteredError(err):
			u := &unstructured.Unstructured{}
			if err := sigsyaml.UnmarshalStrict(doc, &u.Object); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			out = append(out, object{file: file, kind: u.GetKind(), name: u.GetName(), meta: u, obj: u})
			continue
		case err != nil:
			return nil, fmt.Errorf("%s: strict decode: %w\n%s", file, err, doc)
		}
		m, err := metaOf(obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, object{file: file, kind: gvk.Kind, name: m.GetName(), meta: m, obj: obj})
	}
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}

func isEmptyYAML(doc []byte) bool {
	for line := range bytes.Lines(doc) {
		l := bytes.TrimSpace(line)
		if len(l) > 0 && l[0] != '#' && string(l) != "---" {
			return false
		}
	}
	return true
}

// lint runs "helm lint --strict" with the values; it returns the errors.
func lint(vals map[string]any) []error {
	l := action.NewLint()
	l.Strict = true
	l.Namespace = namespace
	return l.Run([]string{chartDir}, vals).Errors
}

// kinds lists the objects as Kind/name, in render order.
func (r *release) kinds() []string {
	var out []string
	for _, o := range r.objects {
		out = append(out, o.String())
	}
	return out
}

// find returns the object of that kind and name, or nil.
func (r *release) find(kind, name string) runtime.Object {
	for _, o := range r.objects {
		if o.kind == kind && o.name == name {
			return o.obj
		}
	}
	return nil
}

func (r *release) deployment(t testing.TB, name string) *appsv1.Deployment {
	t.Helper()
	d, ok := r.find("Deployment", name).(*appsv1.Deployment)
	if !ok {
		t.Fatalf("no Deployment %s in %v", name, r.kinds())
	}
	return d
}

func (r *release) job(t testing.TB, name string) *batchv1.Job {
	t.Helper()
	j, ok := r.find("Job", name).(*batchv1.Job)
	if !ok {
		t.Fatalf("no Job %s in %v", name, r.kinds())
	}
	return j
}

func (r *release) secret(name string) *corev1.Secret {
	s, _ := r.find("Secret", name).(*corev1.Secret)
	return s
}

func (r *release) all(kind string) []object {
	var out []object
	for _, o := range r.objects {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// value returns a value by dotted path, or nil.
func (r *release) value(path string) any {
	v, err := r.values.PathValue(path)
	if err != nil {
		return nil
	}
	return v
}

func (r *release) str(path string) string {
	if v := r.value(path); v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

func (r *release) boolean(path string) bool {
	b, _ := r.value(path).(bool)
	return b
}

func (r *release) number(path string) float64 {
	switch v := r.value(path).(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	case int:
		return float64(v)
	}
	return 0
}

func (r *release) table(path string) map[string]any {
	var v any = map[string]any(r.values)
	for _, p := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	m, _ := v.(map[string]any)
	return m
}

// container returns the pod's only container, named processor.
func container(t testing.TB, what string, spec *corev1.PodSpec) *corev1.Container {
	t.Helper()
	if len(spec.Containers) != 1 || spec.Containers[0].Name != "processor" {
		t.Fatalf("%s: want one container named processor, got %d", what, len(spec.Containers))
	}
	return &spec.Containers[0]
}

// envVar returns the named variable of the container, or nil.
func envVar(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// secretRef returns the Secret key a variable comes from; a zero selector
// when it is absent or not a secretKeyRef.
func secretRef(c *corev1.Container, name string) corev1.SecretKeySelector {
	if e := envVar(c, name); e != nil && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
		return *e.ValueFrom.SecretKeyRef
	}
	return corev1.SecretKeySelector{}
}

// envValue returns the literal value of a variable ("" when absent).
func envValue(c *corev1.Container, name string) string {
	if e := envVar(c, name); e != nil {
		return e.Value
	}
	return ""
}

// valueSetFile is a values file of the chart's ci/ directory.
func valueSetFile(name string) string { return filepath.Join(chartDir, "ci", name+"-values.yaml") }

// repoRoot is the service's module root.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}
