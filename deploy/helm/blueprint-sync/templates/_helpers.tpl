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
Image reference: digest wins over tag; tag defaults to appVersion.
*/}}
{{- define "blueprint-sync.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Name of the claim holding the SQLite file.
*/}}
{{- define "blueprint-sync.claimName" -}}
{{- default (printf "%s-data" (include "blueprint-sync.fullname" .) | trunc 63 | trimSuffix "-") .Values.persistence.existingClaim }}
{{- end }}
