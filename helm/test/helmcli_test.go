package helmtest_test

// The real helm CLI (v3.22.0, which scripts/helm-test installs with go
// install into GOBIN): "helm lint --strict" and "helm template" of every
// ci/*-values.yaml, its output decoded strictly and compared with the
// in-process render the other tests check.

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// helmVersion is the helm CLI the chart is tested with (go.mod's Helm
// library is the same version).
const helmVersion = "v3.22.0"

// minKubeVersion is Chart.yaml's kubeVersion floor. A go-installed helm
// has no Kubernetes version linked in and assumes v1.20, which the chart
// refuses; the release binaries assume the one they were built against.
const minKubeVersion = "1.30.0"

// helmCLI finds the helm binary: on PATH, or in GOBIN / GOPATH/bin where
// scripts/helm-test installs it.
func helmCLI(t *testing.T) string {
	t.Helper()
	candidates := []string{}
	if p, err := exec.LookPath("helm"); err == nil {
		candidates = append(candidates, p)
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) == 2 {
			if lines[0] != "" {
				candidates = append(candidates, filepath.Join(lines[0], "helm"))
			}
			candidates = append(candidates, filepath.Join(lines[1], "bin", "helm"))
		}
	}
	for _, c := range candidates {
		// "helm version" of a go-installed helm says v3.22: the module
		// version in the build information is exact.
		info, err := buildinfo.ReadFile(c)
		if err == nil && info.Main.Path == "helm.sh/helm/v3" && info.Main.Version == helmVersion {
			return c
		}
	}
	t.Fatalf("no helm %s among %v: scripts/helm-test installs it (go install helm.sh/helm/v3/cmd/helm@%s)", helmVersion, candidates, helmVersion)
	return ""
}

// TestHelmCLI: for every ci/*-values.yaml, "helm lint --strict" passes and
// "helm template" renders exactly the manifests the in-process render does.
func TestHelmCLI(t *testing.T) {
	helm := helmCLI(t)
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci/*-values.yaml: %v", err)
	}
	home := t.TempDir()
	env := append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	helmRun := func(args ...string) (string, error) {
		cmd := exec.Command(helm, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil {
			return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String(), nil
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), "-values.yaml")
		if !slices.ContainsFunc(valueSets, func(vs valueSet) bool { return vs.name == name }) {
			t.Errorf("%s is not among the value sets TestRender checks", f)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if out, err := helmRun("lint", "--strict", "--kube-version", minKubeVersion, chartDir, "-n", namespace, "-f", f); err != nil {
				t.Errorf("%v", err)
			} else if !strings.Contains(out, "0 chart(s) failed") {
				t.Errorf("helm lint --strict:\n%s", out)
			}
			out, err := helmRun("template", releaseName, chartDir, "-n", namespace, "--kube-version", minKubeVersion, "-f", f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := decodeManifests("helm template", out)
			if err != nil {
				t.Fatal(err)
			}
			cli := &release{objects: objs}
			lib := mustRender(t, readValues(t, f))
			if got, want := fmt.Sprint(kindsOf(cli)), fmt.Sprint(kindsOf(lib)); got != want {
				t.Errorf("helm template renders\n %s\nthe library render\n %s", got, want)
			}
			t.Logf("helm template: %s", formatKinds(kindsOf(cli)))
		})
	}
}
