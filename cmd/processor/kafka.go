package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// kafkaDialer builds the dialer for the configured TLS and SASL settings.
func (c *Config) kafkaDialer() (*kafka.Dialer, error) {
	d := &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true}
	if c.KafkaTLS || c.KafkaTLSCAFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.KafkaTLSCAFile != "" {
			pem, err := os.ReadFile(c.KafkaTLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %s holds no PEM certificate", c.KafkaTLSCAFile)
			}
		}
		d.TLS = tc
	}
	var mech sasl.Mechanism
	var err error
	switch c.KafkaSASLMechanism {
	case "plain":
		mech = plain.Mechanism{Username: c.KafkaSASLUsername, Password: c.KafkaSASLPassword}
	case "scram-sha-256":
		mech, err = scram.Mechanism(scram.SHA256, c.KafkaSASLUsername, c.KafkaSASLPassword)
	case "scram-sha-512":
		mech, err = scram.Mechanism(scram.SHA512, c.KafkaSASLUsername, c.KafkaSASLPassword)
	}
	if err != nil {
		return nil, fmt.Errorf("KAFKA_SASL_MECHANISM: %w", err)
	}
	d.SASLMechanism = mech
	return d, nil
}

func (c *Config) brokers() []string {
	out := make([]string, len(c.KafkaBrokers))
	for i, b := range c.KafkaBrokers {
		out[i] = strings.TrimSpace(b)
	}
	return out
}

func (c *Config) startOffset() int64 {
	if c.KafkaStartOffset == "latest" {
		return kafka.LastOffset
	}
	return kafka.FirstOffset
}
