{{/*
Expand the name of the chart.
*/}}
{{- define "prechat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name. Truncated at 52 characters so that
suffixes such as "-consumer" and "-migrate" keep names within 63.
If the release name contains the chart name it is used as the full name.
*/}}
{{- define "prechat.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version as used by the chart label.
*/}}
{{- define "prechat.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "prechat.labels" -}}
helm.sh/chart: {{ include "prechat.chart" . }}
{{ include "prechat.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "prechat.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "prechat.selectorLabels" -}}
app.kubernetes.io/name: {{ include "prechat.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of one component (consumer, api, migrate): (dict "root" $ "component" "api").
*/}}
{{- define "prechat.componentLabels" -}}
{{ include "prechat.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Selector labels of one component: (dict "root" $ "component" "api").
*/}}
{{- define "prechat.componentSelectorLabels" -}}
{{ include "prechat.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Name of a component's resources: (dict "root" $ "component" "api").
*/}}
{{- define "prechat.componentName" -}}
{{- printf "%s-%s" (include "prechat.fullname" .root) .component }}
{{- end }}

{{/*
The ServiceAccount of the consumer and API pods.
*/}}
{{- define "prechat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "prechat.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The ServiceAccount of the migration Job: a pre-install hook runs before the
chart's own ServiceAccount exists, so it uses an explicit name, an existing
ServiceAccount (serviceAccount.create=false), or the namespace's default.
Empty means: leave serviceAccountName unset.
*/}}
{{- define "prechat.migrationsServiceAccountName" -}}
{{- if .Values.migrations.serviceAccountName }}
{{- .Values.migrations.serviceAccountName }}
{{- else if and (not .Values.serviceAccount.create) .Values.serviceAccount.name }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference.
*/}}
{{- define "prechat.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The Secret holding DATABASE_URL, WRITE_KEYS, KAFKA_SASL_PASSWORD and the
identity secrets.
*/}}
{{- define "prechat.secretName" -}}
{{- default (include "prechat.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
Whether the chart creates the Secret ("true" or empty).
*/}}
{{- define "prechat.createSecret" -}}
{{- if not .Values.secrets.existingSecret }}true{{ end }}
{{- end }}

{{/*
The key of the api pods' own DATABASE_URL in the Secret, or empty when they
use the owner's: secrets.keys.apiDatabaseURL in an existing Secret; in the
chart's, that key (default API_DATABASE_URL) once secrets.apiDatabaseURL is set.
*/}}
{{- define "prechat.apiDatabaseURLKey" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.keys.apiDatabaseURL }}
{{- else if .Values.secrets.apiDatabaseURL }}
{{- default "API_DATABASE_URL" .Values.secrets.keys.apiDatabaseURL }}
{{- end }}
{{- end }}

{{/*
The data of the chart-created Secret (also hashed into checksum/secret).
*/}}
{{- define "prechat.secretData" -}}
{{ .Values.secrets.keys.databaseURL }}: {{ .Values.secrets.databaseURL | b64enc | quote }}
{{- with include "prechat.apiDatabaseURLKey" . }}
{{ . }}: {{ $.Values.secrets.apiDatabaseURL | b64enc | quote }}
{{- end }}
{{- if .Values.secrets.identitySecrets }}
{{ .Values.secrets.keys.identitySecret }}: {{ join "," .Values.secrets.identitySecrets | b64enc | quote }}
{{- end }}
{{- if .Values.secrets.serverWriteKeys }}
{{ .Values.secrets.keys.serverWriteKeys }}: {{ join "," .Values.secrets.serverWriteKeys | b64enc | quote }}
{{- end }}
{{- if .Values.secrets.writeKeys }}
{{ .Values.secrets.keys.writeKeys }}: {{ join "," .Values.secrets.writeKeys | b64enc | quote }}
{{- end }}
{{- if .Values.kafka.sasl.mechanism }}
{{ .Values.secrets.keys.kafkaSASLPassword }}: {{ .Values.secrets.kafkaSASLPassword | b64enc | quote }}
{{- end }}
{{- end }}

{{/*
The settings ConfigMap and the key of the JSON in it.
*/}}
{{- define "prechat.settingsConfigMapName" -}}
{{- default (printf "%s-settings" (include "prechat.fullname" .)) .Values.existingSettingsConfigMap.name }}
{{- end }}

{{- define "prechat.settingsKey" -}}
{{- if .Values.existingSettingsConfigMap.name }}
{{- .Values.existingSettingsConfigMap.key }}
{{- else -}}
settings.json
{{- end }}
{{- end }}

{{/*
The settings JSON of the chart-created ConfigMap: a string is used as it is
(--set-file settings=FILE), an object is rendered as JSON.
*/}}
{{- define "prechat.settingsJSON" -}}
{{- if kindIs "string" .Values.settings }}
{{- .Values.settings }}
{{- else }}
{{- toPrettyJson .Values.settings }}
{{- end }}
{{- end }}

{{/* Where the settings, the Kafka CA bundle and the identity token keys are mounted. */}}
{{- define "prechat.settingsDir" -}}/etc/prechat/settings{{- end }}
{{- define "prechat.kafkaCADir" -}}/etc/prechat/kafka-ca{{- end }}
{{- define "prechat.jwtKeysDir" -}}/etc/prechat/identity{{- end }}

{{/*
Whether the consumer verifies identity tokens ("true" or empty): a ConfigMap
or a Secret of public keys is named.
*/}}
{{- define "prechat.jwtKeys" -}}
{{- if or .Values.identity.jwtKeys.configMap .Values.identity.jwtKeys.secret }}true{{ end }}
{{- end }}

{{/*
A Go duration ("20s", "1m30s", "500ms") in seconds, as a decimal string.
*/}}
{{- define "prechat.durationSeconds" -}}
{{- $d := toString . }}
{{- $units := dict "ns" 0.000000001 "us" 0.000001 "µs" 0.000001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" $d -1 }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" . }}
{{- $total = addf $total (mulf (float64 $num) (get $units (trimPrefix $num .))) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
A memory quantity ("512Mi", "1G", 536870912) in bytes, or "" when it has a
form this chart does not parse.
*/}}
{{- define "prechat.memoryBytes" -}}
{{- $q := . }}
{{- if or (kindIs "float64" $q) (kindIs "int64" $q) (kindIs "int" $q) }}
{{- $q | int64 }}
{{- else }}
{{- $q = toString $q }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $mult := dict "" 1.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 }}
{{- $suffix := trimPrefix $num $q }}
{{- if and $num (hasKey $mult $suffix) }}
{{- mulf (float64 $num) (get $mult $suffix) | floor | int64 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Pod annotations shared by the consumer and API pods: checksums that roll the
pods when the settings or the chart-created Secret change.
*/}}
{{- define "prechat.checksumAnnotations" -}}
{{- if .Values.existingSettingsConfigMap.name }}
checksum/settings: {{ printf "configmap/%s/%s" .Values.existingSettingsConfigMap.name .Values.existingSettingsConfigMap.key | sha256sum }}
{{- else }}
checksum/settings: {{ include "prechat.settingsJSON" . | sha256sum }}
{{- end }}
{{- if include "prechat.createSecret" . }}
checksum/secret: {{ include "prechat.secretData" . | sha256sum }}
{{- end }}
{{- end }}

{{/*
PromQL label matchers that pick this release's series, for the alerts, the
KEDA trigger: prometheusRule.selector when set (even to ""), else the
namespace and the jobs of the chart's ServiceMonitor (one per metrics Service).
*/}}
{{- define "prechat.promSelector" -}}
{{- if kindIs "string" .Values.prometheusRule.selector }}
{{- .Values.prometheusRule.selector }}
{{- else }}
{{- printf "namespace=%q,job=~%q" .Release.Namespace (printf "%s-(consumer|api)-metrics" (include "prechat.fullname" .)) }}
{{- end }}
{{- end }}
