{{/* The five services, in the order their objects are rendered. */}}
{{- define "grantline.serviceNames" -}}
registry authorization consent token introspection
{{- end }}

{{- define "grantline.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped base name; objects append the service or purpose (38 characters leave room for
"-example-resource-server" in a 63-character Service name). */}}
{{- define "grantline.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 38 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 38 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "grantline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "grantline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: grantline
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "token") */}}
{{- define "grantline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "grantline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "grantline.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "grantline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- .Values.serviceAccount.name | default (include "grantline.fullname" .) }}
{{- else }}
{{- .Values.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{- define "grantline.ingressHost" -}}
{{- .Values.ingress.host | default (urlParse .Values.issuer).host }}
{{- end }}

{{/*
Which service holds which secret, under which variable (README, "Keys by purpose"). A service is
given only these: its own private keys and the public keys it checks with.
*/}}
{{- define "grantline.secretEnv" -}}
registry:
  GRANTLINE_ADMIN_TOKEN: adminToken
  GRANTLINE_CREDENTIALS_ENCRYPTION_KEY: credentialsEncryptionKey
authorization:
  GRANTLINE_SESSION_SIGNING_KEY: sessionSigningKey
  GRANTLINE_VERDICT_VERIFY_KEYS: verdictVerifyKeys
  GRANTLINE_CODE_SIGNING_KEY: codeSigningKey
  GRANTLINE_CODE_ENCRYPTION_KEY: codeEncryptionKey
  GRANTLINE_CREDENTIALS_DECRYPTION_KEY: credentialsDecryptionKey
  GRANTLINE_CSRF_KEY: authorizationCsrfKey
consent:
  GRANTLINE_ADMIN_TOKEN: adminToken
  GRANTLINE_SESSION_VERIFY_KEYS: sessionVerifyKeys
  GRANTLINE_VERDICT_SIGNING_KEY: verdictSigningKey
  GRANTLINE_CSRF_KEY: consentCsrfKey
token:
  GRANTLINE_ADMIN_TOKEN: adminToken
  GRANTLINE_CODE_VERIFY_KEYS: codeVerifyKeys
  GRANTLINE_CODE_DECRYPTION_KEY: codeDecryptionKey
introspection:
  GRANTLINE_INTROSPECTION_SIGNING_KEY: introspectionSigningKey
{{- end }}

{{/* The Secret of one purpose: its existingSecret, or the one the chart makes. (dict "root" $ "id" "adminToken") */}}
{{- define "grantline.secretName" -}}
{{- $s := index .root.Values.secrets .id }}
{{- $s.existingSecret | default (printf "%s-%s" (include "grantline.fullname" .root) (kebabcase .id)) }}
{{- end }}

{{- define "grantline.secretKey" -}}
{{- $s := index .root.Values.secrets .id }}
{{- if $s.existingSecret }}{{ $s.existingSecretKey | default "value" }}{{ else }}value{{ end }}
{{- end }}

{{/* Connection strings and the SASL password: existingSecret, or the chart's `<fullname>-connections`. */}}
{{- define "grantline.connectionSecret" -}}
{{- .existing | default (printf "%s-connections" (include "grantline.fullname" .root)) }}
{{- end }}

{{/* KAFKA_TOPIC_PARTITIONS: `topic=count,...` in a stable order */}}
{{- define "grantline.topicPartitions" -}}
{{- $pairs := list }}
{{- range $topic, $count := .Values.kafka.topicPartitions }}
{{- $pairs = append $pairs (printf "%s=%d" $topic (int $count)) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/*
The environment every Grantline process shares, as a map: the ConfigMap's data, and the migration
Job's env (a pre-install hook runs before the ConfigMap exists).
*/}}
{{- define "grantline.commonConfig" -}}
NODE_ENV: production
HOST: "0.0.0.0"
PORT: {{ .Values.ports.http | quote }}
MANAGEMENT_PORT: {{ .Values.ports.management | quote }}
LOG_LEVEL: {{ .Values.logLevel | quote }}
SHUTDOWN_TIMEOUT_MS: {{ .Values.shutdownTimeoutMs | quote }}
GRANTLINE_ISSUER: {{ .Values.issuer | quote }}
GRANTLINE_TRUSTED_PROXIES: {{ .Values.trustedProxies | quote }}
DATABASE_POOL_SIZE: {{ .Values.postgres.poolSize | quote }}
KAFKA_BROKERS: {{ required "kafka.brokers is required" .Values.kafka.brokers | quote }}
KAFKA_TOPIC_PREFIX: {{ .Values.kafka.topicPrefix | quote }}
KAFKA_TOPIC_PARTITIONS: {{ include "grantline.topicPartitions" . | quote }}
KAFKA_SSL: {{ .Values.kafka.tls.enabled | ternary "true" "false" | quote }}
{{- with .Values.kafka.sasl.mechanism }}
KAFKA_SASL_MECHANISM: {{ . | quote }}
KAFKA_SASL_USERNAME: {{ $.Values.kafka.sasl.username | quote }}
{{- end }}
{{- with .Values.otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
{{- if .Values.kafka.tls.caSecret }}
NODE_EXTRA_CA_CERTS: /etc/grantline/kafka-ca/ca.crt
{{- end }}
{{- end }}

{{/* DATABASE_URL, REDIS_URL and KAFKA_SASL_PASSWORD from their Secrets, as env entries */}}
{{- define "grantline.connectionEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "grantline.connectionSecret" (dict "root" . "existing" .Values.postgres.existingSecret) }}
      key: {{ if .Values.postgres.existingSecret }}{{ .Values.postgres.existingSecretKey }}{{ else }}DATABASE_URL{{ end }}
{{- if or .Values.redis.url .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "grantline.connectionSecret" (dict "root" . "existing" .Values.redis.existingSecret) }}
      key: {{ if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}REDIS_URL{{ end }}
{{- end }}
{{- if .Values.kafka.sasl.mechanism }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "grantline.connectionSecret" (dict "root" . "existing" .Values.kafka.sasl.existingSecret) }}
      key: {{ if .Values.kafka.sasl.existingSecret }}{{ .Values.kafka.sasl.existingSecretKey }}{{ else }}KAFKA_SASL_PASSWORD{{ end }}
{{- end }}
{{- end }}

{{- define "grantline.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
# no Grantline process calls the Kubernetes API
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Volumes every container mounts: a writable /tmp (the root filesystem is read-only), the Kafka CA */}}
{{- define "grantline.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
{{- end }}
{{- end }}

{{- define "grantline.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/grantline/kafka-ca
  readOnly: true
{{- end }}
{{- end }}
