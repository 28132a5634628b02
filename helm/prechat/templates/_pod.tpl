{{/*
Environment of the processor container: (dict "root" $ "component" "consumer"|"api"|"migrate").
Non-secret configuration as values, secrets only through secretKeyRef.
*/}}
{{- define "prechat.env" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $c := .component }}
{{- $secret := include "prechat.secretName" $root }}
{{- $res := dict }}
{{- if eq $c "migrate" }}{{ $res = $v.migrations.resources }}{{ else }}{{ $res = (get $v $c).resources }}{{ end }}
{{- $apiKey := include "prechat.apiDatabaseURLKey" $root }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ if and (eq $c "migrate") (include "prechat.createSecret" $root) }}{{ include "prechat.componentName" (dict "root" $root "component" "migrate") }}{{ else }}{{ $secret }}{{ end }}
      key: {{ if and (eq $c "api") $apiKey }}{{ $apiKey }}{{ else }}{{ $v.secrets.keys.databaseURL }}{{ end }}
- name: LOG_LEVEL
  value: {{ $v.config.logLevel | quote }}
- name: LOG_FORMAT
  value: {{ $v.config.logFormat | quote }}
- name: DATABASE_STATEMENT_TIMEOUT
  value: {{ $v.config.databaseStatementTimeout | toString | quote }}
- name: DATABASE_LOCK_TIMEOUT
  value: {{ $v.config.databaseLockTimeout | toString | quote }}
- name: DATABASE_IDLE_IN_TRANSACTION_TIMEOUT
  value: {{ $v.config.databaseIdleInTransactionTimeout | toString | quote }}
{{- if ne $c "migrate" }}
- name: DATABASE_MAX_CONNS
  value: {{ $v.config.databaseMaxConns | int | quote }}
- name: PPROF
  value: {{ $v.config.pprof | toString | quote }}
- name: ROLES
  value: {{ $c | quote }}
- name: ADMIN_ADDR
  value: {{ printf ":%v" $v.ports.admin | quote }}
- name: SETTINGS_FILE
  value: {{ printf "%s/%s" (include "prechat.settingsDir" $root) (include "prechat.settingsKey" $root) | quote }}
- name: PRECHAT_TTL
  value: {{ $v.config.prechatTTL | quote }}
- name: SHUTDOWN_GRACE
  value: {{ $v.config.shutdownGrace | quote }}
- name: KAFKA_BROKERS
  value: {{ join "," $v.kafka.brokers | quote }}
- name: KAFKA_TOPIC
  value: {{ $v.kafka.topic | quote }}
- name: KAFKA_GROUP
  value: {{ $v.kafka.group | quote }}
{{- if $v.kafka.tls.caSecret.name }}
- name: KAFKA_TLS
  value: "true"
- name: KAFKA_TLS_CA_FILE
  value: {{ printf "%s/ca.crt" (include "prechat.kafkaCADir" $root) | quote }}
{{- else if $v.kafka.tls.enabled }}
- name: KAFKA_TLS
  value: "true"
{{- end }}
{{- if $v.kafka.sasl.mechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ $v.kafka.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ $v.kafka.sasl.username | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.kafkaSASLPassword }}
{{- end }}
{{- if or $v.secrets.existingSecret $v.secrets.identitySecrets }}
- name: IDENTITY_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.identitySecret }}
      {{- if $v.secrets.existingSecret }}
      optional: true
      {{- end }}
{{- end }}
{{- end }}
{{- if eq $c "consumer" }}
- name: KAFKA_START_OFFSET
  value: {{ $v.kafka.startOffset | quote }}
- name: BATCH_SIZE
  value: {{ $v.config.batchSize | int | quote }}
- name: BATCH_TIMEOUT
  value: {{ $v.config.batchTimeout | quote }}
- name: APPLY_LANES
  value: {{ $v.config.applyLanes | int | quote }}
- name: EVENT_TIME_PAST
  value: {{ $v.config.eventTimePast | quote }}
- name: EVENT_TIME_FUTURE
  value: {{ $v.config.eventTimeFuture | quote }}
{{- if include "prechat.jwtKeys" $root }}
- name: IDENTITY_JWT_KEYS
  value: {{ printf "%s/%s" (include "prechat.jwtKeysDir" $root) $v.identity.jwtKeys.key | quote }}
{{- end }}
{{- with $v.identity.jwtIssuer }}
- name: IDENTITY_JWT_ISSUER
  value: {{ . | quote }}
{{- end }}
{{- with $v.identity.jwtAudience }}
- name: IDENTITY_JWT_AUDIENCE
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if eq $c "api" }}
- name: HTTP_ADDR
  value: {{ printf ":%v" $v.ports.http | quote }}
{{- if or $v.secrets.existingSecret $v.secrets.writeKeys }}
- name: WRITE_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.writeKeys }}
      {{- if $v.secrets.existingSecret }}
      optional: true
      {{- end }}
{{- end }}
{{- if or $v.secrets.existingSecret $v.secrets.serverWriteKeys }}
- name: SERVER_WRITE_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $v.secrets.keys.serverWriteKeys }}
      {{- if $v.secrets.existingSecret }}
      optional: true
      {{- end }}
{{- end }}
{{- with $v.config.allowedOrigins }}
- name: ALLOWED_ORIGINS
  value: {{ join "," . | quote }}
{{- end }}
{{- with $v.config.deploymentScriptURL }}
- name: DEPLOYMENT_SCRIPT_URL
  value: {{ . | quote }}
{{- end }}
- name: RATE_LIMIT
  value: {{ $v.config.rateLimit | toString | quote }}
- name: MAX_WAITERS
  value: {{ $v.config.maxWaiters | int | quote }}
- name: MAX_WAITERS_PER_CLIENT
  value: {{ $v.config.maxWaitersPerClient | int | quote }}
- name: DOCUMENT_ACCESS
  value: {{ $v.config.documentAccess | quote }}
- name: DOCUMENT_READ_TIMEOUT
  value: {{ $v.config.documentReadTimeout | quote }}
{{- with $v.config.clientIPHeader }}
- name: CLIENT_IP_HEADER
  value: {{ . | quote }}
{{- end }}
- name: TRUSTED_PROXIES
  value: {{ $v.config.trustedProxies | toString | quote }}
- name: RATE_LIMIT_CLIENTS
  value: {{ $v.config.rateLimitClients | int | quote }}
- name: INGEST_RATE_LIMIT
  value: {{ $v.config.ingestRateLimit | toString | quote }}
- name: MAX_INGEST_REQUESTS
  value: {{ $v.config.maxIngestRequests | int | quote }}
- name: MAX_INGEST_REQUESTS_PER_CLIENT
  value: {{ $v.config.maxIngestRequestsPerClient | int | quote }}
- name: MAX_INGEST_BYTES
  value: {{ $v.config.maxIngestBytes | int64 | quote }}
{{- end }}
{{- if and $v.goRuntime.maxProcsFromLimits (dig "limits" "cpu" "" $res) }}
- name: GOMAXPROCS
  valueFrom:
    resourceFieldRef:
      containerName: processor
      resource: limits.cpu
      divisor: "1"
{{- end }}
{{- with (dig "limits" "memory" "" $res) }}
{{- $bytes := include "prechat.memoryBytes" . | float64 }}
- name: GOMEMLIMIT
  value: {{ mulf $bytes $v.goRuntime.memLimitRatio | floor | int64 | quote }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- if ne $c "migrate" }}
{{- with (get $v $c).extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The consumer or API Deployment: (dict "root" $ "component" "consumer"|"api").
*/}}
{{- define "prechat.deployment" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $c := .component }}
{{- $role := get $v $c }}
{{- $ctx := dict "root" $root "component" $c }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "prechat.componentName" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "prechat.componentLabels" $ctx | nindent 4 }}
spec:
  {{- if not (or (and (eq $c "api") $role.autoscaling.enabled) (and (eq $c "consumer") $v.keda.enabled)) }}
  replicas: {{ $role.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- with $role.strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "prechat.componentSelectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "prechat.componentLabels" $ctx | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $role.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- include "prechat.checksumAnnotations" $root | trim | nindent 8 }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $role.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "prechat.serviceAccountName" $root }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $role.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $role.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      containers:
        - name: processor
          image: {{ include "prechat.image" $root }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args: ["serve"]
          env:
            {{- include "prechat.env" $ctx | trim | nindent 12 }}
          {{- with $v.extraEnvFrom }}
          envFrom:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            {{- if eq $c "api" }}
            - name: http
              containerPort: {{ $v.ports.http }}
              protocol: TCP
            {{- end }}
            - name: admin
              containerPort: {{ $v.ports.admin }}
              protocol: TCP
          startupProbe:
            httpGet:
              path: /healthz
              port: admin
            {{- toYaml $v.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: admin
            {{- toYaml $v.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: admin
            {{- toYaml $v.probes.readiness | nindent 12 }}
          {{- if and (eq $c "api") $role.preStopSleepSeconds }}
          lifecycle:
            preStop:
              sleep:
                seconds: {{ $role.preStopSleepSeconds }}
          {{- end }}
          {{- with $role.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- toYaml $v.securityContext | nindent 12 }}
          volumeMounts:
            - name: settings
              mountPath: {{ include "prechat.settingsDir" $root }}
              readOnly: true
            {{- if $v.kafka.tls.caSecret.name }}
            - name: kafka-ca
              mountPath: {{ include "prechat.kafkaCADir" $root }}
              readOnly: true
            {{- end }}
            {{- if and (eq $c "consumer") (include "prechat.jwtKeys" $root) }}
            - name: identity-jwt-keys
              mountPath: {{ include "prechat.jwtKeysDir" $root }}
              readOnly: true
            {{- end }}
            - name: tmp
              mountPath: /tmp
            {{- with $v.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: settings
          configMap:
            name: {{ include "prechat.settingsConfigMapName" $root }}
            items:
              - key: {{ include "prechat.settingsKey" $root }}
                path: {{ include "prechat.settingsKey" $root }}
        {{- if $v.kafka.tls.caSecret.name }}
        - name: kafka-ca
          secret:
            secretName: {{ $v.kafka.tls.caSecret.name }}
            items:
              - key: {{ $v.kafka.tls.caSecret.key }}
                path: ca.crt
        {{- end }}
        {{- if and (eq $c "consumer") (include "prechat.jwtKeys" $root) }}
        {{- $jwt := $v.identity.jwtKeys }}
        - name: identity-jwt-keys
          {{- if $jwt.configMap }}
          configMap:
            name: {{ $jwt.configMap }}
          {{- else }}
          secret:
            secretName: {{ $jwt.secret }}
          {{- end }}
            items:
              - key: {{ $jwt.key }}
                path: {{ $jwt.key }}
        {{- end }}
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- with $v.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- if $role.affinity }}
      affinity:
        {{- toYaml $role.affinity | nindent 8 }}
      {{- else }}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- include "prechat.componentSelectorLabels" $ctx | nindent 20 }}
      {{- end }}
      {{- with $role.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- range . }}
        {{- $tsc := deepCopy . }}
        {{- if not (hasKey $tsc "labelSelector") }}
        {{- $_ := set $tsc "labelSelector" (dict "matchLabels" (include "prechat.componentSelectorLabels" $ctx | fromYaml)) }}
        {{- end }}
        - {{- toYaml $tsc | nindent 10 }}
        {{- end }}
      {{- end }}
      {{- with $role.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $role.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/*
A PodDisruptionBudget: (dict "root" $ "component" "consumer"|"api").
*/}}
{{- define "prechat.pdb" -}}
{{- $ctx := dict "root" .root "component" .component }}
{{- $pdb := (get .root.Values .component).podDisruptionBudget }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "prechat.componentName" $ctx }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "prechat.componentLabels" $ctx | nindent 4 }}
spec:
  {{- if or $pdb.minAvailable (eq (toString $pdb.minAvailable) "0") }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "prechat.componentSelectorLabels" $ctx | nindent 6 }}
{{- end }}
