{{/*
Checks that values.schema.json cannot express. Collects every problem and
fails once with the whole list.
*/}}
{{- define "prechat.validate" -}}
{{- $errs := list }}
{{- $v := .Values }}

{{- if and (not $v.consumer.enabled) (not $v.api.enabled) }}
{{- $errs = append $errs "consumer.enabled and api.enabled: at least one role must be enabled" }}
{{- end }}

{{- if not $v.kafka.brokers }}
{{- $errs = append $errs "kafka.brokers: required (bootstrap brokers, host:port)" }}
{{- end }}
{{- if and $v.keda.enabled $v.consumer.enabled }}
{{- if not $v.keda.prometheus.serverAddress }}
{{- $errs = append $errs "keda.prometheus.serverAddress: required when keda.enabled (the Prometheus KEDA queries for prechat_consumer_lag)" }}
{{- end }}
{{- if gt (int $v.keda.minReplicaCount) (int $v.keda.maxReplicaCount) }}
{{- $errs = append $errs "keda.minReplicaCount: must not exceed keda.maxReplicaCount" }}
{{- end }}
{{- if and $v.kafka.partitions (gt (int $v.keda.maxReplicaCount) (int $v.kafka.partitions)) }}
{{- $errs = append $errs (printf "keda.maxReplicaCount: %d consumers for %d partitions; members beyond the partition count sit idle" (int $v.keda.maxReplicaCount) (int $v.kafka.partitions)) }}
{{- end }}
{{- end }}
{{- if and $v.kafka.partitions $v.consumer.enabled (not $v.keda.enabled) (gt (int $v.consumer.replicaCount) (int $v.kafka.partitions)) }}
{{- $errs = append $errs (printf "consumer.replicaCount: %d consumers for %d partitions; members beyond the partition count sit idle" (int $v.consumer.replicaCount) (int $v.kafka.partitions)) }}
{{- end }}
{{- if and $v.kafka.sasl.mechanism (not $v.kafka.sasl.username) }}
{{- $errs = append $errs "kafka.sasl.username: required when kafka.sasl.mechanism is set" }}
{{- end }}

{{- if not $v.secrets.existingSecret }}
{{- if not $v.secrets.databaseURL }}
{{- $errs = append $errs "secrets.databaseURL or secrets.existingSecret: required (the Postgres connection string)" }}
{{- end }}
{{- if and $v.kafka.sasl.mechanism (not $v.secrets.kafkaSASLPassword) }}
{{- $errs = append $errs "secrets.kafkaSASLPassword: required when kafka.sasl.mechanism is set (or use secrets.existingSecret)" }}
{{- end }}
{{- if and $v.secrets.keys.apiDatabaseURL (not $v.secrets.apiDatabaseURL) }}
{{- $errs = append $errs "secrets.apiDatabaseURL: required when secrets.keys.apiDatabaseURL is set (or use secrets.existingSecret); the api pods would otherwise run as the owner" }}
{{- end }}
{{- if and $v.secrets.apiDatabaseURL (eq $v.secrets.apiDatabaseURL $v.secrets.databaseURL) }}
{{- $errs = append $errs "secrets.apiDatabaseURL: the same as secrets.databaseURL; give the api pods their own role, or leave it empty" }}
{{- end }}
{{- if and $v.secrets.serverWriteKeys (not $v.secrets.identitySecrets) }}
{{- $errs = append $errs "secrets.serverWriteKeys: needs secrets.identitySecrets, which the ingest signs the server events' userIds with" }}
{{- end }}
{{- range $v.secrets.serverWriteKeys }}
{{- if has . $v.secrets.writeKeys }}
{{- $errs = append $errs "secrets.serverWriteKeys: a key is also in secrets.writeKeys; browser write keys are public, server ones must not be" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $v.secrets.existingSecret (eq $v.secrets.keys.apiDatabaseURL $v.secrets.keys.databaseURL) }}
{{- $errs = append $errs "secrets.keys.apiDatabaseURL: the same key as secrets.keys.databaseURL; name the api role's key, or leave it empty" }}
{{- end }}

{{- if and $v.identity.jwtKeys.configMap $v.identity.jwtKeys.secret }}
{{- $errs = append $errs "identity.jwtKeys.configMap and identity.jwtKeys.secret: set one, not both" }}
{{- end }}
{{- if and (or $v.identity.jwtIssuer $v.identity.jwtAudience) (not (include "prechat.jwtKeys" .)) }}
{{- $errs = append $errs "identity.jwtIssuer and identity.jwtAudience: need identity.jwtKeys.configMap or identity.jwtKeys.secret (IDENTITY_JWT_KEYS)" }}
{{- end }}

{{- if $v.existingSettingsConfigMap.name }}
{{- if $v.settings }}
{{- $errs = append $errs "settings and existingSettingsConfigMap.name: set one, not both" }}
{{- end }}
{{- else if not $v.settings }}
{{- $errs = append $errs "settings or existingSettingsConfigMap.name: required (the destination settings JSON)" }}
{{- else if kindIs "string" $v.settings }}
{{- if not (regexMatch "^\\s*\\{" $v.settings) }}
{{- $errs = append $errs "settings: a string must hold a JSON object (--set-file settings=settings.json)" }}
{{- else if hasKey (fromJson $v.settings) "Error" }}
{{- $errs = append $errs (printf "settings: not valid JSON: %s" (get (fromJson $v.settings) "Error")) }}
{{- end }}
{{- end }}

{{- $grace := include "prechat.durationSeconds" $v.config.shutdownGrace | float64 }}
{{- if $v.consumer.enabled }}
{{- if le (float64 $v.consumer.terminationGracePeriodSeconds) $grace }}
{{- $errs = append $errs (printf "consumer.terminationGracePeriodSeconds: %v must be longer than config.shutdownGrace (%s)" $v.consumer.terminationGracePeriodSeconds $v.config.shutdownGrace) }}
{{- end }}
{{- end }}
{{- if $v.api.enabled }}
{{- if le (float64 $v.api.terminationGracePeriodSeconds) (addf $grace $v.api.preStopSleepSeconds) }}
{{- $errs = append $errs (printf "api.terminationGracePeriodSeconds: %v must be longer than config.shutdownGrace (%s) plus api.preStopSleepSeconds (%v)" $v.api.terminationGracePeriodSeconds $v.config.shutdownGrace $v.api.preStopSleepSeconds) }}
{{- end }}
{{- if and $v.api.autoscaling.enabled (gt (int $v.api.autoscaling.minReplicas) (int $v.api.autoscaling.maxReplicas)) }}
{{- $errs = append $errs "api.autoscaling.minReplicas: must not exceed maxReplicas" }}
{{- end }}
{{- end }}
{{- if and $v.api.ingress.enabled (not $v.api.enabled) }}
{{- $errs = append $errs "api.ingress.enabled: needs api.enabled" }}
{{- end }}

{{- range $role := list "consumer" "api" "migrations" }}
{{- $limit := dig "resources" "limits" "memory" "" (get $v $role) }}
{{- if and $limit (not (include "prechat.memoryBytes" $limit)) }}
{{- $errs = append $errs (printf "%s.resources.limits.memory: %v is not a quantity such as 512Mi or 1G" $role $limit) }}
{{- end }}
{{- end }}

{{- if $errs }}
{{- fail (printf "\n\nprechat: invalid values:\n  - %s\n" (join "\n  - " $errs)) }}
{{- end }}
{{- end }}
