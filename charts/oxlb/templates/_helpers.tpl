{{/* oxlb's log level from a MetalLB one (all, debug, info, warn, error, none). */}}
{{- define "oxlb.logLevel" -}}
{{- $level := . | default "info" -}}
{{- if eq $level "all" }}trace{{ else if eq $level "none" }}error{{ else }}{{ $level }}{{ end -}}
{{- end -}}

{{/* image: <component>.image over the top-level image; MetalLB's own images refused. */}}
{{- define "oxlb.image" -}}
{{- $root := index . 0 -}}
{{- $own := index . 1 | default dict -}}
{{- $repository := $own.repository | default $root.Values.image.repository -}}
{{- if regexMatch "metallb/(controller|speaker)$" $repository -}}
{{- fail (printf "image %s is MetalLB's: point controller.image / speaker.image at oxlb's image (or drop them)" $repository) -}}
{{- end -}}
{{ $repository }}:{{ $own.tag | default $root.Values.image.tag }}
{{- end -}}

{{- define "oxlb.pullPolicy" -}}
{{- $root := index . 0 -}}
{{- $own := index . 1 | default dict -}}
{{ $own.pullPolicy | default $root.Values.image.pullPolicy }}
{{- end -}}

{{- define "oxlb.metricsPort" -}}
{{ .Values.prometheus.metricsPort | default .Values.metrics.port }}
{{- end -}}

{{/* A probe from MetalLB's layout (enabled + timings) on the monitoring port. */}}
{{- define "oxlb.probe" -}}
{{- $probe := index . 0 -}}
{{- $path := index . 1 -}}
httpGet:
  path: {{ $path }}
  port: monitoring
{{- range $key := list "failureThreshold" "initialDelaySeconds" "periodSeconds" "successThreshold" "timeoutSeconds" }}
{{- if hasKey $probe $key }}
{{ $key }}: {{ index $probe $key }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod metadata shared by both components: MetalLB's labels for monitoring, the
     user's labels and annotations, the scrape annotations. */}}
{{- define "oxlb.podMetadata" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $values := index . 2 -}}
labels:
  app.kubernetes.io/name: oxlb
  app.kubernetes.io/component: {{ $component }}
  # MetalLB's pod labels: the monitors' job label and users' own selectors.
  app: metallb
  component: {{ $component }}
  {{- with $values.labels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- if or $values.podAnnotations $root.Values.prometheus.scrapeAnnotations }}
annotations:
  {{- if $root.Values.prometheus.scrapeAnnotations }}
  prometheus.io/scrape: "true"
  prometheus.io/port: {{ include "oxlb.metricsPort" $root | quote }}
  {{- end }}
  {{- with $values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Scheduling keys both components take from MetalLB's layout. */}}
{{- define "oxlb.scheduling" -}}
{{- $root := index . 0 -}}
{{- $values := index . 1 -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $values.runtimeClassName }}
runtimeClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* memberlist UDP port: MetalLB's mlBindPort (`port`: oxlb's first spelling). */}}
{{- define "oxlb.memberlistPort" -}}
{{ .Values.speaker.memberlist.port | default .Values.speaker.memberlist.mlBindPort }}
{{- end -}}
