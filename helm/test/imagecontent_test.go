package helmtest_test

// What the built image is: its configuration and labels, every file in it,
// the binary (static, stripped, built by the Go go.mod names) and the SBOM.

import (
	"archive/zip"
	"bytes"
	"crypto/x509"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// maxImageBytes bounds the image: the binary and a few files. A base
// image, a toolchain or a package manager slipping in would exceed it.
const maxImageBytes = 40 << 20

// imageInspect is what podman image inspect says of the image.
type imageInspect struct {
	Size   int64
	Config struct {
		User         string
		Entrypoint   []string
		Cmd          []string
		Env          []string
		ExposedPorts map[string]struct{}
		Labels       map[string]string
	}
}

// TestImageConfig: non-root (65532, numerically, as the chart's
// securityContext and runAsNonRoot need), the processor as entrypoint with
// serve as its default command, the two ports, the labels with the version
// and revision the build was given, and the size bound.
func TestImageConfig(t *testing.T) {
	t.Parallel()
	img := image(t)
	out, err := img.podman("image", "inspect", img.ref)
	if err != nil {
		t.Fatal(err)
	}
	var inspected []imageInspect
	if err := json.Unmarshal([]byte(out), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	got := inspected[0]
	c := got.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/processor"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q, cmd %q; want [/processor] [serve]", c.Entrypoint, c.Cmd)
	}
	for _, p := range []string{"8080/tcp", "9090/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("exposed ports %v lack %s", c.ExposedPorts, p)
		}
	}
	if !slices.Contains(c.Env, "ZONEINFO=/zoneinfo.zip") {
		t.Errorf("environment %q lacks ZONEINFO=/zoneinfo.zip", c.Env)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  img.version,
		"org.opencontainers.image.revision": img.revision,
		"org.opencontainers.image.source":   "https://github.com/prechat/prechat",
		"org.opencontainers.image.title":    "prechat",
	} {
		if c.Labels[k] != want {
			t.Errorf("label %s=%q, want %q", k, c.Labels[k], want)
		}
	}
	if got.Size <= 0 || got.Size > maxImageBytes {
		t.Errorf("image size %d bytes, want at most %d", got.Size, maxImageBytes)
	}
	t.Logf("image %s: %.1f MB, built in %v", img.ref, float64(got.Size)/1e6, img.took.Round(100*time.Millisecond))
}

// imageFileModes are every file and directory the image holds, with their
// modes: nothing else (no shell, no libc, no package database).
var imageFileModes = map[string]fs.FileMode{
	"processor":                         0o555,
	"sbom.spdx.json":                    0o444,
	"zoneinfo.zip":                      0o444,
	"etc":                               fs.ModeDir | 0o755,
	"etc/passwd":                        0o444,
	"etc/group":                         0o444,
	"etc/ssl":                           fs.ModeDir | 0o755,
	"etc/ssl/certs":                     fs.ModeDir | 0o755,
	"etc/ssl/certs/ca-certificates.crt": 0o444,
}

// TestImageFiles: the image's filesystem is exactly the binary, its SBOM,
// the CA bundle, the time zone database and passwd/group, all owned by
// root and not writable by the user it runs as; each is what it claims.
func TestImageFiles(t *testing.T) {
	t.Parallel()
	img := image(t)
	seen := map[string]bool{}
	err := filepath.WalkDir(img.rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(img.rootfs, path)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want, ok := imageFileModes[rel]
		seen[rel] = true
		switch {
		case !ok:
			t.Errorf("the image holds /%s (%v), which the Dockerfile should not put there", rel, info.Mode())
		case info.Mode() != want:
			t.Errorf("/%s: mode %v, want %v", rel, info.Mode(), want)
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && (st.Uid != 0 || st.Gid != 0) {
			t.Errorf("/%s: owned by %d:%d, want root", rel, st.Uid, st.Gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for f := range imageFileModes {
		if !seen[f] {
			t.Errorf("the image lacks /%s", f)
		}
	}

	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(img.rootfs, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if !slices.Contains(strings.Split(string(read("etc/passwd")), "\n"), "nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin") {
		t.Errorf("/etc/passwd has no nonroot 65532 entry:\n%s", read("etc/passwd"))
	}
	if !slices.Contains(strings.Split(string(read("etc/group")), "\n"), "nonroot:x:65532:") {
		t.Errorf("/etc/group has no nonroot 65532 entry:\n%s", read("etc/group"))
	}
	certs, rest := 0, read("etc/ssl/certs/ca-certificates.crt")
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			t.Errorf("CA bundle: certificate %d: %v", certs+1, err)
		}
		certs++
	}
	if certs < 100 {
		t.Errorf("CA bundle: %d certificates, want the public roots (over 100)", certs)
	}
	zones := read("zoneinfo.zip")
	zr, err := zip.NewReader(bytes.NewReader(zones), int64(len(zones)))
	if err != nil {
		t.Fatalf("zoneinfo.zip: %v", err)
	}
	for _, name := range []string{"Europe/Berlin", "America/New_York", "UTC"} {
		f, err := zr.Open(name)
		if err != nil {
			t.Errorf("zoneinfo.zip: %v", err)
			continue
		}
		var data bytes.Buffer
		_, _ = data.ReadFrom(f)
		f.Close()
		if _, err := time.LoadLocationFromTZData(name, data.Bytes()); err != nil {
			t.Errorf("zoneinfo.zip: %s: %v", name, err)
		}
	}
	t.Logf("image files: %d CA certificates, %d time zones", certs, len(zr.File))
}

// TestImageBinary: the image's /processor is a static, stripped, trimmed,
// cgo-free executable for this platform (scratch has no libc and no
// dynamic loader), built from the processor command by the Go of go.mod's
// toolchain line.
func TestImageBinary(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(image(t).rootfs, "processor")
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
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true", "GOOS": "linux", "GOARCH": runtime.GOARCH} {
		if settings[k] != want {
			t.Errorf("build setting %s=%q, want %q", k, settings[k], want)
		}
	}
	if info.Path != "github.com/prechat/prechat/cmd/processor" {
		t.Errorf("main package %s", info.Path)
	}
	if want := goModToolchain(t, filepath.Join(repoRoot(t), "go.mod")); info.GoVersion != want {
		t.Errorf("built with %s, want %s (go.mod's toolchain)", info.GoVersion, want)
	}
	t.Logf("/processor: static ELF, %s, settings %v", info.GoVersion, settings)
}
