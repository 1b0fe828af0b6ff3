{{/* Name prefix of every object: the release name, or <release>-review-analytics if it lacks the chart name. */}}
{{- define "ra.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ra.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Labels of every object. Call with (dict "root" $ "name" "<fullname>-reducer"). */}}
{{- define "ra.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: review-analytics
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "ra.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Partitions of `events`: topics.eventsPartitions, or topics.partitions when empty. */}}
{{- define "ra.eventsPartitions" -}}
{{- default .Values.topics.partitions .Values.topics.eventsPartitions | int -}}
{{- end -}}

{{/* The Kafka connection settings (ConfigMap <release>-kafka, and the env of the setup-topics hook). */}}
{{- define "ra.kafkaSettings" -}}
{{- $k := .Values.kafka -}}
KAFKA_BOOTSTRAP_SERVERS: {{ required "kafka.bootstrapServers is required" $k.bootstrapServers | quote }}
KAFKA_SECURITY_PROTOCOL: {{ $k.securityProtocol | quote }}
{{- if and (eq $k.securityProtocol "SASL_PLAINTEXT") $k.allowSaslPlaintext }}
KAFKA_ALLOW_SASL_PLAINTEXT: "true"
{{- end }}
{{- if hasPrefix "SASL_" $k.securityProtocol }}
KAFKA_SASL_MECHANISM: {{ $k.sasl.mechanism | quote }}
KAFKA_SASL_USERNAME: {{ required "kafka.sasl.username is required by SASL_* protocols" $k.sasl.username | quote }}
{{- end }}
{{- end -}}

{{/* The settings of the setup-topics Job (env of the hook; a hook cannot rely on the release's ConfigMaps). */}}
{{- define "ra.setupTopicsSettings" -}}
{{- $t := .Values.topics -}}
SETUP_PARTITIONS: {{ $t.partitions | int | quote }}
SETUP_REPLICATION_FACTOR: {{ $t.replicationFactor | int | quote }}
{{- if $t.eventsPartitions }}
SETUP_EVENTS_PARTITIONS: {{ $t.eventsPartitions | int | quote }}
{{- end }}
PROCESSOR_FACTS_TOPIC: {{ $t.facts | quote }}
PROCESSOR_EVENTS_TOPIC: {{ $t.events | quote }}
PROCESSOR_GROUP_ID: {{ .Values.reducer.groupId | quote }}
{{- range $name, $value := .Values.setupTopics.settings }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/*
Rows of .Values.secretEnv that apply to one workload: call with (dict "root" $ "workload" "reducer").
Returns a YAML map {ENV: row} of the enabled rows (secretName set) whose `workloads` list names it.
*/}}
{{- define "ra.secretRows" -}}
{{- $rows := dict -}}
{{- range $env, $row := .root.Values.secretEnv -}}
{{- if and $row $row.secretName (has $.workload ($row.workloads | default list)) -}}
{{- $_ := set $rows $env $row -}}
{{- end -}}
{{- end -}}
{{- toYaml $rows -}}
{{- end -}}

{{/* Mount directory name of a file row of secretEnv: its mountDir, or the variable's name (KAFKA_SSL_CAFILE ->
kafka-ssl-cafile). Call with (list ENV row). */}}
{{- define "ra.secretMountName" -}}
{{- $env := index . 0 -}}{{- $row := index . 1 -}}
{{- default ($env | lower | replace "_" "-") $row.mountDir | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The Secret mounts of one workload (dict "root" $ "workload" ...): a YAML map {mount name: {secretName, optional,
keys: [...]}} of its file rows; rows sharing a mountDir share the volume and must name the same Secret.
*/}}
{{- define "ra.secretMounts" -}}
{{- $mounts := dict -}}
{{- range $env, $row := include "ra.secretRows" . | fromYaml -}}
{{- if $row.file -}}
{{- $mountName := include "ra.secretMountName" (list $env $row) -}}
{{- $mount := get $mounts $mountName | default (dict "secretName" $row.secretName "optional" true "keys" list) -}}
{{- if ne $mount.secretName $row.secretName -}}
{{- fail (printf "secretEnv.%s: mountDir %s already mounts Secret %s, not %s: rows sharing a mountDir name the same Secret" $env $mountName $mount.secretName $row.secretName) -}}
{{- end -}}
{{- $_ := set $mount "keys" (append $mount.keys $row.key | uniq) -}}
{{- $_ = set $mount "optional" (and $mount.optional $row.optional) -}}
{{- $_ = set $mounts $mountName $mount -}}
{{- end -}}
{{- end -}}
{{- toYaml $mounts -}}
{{- end -}}

{{/* `env` entries from secretEnv for one workload (dict "root" $ "workload" ...). */}}
{{- define "ra.secretEnvEntries" -}}
{{- range $env, $row := include "ra.secretRows" . | fromYaml }}
{{- if $row.file }}
- name: {{ $env }}
  value: {{ printf "/etc/review-analytics/%s/%s" (include "ra.secretMountName" (list $env $row)) $row.key | quote }}
{{- else }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef: {name: {{ $row.secretName }}, key: {{ $row.key }}{{ if $row.optional }}, optional: true{{ end }}}
{{- end }}
{{- end }}
{{- end -}}

{{/* `volumes` of the file rows of secretEnv for one workload: one per Secret mount, only the keys the rows name. */}}
{{- define "ra.secretVolumes" -}}
{{- range $mountName, $mount := include "ra.secretMounts" . | fromYaml }}
- name: {{ $mountName }}
  secret:
    secretName: {{ $mount.secretName }}
    defaultMode: 0440
    items:
      {{- range $key := $mount.keys }}
      - {key: {{ $key }}, path: {{ $key }}}
      {{- end }}
    {{- if $mount.optional }}
    optional: true
    {{- end }}
{{- end }}
{{- end -}}

{{/* `volumeMounts` of the file rows of secretEnv for one workload. */}}
{{- define "ra.secretVolumeMounts" -}}
{{- range $mountName, $mount := include "ra.secretMounts" . | fromYaml }}
- {name: {{ $mountName }}, mountPath: /etc/review-analytics/{{ $mountName }}, readOnly: true}
{{- end }}
{{- end -}}

{{/*
Refuse a `settings` entry of a Deployment that a dedicated value sets (the ConfigMap would hold the key twice),
or a static group membership id (every replica of a Deployment would share it and fence the others).
Call with (dict "where" "reducer" "settings" $v.settings "reserved" (dict ENV "<value path>" ...)).
*/}}
{{- define "ra.checkSettings" -}}
{{- range $env, $_ := .settings -}}
{{- if hasKey $.reserved $env -}}
{{- fail (printf "%s.settings.%s: set %s instead" $.where $env (get $.reserved $env)) -}}
{{- end -}}
{{- if hasSuffix "_GROUP_INSTANCE_ID" $env -}}
{{- fail (printf "%s.settings.%s: every replica of the Deployment would share it and fence the others; static membership needs a name per pod (a StatefulSet), which this chart does not deploy" $.where $env) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Refuse combinations the services would refuse at start, with the value to change. */}}
{{- define "ra.validate" -}}
{{- $k := .Values.kafka -}}
{{- if not (has $k.securityProtocol (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) -}}
{{- fail (printf "kafka.securityProtocol=%s: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL" $k.securityProtocol) -}}
{{- end -}}
{{- if hasPrefix "SASL_" $k.securityProtocol -}}
{{- if not (has $k.sasl.mechanism (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512")) -}}
{{- fail (printf "kafka.sasl.mechanism=%s: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512" $k.sasl.mechanism) -}}
{{- end -}}
{{- if not (dig "KAFKA_SASL_PASSWORD" "secretName" "" .Values.secretEnv) -}}
{{- fail (printf "kafka.securityProtocol=%s needs secretEnv.KAFKA_SASL_PASSWORD.secretName (the Secret holding the SASL password)" $k.securityProtocol) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $k.securityProtocol "SASL_PLAINTEXT") (not $k.allowSaslPlaintext) -}}
{{- fail "kafka.securityProtocol=SASL_PLAINTEXT sends credentials and data unencrypted: use SASL_SSL, or set kafka.allowSaslPlaintext=true to accept that" -}}
{{- end -}}
{{- range $env := list "KAFKA_SSL_CAFILE" "KAFKA_SSL_CERTFILE" "KAFKA_SSL_KEYFILE" -}}
{{- if and (dig $env "secretName" "" $.Values.secretEnv) (not (has $k.securityProtocol (list "SSL" "SASL_SSL"))) -}}
{{- fail (printf "secretEnv.%s is set but kafka.securityProtocol=%s does not use TLS: use SSL or SASL_SSL, or unset its secretName" $env $k.securityProtocol) -}}
{{- end -}}
{{- end -}}
{{- range $pair := list (list "KAFKA_SSL_KEYFILE" "KAFKA_SSL_CERTFILE") (list "SENDER_ENDPOINT_KEYFILE" "SENDER_ENDPOINT_CERTFILE") -}}
{{- if and (dig (index $pair 0) "secretName" "" $.Values.secretEnv) (not (dig (index $pair 1) "secretName" "" $.Values.secretEnv)) -}}
{{- fail (printf "secretEnv.%s is set without secretEnv.%s: set the certificate's secretName too" (index $pair 0) (index $pair 1)) -}}
{{- end -}}
{{- end -}}
{{- $partitions := .Values.topics.partitions | int -}}
{{- if lt $partitions 1 -}}
{{- fail (printf "topics.partitions=%v: must be at least 1" .Values.topics.partitions) -}}
{{- end -}}
{{- if not .Values.keda.enabled -}}
{{- if gt (.Values.reducer.replicas | int) $partitions -}}
{{- fail (printf "reducer.replicas=%v exceeds topics.partitions=%d: the extra replicas would idle" .Values.reducer.replicas $partitions) -}}
{{- end -}}
{{- if gt (.Values.sender.replicas | int) (include "ra.eventsPartitions" . | int) -}}
{{- fail (printf "sender.replicas=%v exceeds the partitions of %s (%s): the extra replicas would idle" .Values.sender.replicas .Values.topics.events (include "ra.eventsPartitions" .)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
