package mapping_test

import (
	"strings"
	"testing"

	"github.com/prechat/prechat/mapping"
)

func TestLogIDHidesTheID(t *testing.T) {
	t.Parallel()
	// sha256("ada@example.com") starts b5fc85e55755.
	if got := mapping.LogID("ada@example.com"); got != "id:b5fc85e55755" || strings.Contains(got, "ada") {
		t.Fatalf("LogID = %q", got)
	}
	if mapping.LogID("ada@example.com") == mapping.LogID("ada@example.org") {
		t.Fatal("two ids share a LogID")
	}
}
