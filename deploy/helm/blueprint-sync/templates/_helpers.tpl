{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "blueprint-sync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources: 63 characters at most (DNS label limit);
the release name alone when it already contains the chart name.
*/}}
{{- define "blueprint-sync.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version for the helm.sh/chart label.
*/}}
{{- define "blueprint-sync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "blueprint-sync.labels" -}}
helm.sh/chart: {{ include "blueprint-sync.chart" . }}
{{ include "blueprint-sync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: blueprint-sync
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels: stable for the life of the release (a Deployment selector is immutable).
*/}}
{{- define "blueprint-sync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "blueprint-sync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount the pod runs as.
*/}}
{{- define "blueprint-sync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "blueprint-sync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY, or ""
when the pod gets no static key (TKE workload identity). Fails on half-set values.
*/}}
{{- define "blueprint-sync.credentialsSecret" -}}
{{- $c := .Values.credentials }}
{{- if $c.existingSecret }}
{{- if or $c.secretId $c.secretKey }}
{{- fail "credentials: set either existingSecret or secretId/secretKey, not both" }}
{{- end }}
{{- $c.existingSecret }}
{{- else if or $c.secretId $c.secretKey }}
{{- if not (and $c.secretId $c.secretKey) }}
{{- fail "credentials: secretId and secretKey must be set together" }}
{{- end }}
{{- printf "%s-credentials" (include "blueprint-sync.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Image reference [REGISTRY/]REPOSITORY(@DIGEST|:TAG): global.imageRegistry wins over
image.registry (a parent chart or a mirror moves every image at once); digest wins over
tag; tag defaults to appVersion.
*/}}
{{- define "blueprint-sync.image" -}}
{{- $registry := .Values.global.imageRegistry | default .Values.image.registry }}
{{- $repo := .Values.image.repository }}
{{- if $registry }}
{{- $repo = printf "%s/%s" (trimSuffix "/" $registry) $repo }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The pod's topologySpreadConstraints as YAML, or "" for none. topologySpreadConstraints
null: in postgres mode with several replicas one soft spread across zones (nodes are
covered by the default anti-affinity); otherwise none. A list replaces the default; an item
without labelSelector selects this release's pods.
*/}}
{{- define "blueprint-sync.topologySpreadConstraints" -}}
{{- $given := .Values.topologySpreadConstraints }}
{{- $selector := dict "matchLabels" (dict "app.kubernetes.io/name" (include "blueprint-sync.name" .) "app.kubernetes.io/instance" .Release.Name) }}
{{- $out := list }}
{{- if kindIs "invalid" $given }}
{{- if and (include "blueprint-sync.postgres" .) (gt (int .Values.replicaCount) 1) }}
{{- $out = list (dict "maxSkew" 1 "topologyKey" "topology.kubernetes.io/zone" "whenUnsatisfiable" "ScheduleAnyway" "labelSelector" $selector) }}
{{- end }}
{{- else }}
{{- range $given }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" $selector }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- end }}
{{- if $out }}
{{- toYaml $out }}
{{- end }}
{{- end }}

{{/*
"true" when the NetworkPolicy lets the pod reach the CVM metadata service: asked for, or by
default (cvmMetadata.enabled null) when the pod gets no static key, so the credential chain
may end at the node's CVM role. Empty otherwise.
*/}}
{{- define "blueprint-sync.cvmMetadataEgress" -}}
{{- $on := .Values.networkPolicy.cvmMetadata.enabled -}}
{{- if kindIs "invalid" $on }}{{ if not (include "blueprint-sync.credentialsSecret" .) }}true{{ end }}{{ else if $on }}true{{ end }}
{{- end }}

{{/*
"true" when the `helm test` Pod is rendered: helmTest.enabled, unless mTLS requires a
client certificate and helmTest.clientCertSecret names none (the test could only fail).
*/}}
{{- define "blueprint-sync.helmTestEnabled" -}}
{{- if and .Values.helmTest.enabled (not (include "blueprint-sync.helmTestNeedsClientCert" .)) }}true{{ end }}
{{- end }}

{{/*
"true" when mTLS is on and no client certificate is given for the helm test.
*/}}
{{- define "blueprint-sync.helmTestNeedsClientCert" -}}
{{- if and .Values.tls.enabled .Values.tls.mtls (not .Values.helmTest.clientCertSecret) }}true{{ end }}
{{- end }}

{{/*
The name the chart's TLS clients verify in the server's certificate: tls.serverName, or
the Service's DNS name (what the helm test connects to).
*/}}
{{- define "blueprint-sync.tlsServerName" -}}
{{- .Values.tls.serverName | default (printf "%s.%s.svc" (include "blueprint-sync.fullname" .) .Release.Namespace) }}
{{- end }}

{{/*
Labels of the test Pod: the release's labels but another app.kubernetes.io/name, so the
Service, the PDB and the NetworkPolicy (which select name + instance) never select it.
*/}}
{{- define "blueprint-sync.testSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-test" (include "blueprint-sync.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: helm-test
{{- end }}

{{/*
Name of the claim holding the SQLite file.
*/}}
{{- define "blueprint-sync.claimName" -}}
{{- default (printf "%s-data" (include "blueprint-sync.fullname" .) | trunc 63 | trimSuffix "-") .Values.persistence.existingClaim }}
{{- end }}

{{/*
"true" when the plaintext health port is on: asked for, or implied by TLS (kubelet gRPC
probes cannot speak TLS, so with TLS they must use this port). Empty otherwise.
*/}}
{{- define "blueprint-sync.healthPortEnabled" -}}
{{- if or .Values.healthPort.enabled .Values.tls.enabled }}true{{ end }}
{{- end }}

{{/*
"true" when the h2Guard sidecar (nghttpx) fronts the gRPC port: asked for, or by default
(enabled: null) whenever TLS is off. Empty otherwise. nghttpx would terminate TLS and the
server would lose the client certificate its authorization reads, so TLS and the guard
exclude each other.
*/}}
{{- define "blueprint-sync.h2GuardEnabled" -}}
{{- $on := .Values.h2Guard.enabled -}}
{{- if and .Values.tls.enabled (eq (toString $on) "true") }}
{{- fail "h2Guard.enabled and tls.enabled cannot both be true: nghttpx would terminate TLS, and blueprint-syncd would lose the client certificate its mTLS authorization uses. Set h2Guard.enabled: false (or leave it null) and put the TLS port behind a service-mesh sidecar or an ingress with the CVE-2023-44487 fix (deploy/README.md)" }}
{{- end }}
{{- if kindIs "invalid" $on }}{{ if not .Values.tls.enabled }}true{{ end }}{{ else if $on }}true{{ end }}
{{- end }}

{{/*
Port the probes use: the health port when it is on, else the gRPC port.
*/}}
{{- define "blueprint-sync.probePort" -}}
{{- if include "blueprint-sync.healthPortEnabled" . }}{{ .Values.healthPort.port | int }}{{ else }}{{ .Values.server.port | int }}{{ end }}
{{- end }}

{{/*
Where the TLS Secret and the authorization policy are mounted (read-only).
*/}}
{{- define "blueprint-sync.tlsDir" -}}/etc/blueprint-sync/tls{{- end }}
{{- define "blueprint-sync.authzDir" -}}/etc/blueprint-sync/authz{{- end }}

{{/*
Name of the ConfigMap the chart creates for authz.writers/readers, or "" when the policy
comes from an existing ConfigMap or Secret (or authz is off). Fails on settings the server
would reject at start.
*/}}
{{- define "blueprint-sync.authzConfigMap" -}}
{{- $a := .Values.authz }}
{{- if $a.enabled }}
{{- if not (and .Values.tls.enabled .Values.tls.mtls) }}
{{- fail "authz.enabled needs tls.enabled and tls.mtls: callers are identified by their client certificates" }}
{{- end }}
{{- if and $a.existingConfigMap $a.existingSecret }}
{{- fail "authz: set existingConfigMap or existingSecret, not both" }}
{{- end }}
{{- if not (or $a.existingConfigMap $a.existingSecret) }}
{{- if not (or $a.writers $a.readers) }}
{{- fail "authz.enabled: list at least one of authz.writers / authz.readers (or use existingConfigMap / existingSecret)" }}
{{- end }}
{{- printf "%s-authz" (include "blueprint-sync.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"true" in postgres mode (several replicas share a PostgreSQL job store), empty in sqlite
mode. Fails on store settings the server or the Deployment could not work with.
*/}}
{{- define "blueprint-sync.postgres" -}}
{{- $st := .Values.store }}
{{- if eq $st.type "postgres" }}
{{- if not $st.postgres.existingSecret }}
{{- fail "store.type postgres needs store.postgres.existingSecret: an existing Secret with the connection URI (postgres://USER@HOST:PORT/DB) under store.postgres.key; the chart never takes the URI from values" }}
{{- end }}
{{- if not $st.postgres.key }}
{{- fail "store.postgres.key: the key of the connection URI in store.postgres.existingSecret must not be empty" }}
{{- end }}
{{- if and $st.postgres.passwordSecret.name (not $st.postgres.passwordSecret.key) }}
{{- fail "store.postgres.passwordSecret.key must not be empty when passwordSecret.name is set" }}
{{- end }}
{{- true }}
{{- else if eq $st.type "sqlite" }}
{{- if ne (int .Values.replicaCount) 1 }}
{{- fail (printf "replicaCount is %d but store.type sqlite allows exactly 1 replica (one writer for the SQLite file on a ReadWriteOnce volume); use store.type postgres for several replicas" (int .Values.replicaCount)) }}
{{- end }}
{{- else }}
{{- fail (printf "store.type must be sqlite or postgres, not %q" (toString $st.type)) }}
{{- end }}
{{- end }}

{{/*
"true" when the PodDisruptionBudget is rendered: pdb.create true, or auto (the default) in
postgres mode with more than one replica. Fails when the budget could never allow a drain.
*/}}
{{- define "blueprint-sync.pdbEnabled" -}}
{{- $pg := include "blueprint-sync.postgres" . }}
{{- $create := .Values.pdb.create }}
{{- $on := false }}
{{- if kindIs "bool" $create }}
{{- $on = $create }}
{{- else if eq (toString $create) "auto" }}
{{- $on = and $pg (gt (int .Values.replicaCount) 1) }}
{{- else }}
{{- fail (printf "pdb.create must be auto, true or false, not %q" (toString $create)) }}
{{- end }}
{{- if and $on $pg (not (kindIs "string" .Values.pdb.minAvailable)) (ge (int .Values.pdb.minAvailable) (int .Values.replicaCount)) }}
{{- fail (printf "pdb.minAvailable (%d) must be less than replicaCount (%d): otherwise no pod may ever be evicted and node drains hang" (int .Values.pdb.minAvailable) (int .Values.replicaCount)) }}
{{- end }}
{{- if $on }}true{{ end }}
{{- end }}
