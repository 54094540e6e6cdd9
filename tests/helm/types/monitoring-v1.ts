// Strict TypeScript shape of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1), which kubernetes-types does not cover. A subset
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
