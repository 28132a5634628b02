package helmtest_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// badValues are value sets that must be refused, by values.schema.json
// (stage "schema") or by the chart's own checks (stage "template": fail).
var badValues = []struct {
	name    string
	stage   string
	snippet string   // merged over ci/default-values.yaml
	want    []string // substrings of the error
}{
	// values.schema.json: unknown keys and wrong types.
	{"unknown top-level key", "schema", "replicas: 3", []string{"additional properties 'replicas' not allowed"}},
	{"unknown top-level key (typo)", "schema", "serviceMonitor: {enabled: true}", []string{"'serviceMonitor' not allowed"}},
	{"unknown nested key", "schema", "consumer: {replicas: 3}", []string{"/consumer", "'replicas' not allowed"}},
	{"replicaCount as string", "schema", "consumer: {replicaCount: two}", []string{"/consumer/replicaCount", "want integer"}},
	{"brokers as string", "schema", "kafka: {brokers: 'kafka:9092'}", []string{"/kafka/brokers", "want array"}},
	{"broker without port", "schema", "kafka: {brokers: [kafka]}", []string{"/kafka/brokers/0"}},
	{"boolean as string", "schema", "api: {autoscaling: {enabled: 'yes'}}", []string{"/api/autoscaling/enabled", "want boolean"}},
	{"write keys as string", "schema", "secrets: {writeKeys: 'a,b'}", []string{"/secrets/writeKeys", "want array"}},
	{"pull policy", "schema", "image: {pullPolicy: Sometimes}", []string{"/image/pullPolicy"}},
	{"log level", "schema", "config: {logLevel: verbose}", []string{"/config/logLevel"}},
	{"duration as number", "schema", "config: {shutdownGrace: 20}", []string{"/config/shutdownGrace", "want string"}},
	{"duration without unit", "schema", "config: {shutdownGrace: '20'}", []string{"/config/shutdownGrace"}},
	{"start offset", "schema", "kafka: {startOffset: beginning}", []string{"/kafka/startOffset"}},
	{"SASL mechanism", "schema", "kafka: {sasl: {mechanism: gssapi}}", []string{"/kafka/sasl/mechanism"}},
	{"memory limit", "schema", "consumer: {resources: {limits: {memory: lots}}}", []string{"/consumer/resources/limits/memory"}},
	{"memory ratio", "schema", "goRuntime: {memLimitRatio: 1.5}", []string{"/goRuntime/memLimitRatio"}},
	{"settings as list", "schema", "settings: [a]", []string{"/settings"}},
	{"CORS origin", "schema", "config: {allowedOrigins: [www.example.com]}", []string{"/config/allowedOrigins/0"}},
	{"document access", "schema", "config: {documentAccess: anyone}", []string{"/config/documentAccess"}},
	{"no waiters per client", "schema", "config: {maxWaitersPerClient: 0}", []string{"/config/maxWaitersPerClient"}},
	{"ingest bytes below a batch", "schema", "config: {maxIngestBytes: 1000}", []string{"/config/maxIngestBytes"}},
	{"no ingest request per client", "schema", "config: {maxIngestRequestsPerClient: 0}", []string{"/config/maxIngestRequestsPerClient"}},
	{"lock timeout not a duration", "schema", "config: {databaseLockTimeout: soon}", []string{"/config/databaseLockTimeout"}},
	{"pprof not a boolean", "schema", "config: {pprof: maybe}", []string{"/config/pprof"}},
	{"short identity secret", "schema", "secrets: {identitySecrets: [too-short]}", []string{"/secrets/identitySecrets/0", "minLength: got 9, want 32"}},
	{"identity secret with a comma", "schema", "secrets: {identitySecrets: ['a-b-c-d-e-f-0123456789abcdef0123456789,x']}", []string{"/secrets/identitySecrets/0"}},
	{"identity secrets as string", "schema", "secrets: {identitySecrets: 0123456789abcdef0123456789abcdef}", []string{"/secrets/identitySecrets", "want array"}},
	{"event time without unit", "schema", "config: {eventTimePast: '24'}", []string{"/config/eventTimePast"}},
	{"token keys path", "schema", "identity: {jwtKeys: {configMap: jwks, key: ../etc/passwd}}", []string{"/identity/jwtKeys/key"}},
	{"unknown identity key", "schema", "identity: {jwksURL: https://x}", []string{"/identity", "'jwksURL' not allowed"}},
	{"unknown alert left out", "schema", "prometheusRule: {disabled: [PrechatTypo]}", []string{"/prometheusRule/disabled/0"}},
	{"runbook base with a fragment", "schema", "prometheusRule: {runbookBaseURL: 'docs/x.md#y'}", []string{"/prometheusRule/runbookBaseURL"}},
	{"volume mount without path", "schema", "extraVolumeMounts: [{name: pg-ca}]", []string{"/extraVolumeMounts/0", "mountPath"}},
	{"envFrom typo", "schema", "extraEnvFrom: [{secretReff: {name: x}}]", []string{"/extraEnvFrom/0", "'secretReff' not allowed"}},
	{"KEDA server not a URL", "schema", "keda: {prometheus: {serverAddress: 'prometheus:9090'}}", []string{"/keda/prometheus/serverAddress"}},
	{"dashboard label value not a string", "schema", "grafanaDashboard: {labelValue: 1}", []string{"/grafanaDashboard/labelValue", "want string"}},

	// Template checks (fail): what a schema cannot say.
	{"grace not longer than SHUTDOWN_GRACE", "template", "consumer: {terminationGracePeriodSeconds: 20}",
		[]string{"consumer.terminationGracePeriodSeconds: 20 must be longer than config.shutdownGrace (20s)"}},
	{"grace not longer than SHUTDOWN_GRACE + preStop", "template", "api: {terminationGracePeriodSeconds: 25}",
		[]string{"api.terminationGracePeriodSeconds: 25 must be longer than config.shutdownGrace (20s) plus api.preStopSleepSeconds (5)"}},
	{"SHUTDOWN_GRACE in minutes", "template", "config: {shutdownGrace: 1m30s}",
		[]string{"consumer.terminationGracePeriodSeconds: 30 must be longer than config.shutdownGrace (1m30s)", "api.terminationGracePeriodSeconds"}},
	{"no role", "template", "consumer: {enabled: false}\napi: {enabled: false}", []string{"at least one role must be enabled"}},
	{"more consumers than partitions", "template", "kafka: {partitions: 3}\nconsumer: {replicaCount: 4}",
		[]string{"consumer.replicaCount: 4 consumers for 3 partitions"}},
	{"SASL without password", "template", "kafka: {sasl: {mechanism: scram-sha-256, username: prechat}}",
		[]string{"secrets.kafkaSASLPassword: required"}},
	{"SASL without user", "template", "kafka: {sasl: {mechanism: plain}}\nsecrets: {kafkaSASLPassword: pw}",
		[]string{"kafka.sasl.username: required"}},
	{"settings not JSON", "template", "settings: '{\"hostname\": '", []string{"settings: not valid JSON"}},
	{"settings twice", "template", "existingSettingsConfigMap: {name: other}", []string{"set one, not both"}},
	{"ingress without api", "template", "api: {enabled: false, ingress: {enabled: true}}", []string{"api.ingress.enabled: needs api.enabled"}},
	{"api role key without its URL", "template", "secrets: {keys: {apiDatabaseURL: API_DATABASE_URL}}",
		[]string{"secrets.apiDatabaseURL: required when secrets.keys.apiDatabaseURL is set"}},
	{"api role as the owner", "template", "secrets: {apiDatabaseURL: 'postgres://prechat:s3cr3t-db-password@postgres.db.svc:5432/prechat?sslmode=require'}",
		[]string{"secrets.apiDatabaseURL: the same as secrets.databaseURL"}},
	{"api role key as the owner's", "template", "secrets: {existingSecret: creds, keys: {apiDatabaseURL: DATABASE_URL}}",
		[]string{"secrets.keys.apiDatabaseURL: the same key as secrets.keys.databaseURL"}},
	{"server keys without identity secret", "template", "secrets: {serverWriteKeys: [srv]}",
		[]string{"secrets.serverWriteKeys: needs secrets.identitySecrets"}},
	{"server key that is a browser key", "template", "secrets: {writeKeys: [wk], serverWriteKeys: [wk], identitySecrets: [0123456789abcdef0123456789abcdef]}",
		[]string{"secrets.serverWriteKeys: a key is also in secrets.writeKeys"}},
	{"token keys twice", "template", "identity: {jwtKeys: {configMap: a, secret: b}}", []string{"identity.jwtKeys.configMap and identity.jwtKeys.secret: set one, not both"}},
	{"issuer without token keys", "template", "identity: {jwtIssuer: 'https://shop.example.com'}",
		[]string{"identity.jwtIssuer and identity.jwtAudience: need identity.jwtKeys"}},
	{"KEDA without Prometheus", "template", "keda: {enabled: true}", []string{"keda.prometheus.serverAddress: required when keda.enabled"}},
	{"KEDA beyond the partitions", "template", "kafka: {partitions: 3}\nkeda: {enabled: true, maxReplicaCount: 6, prometheus: {serverAddress: 'http://prometheus:9090'}}",
		[]string{"keda.maxReplicaCount: 6 consumers for 3 partitions"}},
	{"KEDA min above max", "template", "keda: {enabled: true, minReplicaCount: 4, maxReplicaCount: 2, prometheus: {serverAddress: 'http://prometheus:9090'}}",
		[]string{"keda.minReplicaCount: must not exceed keda.maxReplicaCount"}},
	{"HPA min above max", "template", "api: {autoscaling: {enabled: true, minReplicas: 5, maxReplicas: 3}}", []string{"minReplicas: must not exceed maxReplicas"}},
}

// TestBadValuesRejected: each bad value set fails the install render with a
// message naming the value; schema violations fail "helm lint --strict" too.
func TestBadValuesRejected(t *testing.T) {
	base := readValues(t, valueSetFile("default"))
	for _, tc := range badValues {
		t.Run(tc.name, func(t *testing.T) {
			vals := with(t, base, tc.snippet)
			_, err := render(vals)
			if err == nil {
				t.Fatalf("rendered without error")
			}
			msg := err.Error()
			stage := map[string]string{
				"schema":   "values don't meet the specifications of the schema",
				"template": "prechat: invalid values",
			}[tc.stage]
			if !strings.Contains(msg, stage) {
				t.Errorf("want a %s error (%q), got: %v", tc.stage, stage, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q: %v", w, msg)
				}
			}
			if tc.stage == "template" {
				// helm lint renders in lint mode, where fail and required
				// only log: the install render above is what refuses them.
				return
			}
			lintMsg := errors.Join(lint(vals)...)
			if lintMsg == nil {
				t.Fatalf("helm lint --strict accepts it")
			}
			for _, w := range tc.want {
				if !strings.Contains(lintMsg.Error(), w) {
					t.Errorf("lint error does not contain %q: %v", w, lintMsg)
				}
			}
		})
	}
}

// TestRequiredValues: with nothing but the chart's defaults, install fails
// listing every input that has no default, all at once.
func TestRequiredValues(t *testing.T) {
	_, err := render(map[string]any{})
	if err == nil {
		t.Fatal("the bare defaults rendered; kafka.brokers, the database URL and the settings have no default")
	}
	for _, want := range []string{
		"kafka.brokers: required",
		"secrets.databaseURL or secrets.existingSecret: required",
		"settings or existingSettingsConfigMap.name: required",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q: %v", want, err)
		}
	}
}

// TestValuesFileIsValid: the chart's own values.yaml passes its schema, and
// every top-level key of values.yaml is declared in it (so that
// additionalProperties false does not reject the defaults).
func TestValuesFileIsValid(t *testing.T) {
	defaults := readValues(t, chartDir+"/values.yaml")
	schemaProps := readSchemaProperties(t)
	for k := range defaults {
		if _, ok := schemaProps[k]; !ok {
			t.Errorf("values.yaml key %q is not in values.schema.json", k)
		}
	}
	for k := range schemaProps {
		if _, ok := defaults[k]; !ok && k != "global" {
			t.Errorf("values.schema.json declares %q, which values.yaml does not document", k)
		}
	}
}

func readSchemaProperties(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(chartDir + "/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Schema               string         `json:"$schema"`
		AdditionalProperties *bool          `json:"additionalProperties"`
		Properties           map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	if schema.Schema != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("values.schema.json: $schema %q, want draft-07", schema.Schema)
	}
	if schema.AdditionalProperties == nil || *schema.AdditionalProperties {
		t.Errorf("values.schema.json: top-level additionalProperties must be false")
	}
	return schema.Properties
}
