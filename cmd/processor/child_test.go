package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
)

// child is the processor binary (this test binary re-executing main) run as
// a child process.
type child struct {
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	exited chan struct{}
	err    error
}

// startProcessor runs the processor with args and env added to this
// process's environment; it is killed when the test ends.
func startProcessor(t *testing.T, env []string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], args...), exited: make(chan struct{})}
	c.cmd.Env = append(append(os.Environ(), "PRECHAT_TEST_RUN_MAIN=1"), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() { _ = c.cmd.Process.Kill(); <-c.exited })
	return c
}

// signal sends sig and waits up to d for the process to exit; it reports
// whether it did.
func (c *child) signal(sig syscall.Signal, d time.Duration) bool {
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// running reports whether the process has not exited yet.
func (c *child) running() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// logAddr waits up to d for a log line `msg ... "addr":"host:port"` (JSON
// or console format) and returns the address.
func (c *child) logAddr(t *testing.T, msg string, d time.Duration) string {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(msg) + `.*?"addr":\s?"([^"]+)"`)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(c.stderr.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q line within %v; log:\n%s", msg, d, c.stderr.String())
	return ""
}

// servedDocument decodes a document as the API serves it; ok is false when
// body is not one.
func servedDocument(body []byte) (doc mapping.Document, ok bool) {
	return doc, json.Unmarshal(body, &doc) == nil && doc.Version == 1
}

// hasDetail reports whether the served document body has a detail with this
// label and (JSON string) value.
func hasDetail(body []byte, label, value string) bool {
	doc, ok := servedDocument(body)
	if !ok {
		return false
	}
	for _, d := range doc.Details {
		var v string
		if d.Label == label && json.Unmarshal(d.Value, &v) == nil && v == value {
			return true
		}
	}
	return false
}
