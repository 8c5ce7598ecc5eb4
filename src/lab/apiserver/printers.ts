/**
 * Printer columns per kind, as the real API server's table convertors define them (NAME is implicit and first).
 * Priority 1 columns are what `kubectl get -o wide` adds.
 */
import type { JsonObject, JsonValue, KubeObject } from '../../manifests/types.js';

export type Cell = string | number | boolean | null;

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  priority: 0 | 1;
  description: string;
  cell: (o: KubeObject, nowMs: number) => Cell;
}

/** kubectl's / apimachinery's HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const years = Math.floor(hours / 24 / 365);
  if (years < 8) return `${years}y${Math.floor(hours / 24) % 365}d`;
  return `${years}y`;
}

export function obj(v: JsonValue | undefined): JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {};
}
export function arr(v: JsonValue | undefined): JsonValue[] {
  return Array.isArray(v) ? v : [];
}
function str(v: JsonValue | undefined, fallback = ''): string {
  return v === undefined || v === null ? fallback : typeof v === 'object' ? JSON.stringify(v) : String(v);
}
function num(v: JsonValue | undefined): number {
  return typeof v === 'number' ? v : 0;
}

const age: PrinterColumn = {
  name: 'Age',
  type: 'string',
  priority: 0,
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
  cell: (o, now) => {
    const t = o.metadata.creationTimestamp;
    return typeof t === 'string' ? humanDuration(now - Date.parse(t)) : '<unknown>';
  },
};

function col(name: string, cell: PrinterColumn['cell'], opts: { type?: PrinterColumn['type']; priority?: 0 | 1; description?: string } = {}): PrinterColumn {
  return { name, type: opts.type ?? 'string', priority: opts.priority ?? 0, description: opts.description ?? name, cell };
}

const spec = (o: KubeObject): JsonObject => obj(o.spec);
const status = (o: KubeObject): JsonObject => obj(o.status);

function selectorString(sel: JsonValue | undefined): string {
  const s = obj(sel);
  const parts: string[] = [];
  const labels = s.matchLabels !== undefined ? obj(s.matchLabels) : s;
  for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') parts.push(`${k}=${v}`);
  for (const e of arr(s.matchExpressions)) {
    const x = obj(e);
    const values = arr(x.values).map((v) => str(v));
    const op = str(x.operator);
    if (op === 'In') parts.push(`${str(x.key)} in (${values.join(',')})`);
    else if (op === 'NotIn') parts.push(`${str(x.key)} notin (${values.join(',')})`);
    else if (op === 'Exists') parts.push(str(x.key));
    else if (op === 'DoesNotExist') parts.push(`!${str(x.key)}`);
  }
  return parts.length ? parts.join(',') : '<none>';
}

function templateContainers(o: KubeObject): JsonObject[] {
  return arr(obj(obj(spec(o).template).spec).containers).map(obj);
}

/** The STATUS column of `kubectl get pods`, following the real printer's precedence. */
function podStatus(o: KubeObject): string {
  const st = status(o);
  let reason = str(st.reason) || str(st.phase, 'Unknown');
  for (const cs of arr(st.containerStatuses).map(obj)) {
    const state = obj(cs.state);
    const waiting = obj(state.waiting);
    const terminated = obj(state.terminated);
    if (str(waiting.reason)) reason = str(waiting.reason);
    else if (str(terminated.reason)) reason = str(terminated.reason);
    else if (state.terminated !== undefined) reason = `ExitCode:${num(terminated.exitCode)}`;
  }
  if (o.metadata.deletionTimestamp && str(st.reason) !== 'NodeLost') reason = 'Terminating';
  return reason;
}

function podReady(o: KubeObject): string {
  const containers = arr(spec(o).containers).length;
  const ready = arr(status(o).containerStatuses).filter((c) => obj(c).ready === true).length;
  return `${ready}/${containers}`;
}

function podRestarts(o: KubeObject): number {
  return arr(status(o).containerStatuses).reduce<number>((n, c) => n + num(obj(c).restartCount), 0);
}

function podReadinessGates(o: KubeObject): string {
  const gates = arr(spec(o).readinessGates).map((g) => str(obj(g).conditionType));
  if (gates.length === 0) return '<none>';
  const conditions = arr(status(o).conditions).map(obj);
  const trueCount = gates.filter((g) => conditions.some((c) => c.type === g && c.status === 'True')).length;
  return `${trueCount}/${gates.length}`;
}

function servicePorts(o: KubeObject): string {
  const ports = arr(spec(o).ports).map(obj);
  if (ports.length === 0) return '<none>';
  return ports
    .map((p) => `${num(p.port)}${p.nodePort !== undefined ? `:${num(p.nodePort)}` : ''}/${str(p.protocol, 'TCP')}`)
    .join(',');
}

function serviceExternalIp(o: KubeObject): string {
  const type = str(spec(o).type, 'ClusterIP');
  if (type === 'ExternalName') return str(spec(o).externalName);
  const ingress = arr(obj(status(o).loadBalancer).ingress).map(obj);
  const lb = ingress.map((i) => str(i.ip) || str(i.hostname)).filter(Boolean);
  const external = arr(spec(o).externalIPs).map((v) => str(v));
  const all = [...lb, ...external];
  if (all.length) return all.join(',');
  return type === 'LoadBalancer' ? '<pending>' : '<none>';
}

function ingressHosts(o: KubeObject): string {
  const hosts = arr(spec(o).rules).map((r) => str(obj(r).host)).filter(Boolean);
  return hosts.length ? hosts.join(',') : '*';
}

function ingressAddress(o: KubeObject): string {
  const ingress = arr(obj(status(o).loadBalancer).ingress).map(obj);
  return ingress.map((i) => str(i.ip) || str(i.hostname)).filter(Boolean).join(',');
}

function endpointsList(o: KubeObject): string {
  const out: string[] = [];
  for (const s of arr(o.subsets).map(obj)) {
    const ports = arr(s.ports).map((p) => num(obj(p).port));
    for (const a of arr(s.addresses).map(obj)) {
      if (ports.length === 0) out.push(str(a.ip));
      for (const p of ports) out.push(`${str(a.ip)}:${p}`);
    }
  }
  if (out.length === 0) return '<none>';
  return out.length > 3 ? `${out.slice(0, 3).join(',')} + ${out.length - 3} more...` : out.join(',');
}

export const PRINTERS: Record<string, PrinterColumn[]> = {
  default: [age],
  Namespace: [col('Status', (o) => str(status(o).phase, 'Active')), age],
  Pod: [
    col('Ready', podReady, { description: 'The aggregate readiness state of this pod for accepting traffic.' }),
    col('Status', podStatus, { description: 'The aggregate status of the containers in this pod.' }),
    col('Restarts', podRestarts, { type: 'string', description: 'The number of times the containers in this pod have been restarted.' }),
    age,
    col('IP', (o) => str(status(o).podIP, '<none>'), { priority: 1, description: 'The IP address assigned to the pod' }),
    col('Node', (o) => str(spec(o).nodeName, '<none>'), { priority: 1, description: 'The name of the node the pod is running on' }),
    col('Nominated Node', (o) => str(status(o).nominatedNodeName, '<none>'), { priority: 1, description: 'The nominated node' }),
    col('Readiness Gates', podReadinessGates, { priority: 1, description: 'The readiness gates of the pod' }),
  ],
  Deployment: [
    col('Ready', (o) => `${num(status(o).readyReplicas)}/${num(spec(o).replicas)}`, { description: 'Number of ready replicas / desired replicas' }),
    col('Up-to-date', (o) => num(status(o).updatedReplicas), { type: 'integer', description: 'Total number of updated replicas.' }),
    col('Available', (o) => num(status(o).availableReplicas), { type: 'integer', description: 'Total number of available replicas.' }),
    age,
    col('Containers', (o) => templateContainers(o).map((c) => str(c.name)).join(','), { priority: 1 }),
    col('Images', (o) => templateContainers(o).map((c) => str(c.image)).join(','), { priority: 1 }),
    col('Selector', (o) => selectorString(spec(o).selector), { priority: 1 }),
  ],
  StatefulSet: [
    col('Ready', (o) => `${num(status(o).readyReplicas)}/${num(spec(o).replicas)}`, { description: 'Number of ready replicas / desired replicas' }),
    age,
    col('Containers', (o) => templateContainers(o).map((c) => str(c.name)).join(','), { priority: 1 }),
    col('Images', (o) => templateContainers(o).map((c) => str(c.image)).join(','), { priority: 1 }),
  ],
  DaemonSet: [
    col('Desired', (o) => num(status(o).desiredNumberScheduled), { type: 'integer' }),
    col('Current', (o) => num(status(o).currentNumberScheduled), { type: 'integer' }),
    col('Ready', (o) => num(status(o).numberReady), { type: 'integer' }),
    col('Up-to-date', (o) => num(status(o).updatedNumberScheduled), { type: 'integer' }),
    col('Available', (o) => num(status(o).numberAvailable), { type: 'integer' }),
    age,
  ],
  ControllerRevision: [col('Controller', (o) => { const r = ((o.metadata.ownerReferences ?? []) as Array<{ kind?: string; name?: string }>)[0]; return r ? `${String(r.kind ?? '').toLowerCase()}.apps/${String(r.name ?? '')}` : '<none>'; }), col('Revision', (o) => num(o.revision), { type: 'integer' }), age],
  ReplicaSet: [
    col('Desired', (o) => num(spec(o).replicas), { type: 'integer' }),
    col('Current', (o) => num(status(o).replicas), { type: 'integer' }),
    col('Ready', (o) => num(status(o).readyReplicas), { type: 'integer' }),
    age,
    col('Containers', (o) => templateContainers(o).map((c) => str(c.name)).join(','), { priority: 1 }),
    col('Images', (o) => templateContainers(o).map((c) => str(c.image)).join(','), { priority: 1 }),
    col('Selector', (o) => selectorString(spec(o).selector), { priority: 1 }),
  ],
  Service: [
    col('Type', (o) => str(spec(o).type, 'ClusterIP')),
    col('Cluster-IP', (o) => str(spec(o).clusterIP, '<none>')),
    col('External-IP', serviceExternalIp),
    col('Port(s)', servicePorts),
    age,
    col('Selector', (o) => selectorString(spec(o).selector), { priority: 1 }),
  ],
  Endpoints: [col('Endpoints', endpointsList), age],
  Ingress: [
    col('Class', (o) => str(spec(o).ingressClassName, '<none>')),
    col('Hosts', ingressHosts),
    col('Address', ingressAddress),
    col('Ports', (o) => (arr(spec(o).tls).length ? '80, 443' : '80')),
    age,
  ],
  IngressClass: [col('Controller', (o) => str(spec(o).controller)), col('Parameters', (o) => (spec(o).parameters ? str(obj(spec(o).parameters).kind) : '<none>')), age],
  ConfigMap: [col('Data', (o) => Object.keys(obj(o.data)).length + Object.keys(obj(o.binaryData)).length, { type: 'integer' }), age],
  Secret: [col('Type', (o) => str(o.type, 'Opaque')), col('Data', (o) => Object.keys(obj(o.data)).length, { type: 'integer' }), age],
  ServiceAccount: [age],
  EndpointSlice: [
    col('AddressType', (o) => str(o.addressType)),
    col('Ports', (o) => arr(o.ports).map((p) => num(obj(p).port)).join(',') || '<unset>'),
    col('Endpoints', (o) => arr(o.endpoints).flatMap((e) => arr(obj(e).addresses).map((a) => str(a))).join(',') || '<unset>'),
    age,
  ],
  Event: [
    col('Last Seen', (o, now) => {
      const t = str(o.lastTimestamp) || str(o.eventTime) || str(o.metadata.creationTimestamp);
      return t ? humanDuration(now - Date.parse(t)) : '<unknown>';
    }),
    col('Type', (o) => str(o.type)),
    col('Reason', (o) => str(o.reason)),
    col('Object', (o) => `${str(obj(o.involvedObject).kind).toLowerCase()}/${str(obj(o.involvedObject).name)}`),
    col('Message', (o) => str(o.message)),
  ],
  PodDisruptionBudget: [
    col('Min Available', (o) => str(spec(o).minAvailable, 'N/A')),
    col('Max Unavailable', (o) => str(spec(o).maxUnavailable, 'N/A')),
    col('Allowed Disruptions', (o) => num(status(o).disruptionsAllowed), { type: 'integer' }),
    age,
  ],
  TargetGroupBinding: [
    col('Service-Name', (o) => str(obj(spec(o).serviceRef).name), { description: "The Kubernetes Service's name" }),
    col('Service-Port', (o) => str(obj(spec(o).serviceRef).port), { description: "The Kubernetes Service's port" }),
    col('Target-Type', (o) => str(spec(o).targetType), { description: "The AWS TargetGroup's TargetType" }),
    col('ARN', (o) => str(spec(o).targetGroupARN), { priority: 1, description: "The AWS TargetGroup's Amazon Resource Name" }),
    age,
  ],
  CustomResourceDefinition: [col('Created At', (o) => str(o.metadata.creationTimestamp), { type: 'date' })],
};
