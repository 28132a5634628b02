package helmtest_test

// Building the image: the repository's Dockerfile, unchanged, with buildah
// (no Docker engine), storage in a directory of this test run (vfs, its own
// --root and --runroot, so parallel runs do not share state), and no
// registry: the Dockerfile's final stage is scratch, and its builder,
// golang:<go.mod's toolchain>, is assembled here from the same Go release
// (the golang.org/toolchain module the go command itself runs, the files of
// go.dev/dl's archive) and the host's Debian CA bundle, under the official
// image's name, environment and paths. The build runs without a network
// (--network none): modules come from this machine's module cache through
// the Dockerfile's GOPROXY argument, verified by go.sum.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// containerTools are the commands the image tests run; scripts/helm-test
// installs them (Debian: apt-get install buildah podman runc).
var containerTools = []string{"buildah", "podman", "runc"}

// storage is a containers/storage root of this test run, which buildah
// and podman share (the image buildah builds is the one podman runs).
type storage struct {
	root, runroot, tmp string
}

func (s storage) flags() []string {
	return []string{"--root", s.root, "--runroot", s.runroot, "--storage-driver", "vfs"}
}

// buildah runs buildah on this storage and returns its combined output.
func (s storage) buildah(args ...string) (string, error) {
	return combined(exec.Command("buildah", append(s.flags(), args...)...))
}

// podmanCmd is podman on this storage with runc and cgroupfs (crun fails
// on hosts with hybrid cgroups; cgroupfs needs no systemd).
func (s storage) podmanCmd(args ...string) *exec.Cmd {
	global := append(s.flags(), "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--tmpdir", s.tmp, "--events-backend", "file")
	return exec.Command("podman", append(global, args...)...)
}

// podman runs podman on this storage and returns its combined output.
func (s storage) podman(args ...string) (string, error) {
	return combined(s.podmanCmd(args...))
}

func combined(cmd *exec.Cmd) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return out.String(), err
}

// builtImage is the image the Dockerfile built in this test run.
type builtImage struct {
	storage
	ref      string        // the local name podman runs
	version  string        // the VERSION build argument (the chart's appVersion)
	revision string        // the REVISION build argument (the repository's HEAD)
	rootfs   string        // its filesystem, mounted read-only on the host
	took     time.Duration // the buildah build, builder excluded
}

var (
	imageOnce sync.Once
	imageErr  error
	theImage  builtImage
	imageDir  string // removed by TestMain
)

// image builds the image once per test run; every test that needs it gets
// the same one. A host that cannot build it fails the test, saying why.
func image(t *testing.T) builtImage {
	t.Helper()
	imageOnce.Do(func() {
		imageErr = fmt.Errorf("the image build did not finish (see the first test that asked for it)")
		imageErr = buildImage(t)
	})
	if imageErr != nil {
		t.Fatalf("building the image: %v", imageErr)
	}
	return theImage
}

func buildImage(t *testing.T) error {
	for _, tool := range containerTools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%v: the image tests need %s; scripts/helm-test installs them as root (apt-get install buildah podman runc)",
				err, strings.Join(containerTools, ", "))
		}
	}
	dir, err := os.MkdirTemp("", "prechat-image-")
	if err != nil {
		return err
	}
	imageDir = dir
	st := storage{root: filepath.Join(dir, "root"), runroot: filepath.Join(dir, "run"), tmp: filepath.Join(dir, "tmp")}
	root := repoRoot(t)

	goVersion := dockerGoVersion(t)
	start := time.Now()
	if err := buildBuilder(st, goVersion); err != nil {
		return fmt.Errorf("assembling the builder golang:%s: %w", goVersion, err)
	}
	t.Logf("builder golang:%s assembled from the Go distribution in %v", goVersion, time.Since(start).Round(100*time.Millisecond))

	// The modules of go.mod in this machine's cache, served to the build
	// as a file:// module proxy.
	download := exec.Command("go", "mod", "download")
	download.Dir = root
	if _, err := combined(download); err != nil {
		return err
	}
	modcache, err := goEnv(root, "", "GOMODCACHE")
	if err != nil {
		return err
	}

	img := builtImage{storage: st, ref: "localhost/prechat:test", version: chartAppVersion(t), revision: gitRevision(t)}
	start = time.Now()
	if _, err := st.buildah("build", "--pull=never", "--network", "none", "--runtime", "runc",
		"--platform", runtime.GOOS+"/"+runtime.GOARCH,
		"--volume", filepath.Join(modcache, "cache", "download")+":/goproxy:ro",
		"--build-arg", "GOPROXY=file:///goproxy",
		"--build-arg", "VERSION="+img.version, "--build-arg", "REVISION="+img.revision,
		"--tag", img.ref, "--file", filepath.Join(root, "Dockerfile"), root); err != nil {
		return err
	}
	img.took = time.Since(start)
	t.Logf("buildah build of the Dockerfile: %v", img.took.Round(100*time.Millisecond))
	out, err := st.podman("image", "mount", img.ref)
	if err != nil {
		return err
	}
	img.rootfs = strings.TrimSpace(out)
	theImage = img
	return nil
}

// buildBuilder commits the local golang:<version> the Dockerfile's build
// stage starts from: the Go distribution at /usr/local/go, the CA bundle at
// Debian's path, /tmp, and the official image's environment and workdir.
func buildBuilder(st storage, version string) error {
	goroot, err := goEnv("", "go"+version, "GOROOT")
	if err != nil {
		return err
	}
	if v, err := os.ReadFile(filepath.Join(goroot, "VERSION")); err != nil || !strings.HasPrefix(string(v), "go"+version+"\n") {
		return fmt.Errorf("%s is not the go%s distribution (VERSION: %q, %v)", goroot, version, v, err)
	}
	const caBundle = "/etc/ssl/certs/ca-certificates.crt"
	empty, err := os.MkdirTemp(filepath.Dir(st.root), "empty-")
	if err != nil {
		return err
	}
	out, err := st.buildah("from", "scratch")
	if err != nil {
		return err
	}
	ctr := strings.TrimSpace(out)
	for _, args := range [][]string{
		{"copy", ctr, goroot, "/usr/local/go"},
		{"copy", ctr, caBundle, caBundle},
		{"copy", "--chmod", "1777", ctr, empty, "/tmp"},
		{"config", "--workingdir", "/go",
			"--env", "PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"--env", "GOLANG_VERSION=" + version, "--env", "GOTOOLCHAIN=local", "--env", "GOPATH=/go", ctr},
		{"commit", "--rm", ctr, "docker.io/library/golang:" + version},
	} {
		if _, err := st.buildah(args...); err != nil {
			return err
		}
	}
	return nil
}

// goEnv is `go env NAME` in dir, with GOTOOLCHAIN=toolchain if set (the go
// command then fetches that release if it is not in the module cache).
func goEnv(dir, toolchain, name string) (string, error) {
	cmd := exec.Command("go", "env", name)
	cmd.Dir = dir
	if toolchain != "" {
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+toolchain)
	}
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// gitRevision is the repository's HEAD commit, the image's revision label.
func gitRevision(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD (the image's revision label): %v", err)
	}
	return strings.TrimSpace(string(out))
}

// chartAppVersion is the chart's appVersion, the tag its values pull by
// default and the version the test image is labelled with.
func chartAppVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "appVersion:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	t.Fatal("Chart.yaml has no appVersion")
	return ""
}

// removeImageStorage deletes the run's containers and storage.
func removeImageStorage() {
	if imageDir == "" {
		return
	}
	if theImage.ref != "" {
		_, _ = theImage.podman("rm", "--all", "--force")
		_, _ = theImage.podman("image", "unmount", "--all")
	}
	if err := os.RemoveAll(imageDir); err != nil {
		fmt.Fprintf(os.Stderr, "remove the image tests' storage %s: %v\n", imageDir, err)
	}
}
