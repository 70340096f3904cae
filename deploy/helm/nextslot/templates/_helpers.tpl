{{- define "nextslot.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "nextslot.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "nextslot.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "nextslot.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "nextslot.secretName" -}}
{{- .Values.existingSecret | default (include "nextslot.fullname" .) -}}
{{- end -}}

{{/* The settings every nextslot container reads. */}}
{{- define "nextslot.envFrom" -}}
- configMapRef:
    name: {{ include "nextslot.fullname" . }}
- secretRef:
    name: {{ include "nextslot.secretName" . }}
{{- end -}}

{{- define "nextslot.volumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "nextslot.volumeMounts" -}}
- name: data
  mountPath: /home/nextslot/data
- name: tmp
  mountPath: /tmp
{{- end -}}
