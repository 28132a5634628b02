package helmtest_test

// The container image cannot be built here (no Docker engine), so these
// tests check what can be checked without one: the Dockerfile's facts, that
// the build context .dockerignore leaves suffices, and the binary the
// Dockerfile's build command produces from that context — static, stripped,
// and answering the commands the chart runs.

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

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

// TestDockerfile asserts the image's facts: a golang builder at go.mod's
// toolchain version with a static, trimmed, stripped build; a distroless
// static (or scratch) final stage running as non-root with the processor as
// entrypoint and serve as the default command.
func TestDockerfile(t *testing.T) {
	st := stages(parseDockerfile(t))
	if len(st) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(st))
	}
	build, final := st[0], st[len(st)-1]
	if v, want := "go"+dockerGoVersion(t), goModToolchain(t, filepath.Join(repoRoot(t), "go.mod")); v != want {
		t.Errorf("builder: golang:%s, but go.mod's toolchain is %s", strings.TrimPrefix(v, "go"), want)
	}
	runs := filterCmd(build, "RUN")
	if !slices.ContainsFunc(runs, func(s string) bool {
		return strings.Contains(s, "CGO_ENABLED=0") && strings.Contains(s, `go build -trimpath -ldflags="-s -w"`) && strings.HasSuffix(s, "./cmd/processor")
	}) {
		t.Errorf("builder: no RUN CGO_ENABLED=0 go build -trimpath -ldflags=\"-s -w\" ... ./cmd/processor in %q", runs)
	}
	base := final[0].args
	if !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		t.Errorf("final stage: FROM %s, want distroless static or scratch", base)
	}
	for _, in := range final {
		if in.cmd == "RUN" {
			t.Errorf("final stage: RUN %s (distroless has no shell)", in.args)
		}
	}
	users := filterCmd(final, "USER")
	if len(users) == 0 {
		t.Fatal("final stage: no USER")
	}
	user, group, _ := strings.Cut(users[len(users)-1], ":")
	if user == "0" || user == "root" || group == "0" || (user != "nonroot" && !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(user)) {
		t.Errorf("final stage: USER %s, want non-root (nonroot or a non-zero uid)", users[len(users)-1])
	}
	if user != "65532" && user != "nonroot" {
		t.Errorf("final stage: USER %s; the chart's securityContext runs as 65532 (distroless nonroot)", user)
	}
	want := map[string]string{"ENTRYPOINT": `["/processor"]`, "CMD": `["serve"]`}
	for cmd, args := range want {
		got := filterCmd(final, cmd)
		if len(got) != 1 || strings.ReplaceAll(got[0], " ", "") != args {
			t.Errorf("final stage: %s %v, want %s (exec form)", cmd, got, args)
		}
	}
	expose := strings.Fields(strings.Join(filterCmd(final, "EXPOSE"), " "))
	for _, p := range []string{"8080", "9090"} {
		if !slices.Contains(expose, p) {
			t.Errorf("final stage: EXPOSE %v lacks %s", expose, p)
		}
	}
	if copies := filterCmd(final, "COPY"); !slices.ContainsFunc(copies, func(s string) bool {
		return strings.HasPrefix(s, "--from=build ") && strings.HasSuffix(s, " /processor")
	}) {
		t.Errorf("final stage: no COPY --from=build ... /processor in %v", copies)
	}
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

func filterCmd(ins []instruction, cmd string) []string {
	var out []string
	for _, in := range ins {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// dockerBuildCommand extracts the environment and arguments of the
// Dockerfile's go build, with the build platform's TARGETOS/TARGETARCH.
func dockerBuildCommand(t *testing.T) (env, args []string) {
	t.Helper()
	for _, run := range filterCmd(stages(parseDockerfile(t))[0], "RUN") {
		if !strings.Contains(run, "go build") {
			continue
		}
		words := shellWords(run)
		for len(words) > 0 && strings.HasPrefix(words[0], "--mount=") {
			words = words[1:]
		}
		i := slices.Index(words, "go")
		if i < 0 || i+1 >= len(words) || words[i+1] != "build" {
			t.Fatalf("cannot read the go build of %q", run)
		}
		expand := strings.NewReplacer("$TARGETOS", runtime.GOOS, "$TARGETARCH", runtime.GOARCH)
		for _, w := range words[:i] {
			env = append(env, expand.Replace(w))
		}
		return env, words[i+2:]
	}
	t.Fatal("Dockerfile: no RUN ... go build")
	return nil, nil
}

// shellWords splits a command line on spaces, honouring double quotes.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case r == ' ' && !quoted:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
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

// copyContext copies the repository as "docker build ." would send it.
func copyContext(t *testing.T, dst string) []string {
	t.Helper()
	root := repoRoot(t)
	ignore := readDockerignore(t)
	reincludes := slices.ContainsFunc(ignore, func(r struct {
		re      *regexp.Regexp
		include bool
	}) bool {
		return r.include
	})
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			return nil
		}
		if ignore.excluded(rel) {
			if d.IsDir() && !reincludes {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	buildOnce   sync.Once
	builtBinary string
	buildErr    error
	buildDir    string
)

// processorBinary builds ./cmd/processor once, from a copy of the Docker
// build context, with the Dockerfile's own build command.
func processorBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildErr = errors.New("the build did not finish (see the first test that needed it)")
		dir, err := os.MkdirTemp("", "prechat-image-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		ctx := filepath.Join(dir, "context")
		files := copyContext(t, ctx)
		t.Logf("build context: %d files after .dockerignore", len(files))
		env, args := dockerBuildCommand(t)
		out := filepath.Join(dir, "processor")
		if i := slices.Index(args, "-o"); i >= 0 && i+1 < len(args) {
			args[i+1] = out
		} else {
			buildErr = errors.New("the Dockerfile's go build has no -o")
			return
		}
		t.Logf("%s go build %s", strings.Join(env, " "), strings.Join(args, " "))
		// The Go of the Dockerfile's golang image, not whichever runs the tests.
		env = append(env, "GOTOOLCHAIN=go"+dockerGoVersion(t))
		cmd := exec.Command("go", append([]string{"build"}, args...)...)
		cmd.Dir = ctx
		cmd.Env = append(os.Environ(), env...)
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build in the .dockerignore'd context: " + err.Error() + "\n" + string(b))
			return
		}
		builtBinary, buildErr = out, nil
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBinary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// TestBuildContext: .dockerignore leaves out what the image does not need
// and keeps what the build does.
func TestBuildContext(t *testing.T) {
	ignore := readDockerignore(t)
	for _, p := range []string{".git/HEAD", "helm/prechat/Chart.yaml", "scripts/test", "api/browser_test.go", "tools/vulndb/main.go",
		"api/testdata/browser/node_modules/x.js", "processor", "prechat", "README.md"} {
		if !ignore.excluded(p) {
			t.Errorf(".dockerignore keeps %s", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd/processor/main.go", "migrations/001_initial.sql",
		"api/snippet/prechat.js", "examples/settings.json", "cmd/processor/dev/index.html", "mapping/mappingtest/settings.json"} {
		if ignore.excluded(p) {
			t.Errorf(".dockerignore excludes %s, which the build needs", p)
		}
	}
}

// TestStaticBinary: the binary the Dockerfile builds is a static,
// stripped, trimmed, cgo-free executable (it runs on distroless static,
// which has no libc and no dynamic loader).
func TestStaticBinary(t *testing.T) {
	bin := processorBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("not an ELF executable: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("program header %s: the binary is dynamically linked", p.Type)
		}
	}
	if f.Section(".interp") != nil || f.Section(".dynamic") != nil {
		t.Error("the binary has .interp/.dynamic sections")
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary imports %v", libs)
	}
	// -s drops the symbol table, -w the DWARF (go version -m does not show
	// -ldflags when -trimpath is set, so look at the sections).
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table (want -ldflags=-s)")
	}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("the binary has DWARF section %s (want -ldflags=-w)", s.Name)
		}
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != want {
			t.Errorf("build setting %s=%q, want %q", k, settings[k], want)
		}
	}
	if v, ok := settings["-ldflags"]; ok && v != "-s -w" {
		t.Errorf("build setting -ldflags=%q, want \"-s -w\"", v)
	}
	if info.Path != "github.com/prechat/prechat/cmd/processor" {
		t.Errorf("main package %s", info.Path)
	}
	if want := "go" + dockerGoVersion(t); info.GoVersion != want {
		t.Errorf("built with %s, want %s (the Dockerfile's golang image)", info.GoVersion, want)
	}
	t.Logf("%s: static ELF, %s, settings %v", filepath.Base(bin), info.GoVersion, settings)
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

// TestEntrypoint: the commands the image and the chart run.
func TestEntrypoint(t *testing.T) {
	out, errOut, code := run(t, nil, "help")
	if code != 0 || !strings.Contains(out, "processor serve") || !strings.Contains(out, "processor migrate") {
		t.Errorf("processor help: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = run(t, nil, "settings", "check", "examples/settings.json")
	if code != 0 || !strings.Contains(out, "valid") {
		t.Errorf("processor settings check examples/settings.json: exit %d\n%s%s", code, out, errOut)
	}
	// The image's default command without configuration: a clear usage error.
	_, errOut, code = run(t, nil, "serve")
	if code != 2 || !strings.Contains(errOut, "DATABASE_URL") {
		t.Errorf("processor serve without configuration: exit %d, want 2 naming DATABASE_URL:\n%s", code, errOut)
	}
	_, errOut, code = run(t, nil, "migrate")
	if code != 2 || !strings.Contains(errOut, "DATABASE_URL") {
		t.Errorf("processor migrate without configuration: exit %d, want 2 naming DATABASE_URL:\n%s", code, errOut)
	}
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
