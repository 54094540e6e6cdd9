// Strict TypeScript shape of the Prometheus Operator's ServiceMonitor and
// PrometheusRule (monitoring.coreos.com/v1), which kubernetes-types does not cover. A subset
// of the CRD's fields, spelled as in its OpenAPI schema: anything the chart
// renders beyond these is an error, which is the point of the check (add a
// field here only after checking it in the CRD).
import type { LabelSelector, ObjectMeta } from 'kubernetes-types/meta/v1';

export interface RelabelConfig {
  action?: 'replace' | 'keep' | 'drop' | 'hashmod' | 'labelmap' | 'labeldrop' | 'labelkeep' |
           'lowercase' | 'uppercase' | 'keepequal' | 'dropequal' |
           'Replace' | 'Keep' | 'Drop' | 'HashMod' | 'LabelMap' | 'LabelDrop' | 'LabelKeep' |
           'Lowercase' | 'Uppercase' | 'KeepEqual' | 'DropEqual';
  modulus?: number;
  regex?: string;
  replacement?: string;
  separator?: string;
  sourceLabels?: string[];
  targetLabel?: string;
}

export interface Endpoint {
  port?: string;
  targetPort?: number | string;
  path?: string;
  scheme?: 'http' | 'https';
  params?: { [name: string]: string[] };
  interval?: string;
  scrapeTimeout?: string;
  honorLabels?: boolean;
  honorTimestamps?: boolean;
  relabelings?: RelabelConfig[];
  metricRelabelings?: RelabelConfig[];
}

export interface NamespaceSelector {
  any?: boolean;
  matchNames?: string[];
}

export interface ServiceMonitorSpec {
  endpoints: Endpoint[];
  selector: LabelSelector;
  namespaceSelector?: NamespaceSelector;
  jobLabel?: string;
  targetLabels?: string[];
  podTargetLabels?: string[];
  sampleLimit?: number;
}

export interface ServiceMonitor {
  apiVersion: 'monitoring.coreos.com/v1';
  kind: 'ServiceMonitor';
  metadata: ObjectMeta;
  spec: ServiceMonitorSpec;
}

// PrometheusRule: the groups are Prometheus rule groups (promtool checks their content).
export interface Rule {
  alert?: string;
  record?: string;
  expr: string | number;
  for?: string;
  keep_firing_for?: string;
  labels?: { [name: string]: string };
  annotations?: { [name: string]: string };
}

export interface RuleGroup {
  name: string;
  interval?: string;
  limit?: number;
  partial_response_strategy?: string;
  rules: Rule[];
}

export interface PrometheusRuleSpec {
  groups?: RuleGroup[];
}

export interface PrometheusRule {
  apiVersion: 'monitoring.coreos.com/v1';
  kind: 'PrometheusRule';
  metadata: ObjectMeta;
  spec: PrometheusRuleSpec;
}
