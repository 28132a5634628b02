package helmtest_test

// The Dockerfile's inputs: the Go version its builder names, and the build
// context .dockerignore leaves. The image itself is built and run in
// imagebuild_test.go, imagecontent_test.go and imagerun_test.go.

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	removeImageStorage()
	os.Exit(code)
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasPrefix(line, "#") { // comment inside a continuation
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	return out
}

// stages splits the instructions at each FROM.
func stages(ins []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			out = append(out, nil)
		}
		if len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], in)
		}
	}
	return out
}

// dockerGoVersion is the build stage's golang image tag, which must name a
// patch release ("1.27.3"): the Go that builds the image.
func dockerGoVersion(t *testing.T) string {
	t.Helper()
	from := stages(parseDockerfile(t))[0][0].args
	m := regexp.MustCompile(`(?:^|\s)golang:(\d+\.\d+\.\d+)(?:-\S+)?\s+AS\s+build$`).FindStringSubmatch(from)
	if m == nil {
		t.Fatalf("builder: FROM %s, want golang:<major.minor.patch> AS build", from)
	}
	return m[1]
}

// goModToolchain is the toolchain line of a go.mod ("go1.27.3").
func goModToolchain(t *testing.T, gomod string) string {
	t.Helper()
	data, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^toolchain\s+(go\S+)\s*$`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s has no toolchain line", gomod)
	}
	return string(m[1])
}

// TestOneGoVersion: every Go module of the repository (the service, these
// tests, tools/vulndb) names the same toolchain, the Dockerfile builds with
// it, and the README's set-up names it.
func TestOneGoVersion(t *testing.T) {
	root := repoRoot(t)
	want := "go" + dockerGoVersion(t)
	for _, mod := range []string{"go.mod", "helm/test/go.mod", "tools/vulndb/go.mod"} {
		if got := goModToolchain(t, filepath.Join(root, mod)); got != want {
			t.Errorf("%s: toolchain %s, the Dockerfile builds with %s", mod, got, want)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, setup, _ := strings.Cut(string(readme), "\n## Set-up\n")
	setup, _, _ = strings.Cut(setup, "\n## ")
	if !strings.Contains(setup, want) {
		t.Errorf("README's Set-up does not name %s", want)
	}
}

// dockerignore is the build context filter: Docker's rules (patterns from
// the context root, ** across directories, a matching parent excludes its
// content, the last matching rule wins, ! re-includes).
type dockerignore []struct {
	re      *regexp.Regexp
	include bool
}

func readDockerignore(t *testing.T) dockerignore {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var rules dockerignore
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		include := strings.HasPrefix(line, "!")
		line = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(strings.TrimPrefix(line, "!"))), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case line[i] == '*':
				re.WriteString("[^/]*")
			case line[i] == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(line[i : i+1]))
			}
		}
		re.WriteString("$")
		rules = append(rules, struct {
			re      *regexp.Regexp
			include bool
		}{regexp.MustCompile(re.String()), include})
	}
	return rules
}

// excluded reports whether the context-relative path is left out.
func (d dockerignore) excluded(rel string) bool {
	rel = filepath.ToSlash(rel)
	out := false
	for _, r := range d {
		match := false
		for p := rel; p != "." && p != "/" && p != ""; p = filepath.ToSlash(filepath.Dir(p)) {
			if r.re.MatchString(p) {
				match = true
				break
			}
		}
		if match {
			out = !r.include
		}
	}
	return out
}

// reincluded are the directories that a ! rule names, whose excluded
// parents must still be walked.
func (d dockerignore) reincluded(dir string) bool {
	for _, r := range d {
		if r.include && (r.re.MatchString(dir) || strings.HasPrefix(strings.TrimPrefix(r.re.String(), "^"), regexp.QuoteMeta(dir+"/"))) {
			return true
		}
	}
	return false
}

// contextFiles are the repository's files that "docker build ." sends, as
// .dockerignore filters them (paths relative to the root, slash-separated).
func contextFiles(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	ignore := readDockerignore(t)
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ignore.excluded(rel) {
			if d.IsDir() && !ignore.reincluded(rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// goFiles lists, relative to the repository root, the source and embedded
// files of the main module's packages that go list names with args (test
// files excluded; files for other platforms included, which a build for
// another GOOS/GOARCH reads).
func goFiles(t *testing.T, args ...string) []string {
	t.Helper()
	root := repoRoot(t)
	const format = `{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}` +
		`{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .IgnoredGoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}` +
		`{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`
	cmd := exec.Command("go", append([]string{"list", "-f", format}, args...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var files []string
	for line := range strings.Lines(string(out)) {
		if strings.HasSuffix(strings.TrimSpace(line), "_test.go") {
			continue // an ignored test file (a build tag such as race): never built into the image
		}
		rel, err := filepath.Rel(root, strings.TrimSpace(line))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files
}

// imageFiles are the files the Dockerfile copies from the context by name.
var imageFiles = []string{"go.mod", "go.sum", "image/passwd", "image/group"}

// TestBuildContext: the context holds every file the image's build reads —
// the sources and embeds of the packages ./cmd/processor and ./tools/sbom
// import, go.mod, go.sum and image/ — and nothing else but the other
// packages' non-test sources: no tests, test data, documentation, chart,
// scripts, VCS data or local build outputs. Both lists come from go list,
// so a new embed or package is checked without editing this test.
func TestBuildContext(t *testing.T) {
	context := contextFiles(t)
	t.Logf("build context: %d files after .dockerignore", len(context))
	for _, f := range append(goFiles(t, "-deps", "./cmd/processor", "./tools/sbom"), imageFiles...) {
		if !slices.Contains(context, f) {
			t.Errorf(".dockerignore excludes %s, which the image build reads", f)
		}
	}
	allowed := append(goFiles(t, "./..."), imageFiles...)
	for _, f := range context {
		if !slices.Contains(allowed, f) {
			t.Errorf(".dockerignore keeps %s, which is no package's source or embed", f)
		}
	}
	// Build outputs a developer may leave at the root, whether or not any
	// is there now.
	ignore := readDockerignore(t)
	for _, p := range []string{"processor", "prechat", "bin/processor", "processor.test", "cover.out"} {
		if !ignore.excluded(p) {
			t.Errorf(".dockerignore would send a local build output %s", p)
		}
	}
}
