package persistence_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's run when a goroutine that a test started
// is still running after every test ended.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
