{{/* Chart name, overridable. */}}
{{- define "tdlib-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: the release name if it already holds the chart name (release
"tdlib-operator" gives "tdlib-operator", the names config/ uses), else "<release>-<chart>".
*/}}
{{- define "tdlib-operator.fullname" -}}
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

{{- define "tdlib-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object of the release. */}}
{{- define "tdlib-operator.labels" -}}
helm.sh/chart: {{ include "tdlib-operator.chart" . }}
{{ include "tdlib-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tdlib-operator
{{- end }}

{{/* What the Deployment, Service, PodDisruptionBudget and NetworkPolicy select the operator pods by. */}}
{{- define "tdlib-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tdlib-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "tdlib-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tdlib-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tdlib-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The runtime pods' image: the operator image unless runtime.image names another. */}}
{{- define "tdlib-operator.runtimeImage" -}}
{{- $repository := .Values.runtime.image.repository | default .Values.image.repository }}
{{- $tag := .Values.runtime.image.tag | default .Values.image.tag | default .Chart.AppVersion }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/*
Labels the operator puts on runtime pods (crds/naming.ts poolLabels; operator/pool/desired.ts): the PodMonitor
selects them.
*/}}
{{- define "tdlib-operator.runtimeSelectorLabels" -}}
app.kubernetes.io/name: tdlib-runtime
app.kubernetes.io/managed-by: tdlib-operator
{{- end }}
