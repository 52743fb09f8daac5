{{/* Names, labels and the pieces several templates share. */}}

{{- define "smokegate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "smokegate.fullname" -}}
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

{{- define "smokegate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "smokegate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smokegate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "smokegate.labels" -}}
helm.sh/chart: {{ include "smokegate.chart" . }}
{{ include "smokegate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: server
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "smokegate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "smokegate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "smokegate.image" -}}
{{- $repo := .repository }}
{{- if .digest }}
{{- printf "%s@%s" $repo .digest }}
{{- else }}
{{- printf "%s:%s" $repo (.tag | default .appVersion) }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: forced by the value, else with several replicas. */}}
{{- define "smokegate.leaderElection" -}}
{{- $le := .Values.leaderElection.enabled }}
{{- if kindIs "bool" $le }}
{{- ternary "true" "" $le }}
{{- else }}
{{- ternary "true" "" (gt (int .Values.replicaCount) 1) }}
{{- end }}
{{- end }}

{{- define "smokegate.leaseName" -}}
{{- printf "%s-leader" (include "smokegate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "smokegate.pdbEnabled" -}}
{{- $pdb := .Values.podDisruptionBudget.enabled }}
{{- if kindIs "bool" $pdb }}
{{- ternary "true" "" $pdb }}
{{- else }}
{{- ternary "true" "" (gt (int .Values.replicaCount) 1) }}
{{- end }}
{{- end }}

{{/* Mount points inside the pod: serve.yaml refers to them by absolute path. */}}
{{- define "smokegate.configDir" -}}/etc/smokegate/config{{- end }}
{{- define "smokegate.suitesDir" -}}/etc/smokegate/suites{{- end }}
{{- define "smokegate.dataDir" -}}/var/lib/smokegate{{- end }}

{{- define "smokegate.hasSuites" -}}
{{- if or .Values.suites.files .Values.suites.existingConfigMaps }}true{{- end }}
{{- end }}

{{/* Refuse value combinations that cannot work, with the fix in the message. */}}
{{- define "smokegate.validate" -}}
{{- $v := .Values }}
{{- if and (gt (int $v.replicaCount) 1) (eq $v.store.type "sqlite") }}
{{- fail "replicaCount > 1 needs store.type=postgresql: a SQLite file serves one replica (docs/install.md#history)" }}
{{- end }}
{{- if and (not $v.webhook.existingSecret) (not $v.webhook.allowUnsigned) }}
{{- fail "webhook.existingSecret is required: the name of a Secret holding the Flux Provider's HMAC key (kubectl create secret generic smokegate-webhook --from-literal=token=$(openssl rand -hex 32)), or set webhook.allowUnsigned=true to accept unsigned events (docs/install.md#webhook-secret)" }}
{{- end }}
{{- if and $v.webhook.existingSecret (not $v.webhook.keys) }}
{{- fail "webhook.keys: name at least one key of webhook.existingSecret" }}
{{- end }}
{{- if eq $v.store.type "postgresql" }}
{{- $pg := $v.store.postgresql }}
{{- if not $pg.existingSecret }}
{{- fail "store.type=postgresql needs store.postgresql.existingSecret (a Secret with the URL, or with the password for store.postgresql.url)" }}
{{- end }}
{{- if and $pg.urlKey $pg.url }}
{{- fail "store.postgresql: give urlKey (the whole URL in the Secret) or url + passwordKey, not both" }}
{{- end }}
{{- if and (not $pg.urlKey) (not $pg.url) }}
{{- fail "store.postgresql: give urlKey (the Secret key holding the whole URL) or url (with ${PGPASSWORD}) + passwordKey" }}
{{- end }}
{{- if and $pg.url (not $pg.passwordKey) (contains "${PGPASSWORD}" $pg.url) }}
{{- fail "store.postgresql.url uses ${PGPASSWORD}: set store.postgresql.passwordKey (its key in existingSecret)" }}
{{- end }}
{{- end }}
{{- if and (include "smokegate.leaderElection" .) (not $v.kubernetes.enabled) }}
{{- fail "leaderElection needs kubernetes.enabled=true (the Lease lives in the cluster)" }}
{{- end }}
{{- if and $v.suites.fromLabelledConfigMaps.enabled (not $v.kubernetes.enabled) }}
{{- fail "suites.fromLabelledConfigMaps needs kubernetes.enabled=true" }}
{{- end }}
{{- if and $v.existingConfigMap $v.config.releases }}
{{- fail "existingConfigMap replaces the chart's serve.yaml: put config.releases (and the rest of config) in that ConfigMap instead" }}
{{- end }}
{{- end }}

{{/* serve.yaml: `config` from the values, with the parts the chart owns written over it. */}}
{{- define "smokegate.serveConfig" -}}
{{- $v := .Values }}
{{- $c := deepCopy ($v.config | default dict) }}
{{- $store := dict "retention" $v.store.retention }}
{{- if eq $v.store.type "postgresql" }}
{{- if $v.store.postgresql.urlKey }}
{{- $_ := set $store "url" "${SMOKEGATE_STORE_URL}" }}
{{- else }}
{{- $_ := set $store "url" $v.store.postgresql.url }}
{{- end }}
{{- else }}
{{- $_ := set $store "url" (printf "sqlite:///%s/history.db" (include "smokegate.dataDir" .)) }}
{{- end }}
{{- $suites := dict }}
{{- if include "smokegate.hasSuites" . }}
{{- $_ := set $suites "directories" (list (include "smokegate.suitesDir" .)) }}
{{- end }}
{{- if $v.suites.fromLabelledConfigMaps.enabled }}
{{- $_ := set $suites "configMaps" (dict "enabled" true "namespaces" $v.suites.fromLabelledConfigMaps.namespaces) }}
{{- end }}
{{- $k := dict "enabled" $v.kubernetes.enabled }}
{{- if $v.kubernetes.enabled }}
{{- $_ := set $k "watch" $v.kubernetes.watch }}
{{- $_ := set $k "namespaces" $v.kubernetes.namespaces }}
{{- $_ := set $k "waitTimeout" $v.kubernetes.waitTimeout }}
{{- $_ := set $k "recordEvents" $v.kubernetes.recordEvents }}
{{- if $v.kubernetes.notifyFlux }}
{{- $_ := set $k "notifyFlux" $v.kubernetes.notifyFlux }}
{{- end }}
{{- $le := dict "enabled" (not (not (include "smokegate.leaderElection" .))) }}
{{- if $le.enabled }}
{{- $_ := set $le "leaseName" (include "smokegate.leaseName" .) }}
{{- $_ := set $le "namespace" .Release.Namespace }}
{{- $_ := set $le "leaseDuration" $v.leaderElection.leaseDuration }}
{{- $_ := set $le "renewEvery" $v.leaderElection.renewEvery }}
{{- end }}
{{- $_ := set $k "leaderElection" $le }}
{{- end }}
{{- $secrets := list }}
{{- range $i, $key := $v.webhook.keys }}
{{- if $v.webhook.existingSecret }}
{{- $secrets = append $secrets (dict "env" (printf "SMOKEGATE_WEBHOOK_SECRET_%d" $i)) }}
{{- end }}
{{- end }}
{{- $hooks := deepCopy ($c.webhooks | default dict) }}
{{- $flux := deepCopy ($hooks.flux | default dict) }}
{{- $_ := set $flux "secrets" $secrets }}
{{- $_ := set $hooks "flux" $flux }}
{{- $api := dict "protectReads" $v.api.protectReads }}
{{- if $v.api.existingSecret }}
{{- $_ := set $api "token" (dict "env" "SMOKEGATE_API_TOKEN") }}
{{- end }}
{{- $_ := set $c "apiVersion" "smokegate.io/v1" }}
{{- $_ := set $c "kind" "ServerConfig" }}
{{- $_ := set $c "listen" (printf "%s:%d" $v.listenHost (int $v.containerPort)) }}
{{- $_ := set $c "store" $store }}
{{- $_ := set $c "suites" $suites }}
{{- $_ := set $c "kubernetes" $k }}
{{- $_ := set $c "webhooks" $hooks }}
{{- $_ := set $c "api" $api }}
{{- toYaml $c }}
{{- end }}

{{/* RBAC rules for the namespaces serve watches and tests (ClusterRole or Role per namespace). */}}
{{- define "smokegate.rules" -}}
{{- $v := .Values }}
{{- if $v.kubernetes.enabled }}
# Release facts, readiness and the suites annotation; the watch (list + watch) and the run's
# wait for Flux to finish reconciling (get + watch).
- apiGroups: [helm.toolkit.fluxcd.io]
  resources: [helmreleases]
  verbs: [get, list, watch]
{{- if $v.kubernetes.recordEvents }}
# SmokeTestSucceeded/SmokeTestFailed Events on the HelmRelease.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}
{{- if $v.rbac.kubeChecks }}
# kube checks (ready/exists/absent/configMap) on the kinds suites usually check: get is enough.
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [get]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get]
- apiGroups: [""]
  resources: [pods, services, configmaps, persistentvolumeclaims]
  verbs: [get]
{{- end }}
{{- if $v.rbac.secrets.get }}
# ${secret:NAME/KEY}, secretRef and kube.secret in suites.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- with $v.rbac.secrets.resourceNames }}
  resourceNames: {{ toYaml . | nindent 4 }}
{{- end }}
{{- end }}
{{- if $v.rbac.discovery }}
# discover: true: the Helm release records (Secrets, selected by label: list), and the objects
# discovery falls back to when there is no record.
- apiGroups: [""]
  resources: [secrets, services]
  verbs: [list]
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets]
  verbs: [list]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [list]
{{- end }}
{{- if $v.rbac.helmTests }}
# helmTest checks: run the chart's test hooks, read their logs, delete them (docs/helm-test.md).
- apiGroups: [""]
  resources: [pods]
  verbs: [create, get, list, watch, delete]
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create, get, list, watch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [list]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create, list, delete]
{{- end }}
{{- with $v.rbac.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* The test Pod's labels: not the server's selector, so the Service never routes to it. */}}
{{- define "smokegate.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "smokegate.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}
