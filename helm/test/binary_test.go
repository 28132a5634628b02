package helmtest_test

// The chart against the binary: the environment variables the chart sets
// are ones the processor reads, and the settings file it mounts passes the
// processor's own check. These need the program, not the image, so they
// run a host build of ./cmd/processor (the image's own binary is checked in
// imagecontent_test.go).

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

var (
	buildOnce   sync.Once
	builtBinary string
	buildErr    error
	buildDir    string // removed by TestMain
)

// processorBinary builds ./cmd/processor once per test run, static as in
// the image.
func processorBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildErr = errors.New("the build did not finish (see the first test that needed it)")
		dir, err := os.MkdirTemp("", "prechat-processor-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		out := filepath.Join(dir, "processor")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/processor")
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if _, err := combined(cmd); err != nil {
			buildErr = err
			return
		}
		builtBinary, buildErr = out, nil
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBinary
}

// run runs the binary with exactly the given environment (as in the image:
// nothing inherited) and returns its output and exit code.
func run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(processorBinary(t), args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// pendingEnv are variables the chart sets for features announced but
// possibly not yet in this binary; their absence is logged, not failed.
var pendingEnv = map[string]string{
	"ADMIN_ADDR": "the admin server (/healthz, /readyz, /metrics); the chart sets it to the admin port",
}

// TestChartEnvIsUnderstood: every variable the chart sets is one the
// binary reads (its flags mirror the environment: "processor serve -h"),
// apart from GOMAXPROCS and GOMEMLIMIT, which the Go runtime reads.
func TestChartEnvIsUnderstood(t *testing.T) {
	_, help, code := run(t, nil, "serve", "-h")
	if code != 0 {
		t.Fatalf("processor serve -h: exit %d\n%s", code, help)
	}
	known := map[string]bool{"GOMAXPROCS": true, "GOMEMLIMIT": true}
	for _, m := range regexp.MustCompile(`environment ([A-Z0-9_]+)`).FindAllStringSubmatch(help, -1) {
		known[m[1]] = true
	}
	seen := map[string]bool{}
	for _, vs := range valueSets {
		r := mustRender(t, readValues(t, vs.files...))
		var containers []corev1.Container
		for _, o := range r.all("Deployment") {
			containers = append(containers, r.deployment(t, o.name).Spec.Template.Spec.Containers...)
		}
		for _, o := range r.all("Job") {
			containers = append(containers, r.job(t, o.name).Spec.Template.Spec.Containers...)
		}
		for _, c := range containers {
			for _, e := range c.Env {
				if seen[e.Name] {
					continue
				}
				seen[e.Name] = true
				switch {
				case known[e.Name]:
				case pendingEnv[e.Name] != "":
					t.Logf("note: the binary does not read %s yet: %s", e.Name, pendingEnv[e.Name])
				default:
					t.Errorf("%s: the chart sets %s, which processor does not read", vs.name, e.Name)
				}
			}
		}
	}
	// And the chart covers every variable the binary reads.
	for name := range known {
		if !seen[name] && !slices.Contains([]string{"DEPLOYMENT_SCRIPT_URL", "CLIENT_IP_HEADER", "ALLOWED_ORIGINS"}, name) {
			t.Logf("note: the chart never sets %s", name)
		}
	}
}

// TestChartSettingsAreValid: the settings file the chart mounts (its
// ConfigMap) passes "processor settings check", for each value set that
// renders one.
func TestChartSettingsAreValid(t *testing.T) {
	for _, vs := range valueSets {
		r := mustRender(t, readValues(t, vs.files...))
		cm, ok := r.find("ConfigMap", fullname+"-settings").(*corev1.ConfigMap)
		if !ok {
			continue
		}
		file := filepath.Join(t.TempDir(), "settings.json")
		if err := os.WriteFile(file, []byte(cm.Data["settings.json"]), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := run(t, nil, "settings", "check", file)
		if code != 0 {
			t.Errorf("%s: the chart's settings.json fails processor settings check (exit %d):\n%s%s", vs.name, code, out, errOut)
		}
	}
}
