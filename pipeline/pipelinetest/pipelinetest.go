// Package pipelinetest runs Kafka for tests: an in-process kfake cluster that
// speaks the real Kafka protocol, and a franz-go producer that keys Segment
// events as the ingest does.
package pipelinetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/prechat/prechat/mapping"
)

// Name returns a name unique to this test run, for topics and groups.
func Name(t testing.TB, kind string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(name) > 60 {
		name = name[:60]
	}
	return kind + "-" + name + "-" + hex.EncodeToString(b)
}

// NewCluster starts a one-broker kfake cluster with the topics created with
// the given number of partitions, and returns its bootstrap addresses. It is
// closed when the test ends.
func NewCluster(t testing.TB, partitions int32, topics ...string) []string {
	t.Helper()
	return newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
}

// Secure configures NewSecureCluster.
type Secure struct {
	// Mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), User and Pass are
	// the only SASL credentials the cluster accepts.
	Mechanism, User, Pass string
	// TLS, if set, makes the cluster listen with TLS only.
	TLS *tls.Config
}

// NewSecureCluster is NewCluster with SASL required, and TLS if set.
func NewSecureCluster(t testing.TB, s Secure, partitions int32, topics ...string) []string {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...),
		kfake.EnableSASL(), kfake.Superuser(s.Mechanism, s.User, s.Pass)}
	if s.TLS != nil {
		opts = append(opts, kfake.TLS(s.TLS))
	}
	return newCluster(t, opts...)
}

// SelfSignedTLS returns a server TLS configuration for 127.0.0.1 and the
// PEM of the certificate that signs it, for clients to trust.
func SelfSignedTLS(t testing.TB) (*tls.Config, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newCluster(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// Produce writes values to topic, keyed by anonymousId (else userId) when
// the value decodes as an event, and waits for every acknowledgement.
func Produce(t testing.TB, brokers []string, topic string, values ...[]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(16<<20), kgo.MaxBufferedRecords(len(values)+1))
	if err != nil {
		t.Fatalf("create producer: %v", err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Value: v}
		if e, err := mapping.Decode(v, "x"); err == nil {
			recs[i].Key = []byte(e.PartitionKey())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d messages: %v", len(values), err)
	}
}

// ProduceAt writes one record to partition with a record time of millis
// milliseconds since the Unix epoch, and returns its offset. Kafka holds
// any int64 there and a producer sets it; the Go clients compute it from
// nanoseconds and cannot write times past the year 2262, so the record batch
// is built here.
func ProduceAt(t testing.TB, brokers []string, topic string, partition int32, millis int64, key, value []byte) int64 {
	t.Helper()
	rec := kmsg.Record{Key: key, Value: value}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // what follows the length, a 1-byte varint 0 here
	batch := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, FirstTimestamp: millis, MaxTimestamp: millis,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: rec.AppendTo(nil)}
	raw := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))                                          // Length: after itself
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))) // CRC: from Attributes on
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// Produce requests from Kafka 4.0 name topics by id; this one names it.
	res, err := request(brokers, req, kgo.MaxVersions(kversion.V3_9_0()))
	if err != nil {
		t.Fatalf("produce to %s/%d at %d ms: %v", topic, partition, millis, err)
	}
	for _, rt := range res.(*kmsg.ProduceResponse).Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("produce to %s/%d at %d ms: %v", topic, partition, millis, err)
			}
			return rp.BaseOffset
		}
	}
	t.Fatalf("produce to %s/%d at %d ms: no answer for the partition", topic, partition, millis)
	return 0
}

// DeleteRecords deletes a partition's messages before offset, as Kafka's
// retention does (the DeleteRecords API), and waits for the answer.
func DeleteRecords(t testing.TB, brokers []string, topic string, partition int32, before int64) {
	t.Helper()
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, before
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	res, err := request(brokers, req)
	if err != nil {
		t.Fatalf("delete records of %s/%d before %d: %v", topic, partition, before, err)
	}
	for _, rt := range res.(*kmsg.DeleteRecordsResponse).Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				t.Fatalf("delete records of %s/%d before %d: %v", topic, rp.Partition, before, err)
			}
		}
	}
}

// DescribeGroup returns a consumer group as the broker sees it: its state,
// and its members with their clients and assignments (DescribeGroups).
func DescribeGroup(brokers []string, group string) (kmsg.DescribeGroupsResponseGroup, error) {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	res, err := request(brokers, req)
	if err != nil {
		return kmsg.DescribeGroupsResponseGroup{}, fmt.Errorf("describe group %s: %w", group, err)
	}
	groups := res.(*kmsg.DescribeGroupsResponse).Groups
	if len(groups) != 1 {
		return kmsg.DescribeGroupsResponseGroup{}, fmt.Errorf("describe group %s: %d groups in the answer", group, len(groups))
	}
	if err := kerr.ErrorForCode(groups[0].ErrorCode); err != nil {
		return kmsg.DescribeGroupsResponseGroup{}, fmt.Errorf("describe group %s: %w", group, err)
	}
	return groups[0], nil
}

// request sends one request to the cluster with a short-lived client and
// returns the answer.
func request(brokers []string, req kmsg.Request, opts ...kgo.Opt) (kmsg.Response, error) {
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(brokers...))...)
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Request(ctx, req)
}
