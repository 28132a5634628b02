package helmtest_test

// The image run as a container, as the chart runs it: podman with a
// read-only root filesystem, the host's network (the local Postgres and an
// in-process Kafka broker listen on loopback), runc and cgroupfs.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// runFlags are podman run's flags for every container of these tests: the
// chart's readOnlyRootFilesystem, and ulimits podman can set on these hosts.
var runFlags = []string{"--read-only", "--network", "host",
	"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}

// settingsMount mounts the example settings file where SETTINGS_FILE points.
func settingsMount(t *testing.T) []string {
	return []string{"--volume", filepath.Join(repoRoot(t), "examples", "settings.json") + ":/etc/prechat/settings.json:ro"}
}

// runOnce runs the image to completion with extra podman run flags and
// the command's args, and returns its output and exit code.
func runOnce(t *testing.T, img builtImage, flags []string, args ...string) (string, int) {
	t.Helper()
	cmd := img.podmanCmd(append(append(append([]string{"run", "--rm"}, runFlags...), flags...), append([]string{img.ref}, args...)...)...)
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); ok {
		return string(out), exit.ExitCode()
	} else if err != nil {
		t.Fatalf("podman run %v: %v", args, err)
	}
	return string(out), 0
}

// TestImageCommands: the commands the chart and an operator run, in the
// container; and there is no shell to run instead.
func TestImageCommands(t *testing.T) {
	t.Parallel()
	img := image(t)
	if out, code := runOnce(t, img, nil, "help"); code != 0 || !strings.Contains(out, "processor serve") || !strings.Contains(out, "processor migrate") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
	if out, code := runOnce(t, img, settingsMount(t), "settings", "check", "/etc/prechat/settings.json"); code != 0 || !strings.Contains(out, "valid") {
		t.Errorf("settings check: exit %d\n%s", code, out)
	}
	// The default command without configuration: a usage error naming it.
	if out, code := runOnce(t, img, nil); code != 2 || !strings.Contains(out, "DATABASE_URL") {
		t.Errorf("serve without configuration: exit %d, want 2 naming DATABASE_URL:\n%s", code, out)
	}
	for _, sh := range []string{"/bin/sh", "/bin/bash", "/busybox"} {
		if out, code := runOnce(t, img, []string{"--entrypoint", sh}, "-c", "true"); code != 127 || !strings.Contains(out, "no such file") {
			t.Errorf("--entrypoint %s: exit %d, want 127 (no such file):\n%s", sh, code, out)
		}
	}
}

// TestImageServes: migrate, then serve, from the image against a fresh
// database and topic; a Segment event ingested by the container becomes a
// document the container serves; the process runs as 65532; SIGTERM stops
// it cleanly. It logs how long the container took to be ready.
func TestImageServes(t *testing.T) {
	t.Parallel()
	img := image(t)
	dbURL := newDatabase(t)
	topic := "prechat-image-" + randomHex(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(cluster.Close)

	migrations, _ := filepath.Glob(filepath.Join(repoRoot(t), "migrations", "*.sql"))
	began := time.Now()
	out, code := runOnce(t, img, []string{"--env", "DATABASE_URL=" + dbURL}, "migrate")
	if want := fmt.Sprintf("schema migrated from version 0 to %d", len(migrations)); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("migrate: exit %d, want 0 and %q:\n%s", code, want, out)
	}
	t.Logf("migrate container: %v", time.Since(began).Round(time.Millisecond))

	const writeKey = "wk-image"
	name := "prechat-serve-" + randomHex(t)
	env := []string{
		"DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + strings.Join(cluster.ListenAddrs(), ","),
		"KAFKA_TOPIC=" + topic, "KAFKA_GROUP=" + topic, "SETTINGS_FILE=/etc/prechat/settings.json",
		"HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "WRITE_KEYS=" + writeKey,
	}
	args := append(append([]string{"run", "--rm", "--name", name}, runFlags...), settingsMount(t)...)
	for _, e := range env {
		args = append(args, "--env", e)
	}
	cmd := img.podmanCmd(append(args, img.ref, "serve")...)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error // set before exited closes
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		_, _ = img.podman("rm", "--force", "--time", "0", name)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	})

	admin := "http://" + logAddr(t, &logs, exited, "admin listening")
	base := "http://" + logAddr(t, &logs, exited, "http listening")
	for {
		if res, err := http.Get(admin + "/readyz"); err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				t.Logf("container start to ready (/readyz 200, %s): %v", strings.TrimSpace(string(body)), time.Since(start).Round(time.Millisecond))
				break
			}
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("not ready within a minute; log:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The process in the container: the image's user, not root.
	pid, err := img.podman("inspect", "--format", "{{.State.Pid}}", name)
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/status")
	if err != nil {
		t.Fatalf("the container's process: %v", err)
	}
	if m := regexp.MustCompile(`(?m)^Uid:\s+(.*)$`).FindSubmatch(status); m == nil || strings.Join(strings.Fields(string(m[1])), " ") != "65532 65532 65532 65532" {
		t.Errorf("the container's process runs as uids %q, want 65532", m)
	}

	// A visitor identifies and starts a conversation, through the
	// container's ingest; the container's API serves the document.
	began = time.Now()
	const secret = "conversation-secret-of-the-image-test"
	sum := sha256.Sum256([]byte(secret))
	post(t, base+"/v1/i", `{"writeKey":"`+writeKey+`","anonymousId":"visitor-1","userId":"u1","messageId":"i1",`+
		`"traits":{"email":"ada@example.com","firstName":"Ada","lastName":"Lovelace"}}`)
	post(t, base+"/v1/t", `{"writeKey":"`+writeKey+`","event":"Live Chat Conversation Started","anonymousId":"visitor-1","messageId":"c1",`+
		`"properties":{"subject":"Shoes"},"context":{"prechat":{"tokenHash":"`+hex.EncodeToString(sum[:])+`"}}}`)
	req, err := http.NewRequest(http.MethodGet, base+"/v1/prechat/visitor-1?wait=20&after=i1,c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Prechat-Token", secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var doc struct {
		VisitorName string `json:"visitorName"`
		Complete    bool   `json:"complete"`
		Details     []struct {
			Label string `json:"label"`
			Value any    `json:"value"`
		} `json:"details"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &doc) != nil || !doc.Complete || doc.VisitorName != "Ada Lovelace" {
		t.Fatalf("GET the document: %d %s; log:\n%s", res.StatusCode, body, logs.String())
	}
	details := map[string]any{}
	for _, d := range doc.Details {
		details[d.Label] = d.Value
	}
	if details["User Email"] != "ada@example.com" || details["Subject"] != "Shoes" {
		t.Errorf("document details %v lack the email or the subject: %s", details, body)
	}
	t.Logf("ingest to document served: %v", time.Since(began).Round(time.Millisecond))
	began = time.Now()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("serve exited with %v after SIGTERM; log:\n%s", waitErr, logs.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("serve did not stop within 40s of SIGTERM; log:\n%s", logs.String())
	}
	t.Logf("SIGTERM to container exit: %v", time.Since(began).Round(time.Millisecond))
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("the log does not say it stopped:\n%s", logs.String())
	}
}

// post sends a Segment API request body and wants 200.
func post(t *testing.T, url, body string) {
	t.Helper()
	res, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %s", url, res.StatusCode, got)
	}
}

// logAddr waits for a log line `msg ... "addr":"host:port"` and returns
// the address; it fails the test when the container exits first.
func logAddr(t *testing.T, logs *syncBuffer, exited <-chan struct{}, msg string) string {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(msg) + `.*?"addr":\s?"([^"]+)"`)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		select {
		case <-exited:
			t.Fatalf("the container exited before logging %q:\n%s", msg, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %q line within a minute; log:\n%s", msg, logs.String())
	return ""
}

// newDatabase creates an empty database for this test, dropped at its end,
// and returns its URL.
func newDatabase(t *testing.T) string {
	t.Helper()
	u, drop, err := createDatabase("prechat_image_" + randomHex(t))
	if err != nil {
		t.Fatalf("the image tests need Postgres: %v", err)
	}
	t.Cleanup(drop)
	return u
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
