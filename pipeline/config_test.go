package pipeline_test

import (
	"errors"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/pipeline"
)

// TestConfigValidateChecksRanges: the consumer's ranges are checked where
// its configuration lives, each error naming the field, and zero fields
// take their defaults.
func TestConfigValidateChecksRanges(t *testing.T) {
	t.Parallel()
	valid := func() pipeline.Config {
		return pipeline.Config{Brokers: []string{"b:9092"}, Topic: "t", GroupID: "g",
			Materializer: &mapping.Materializer{Settings: &mapping.Settings{}}}
	}
	if c := valid(); c.Validate() != nil {
		t.Fatalf("zero fields must take their defaults: %v", c.Validate())
	}
	for _, c := range []struct {
		field string
		edit  func(*pipeline.Config)
	}{
		{"Brokers", func(c *pipeline.Config) { c.Brokers = nil }},
		{"BatchSize", func(c *pipeline.Config) { c.BatchSize = pipeline.MaxBatchSize + 1 }},
		{"BatchSize", func(c *pipeline.Config) { c.BatchSize = -1 }},
		{"Lanes", func(c *pipeline.Config) { c.Lanes = pipeline.MaxLanes + 1 }},
		{"Lanes", func(c *pipeline.Config) { c.Lanes = -1 }},
		{"BatchTimeout", func(c *pipeline.Config) { c.BatchTimeout = -time.Second }},
		{"HeartbeatInterval", func(c *pipeline.Config) { c.HeartbeatInterval = 16 * time.Second }},
		{"HeartbeatInterval", func(c *pipeline.Config) { c.SessionTimeout = 5 * time.Second }},
	} {
		cfg := valid()
		c.edit(&cfg)
		var fe *pipeline.FieldError
		if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("want a FieldError for %s, got %v", c.field, err)
		}
	}
	cfg := valid()
	cfg.BatchSize, cfg.Lanes = pipeline.MaxBatchSize, pipeline.MaxLanes
	if err := cfg.Validate(); err != nil {
		t.Errorf("the bounds themselves are valid: %v", err)
	}
}
