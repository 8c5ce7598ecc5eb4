/**
 * Defaulting as the real API server does it for the kinds the lab cares about. Applied to every write of the
 * main resource (create, update, patch, apply), so defaults survive a client that omits them.
 */
import type { JsonObject, JsonValue, KubeObject } from '../../manifests/types.js';
import { isObject } from './patch.js';

function objAt(o: JsonObject, key: string): JsonObject {
  if (!isObject(o[key])) o[key] = {};
  return o[key] as JsonObject;
}

function setDefault(o: JsonObject, key: string, value: JsonValue): void {
  if (o[key] === undefined || o[key] === null) o[key] = value;
}

function defaultProbe(p: JsonValue | undefined): void {
  if (!isObject(p)) return;
  setDefault(p, 'timeoutSeconds', 1);
  setDefault(p, 'periodSeconds', 10);
  setDefault(p, 'successThreshold', 1);
  setDefault(p, 'failureThreshold', 3);
  if (isObject(p.httpGet)) setDefault(p.httpGet, 'scheme', 'HTTP');
}

function imagePullPolicy(image: string): string {
  const last = image.split('/').pop() ?? '';
  if (last.includes('@')) return 'IfNotPresent';
  const tag = last.includes(':') ? last.slice(last.lastIndexOf(':') + 1) : '';
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function defaultContainer(c: JsonValue): void {
  if (!isObject(c)) return;
  setDefault(c, 'terminationMessagePath', '/dev/termination-log');
  setDefault(c, 'terminationMessagePolicy', 'File');
  if (typeof c.image === 'string') setDefault(c, 'imagePullPolicy', imagePullPolicy(c.image));
  setDefault(c, 'resources', {});
  if (Array.isArray(c.ports)) for (const p of c.ports) if (isObject(p)) setDefault(p, 'protocol', 'TCP');
  defaultProbe(c.readinessProbe);
  defaultProbe(c.livenessProbe);
  defaultProbe(c.startupProbe);
  if (Array.isArray(c.env)) {
    for (const e of c.env) {
      const fieldRef = isObject(e) && isObject(e.valueFrom) ? e.valueFrom.fieldRef : undefined;
      if (isObject(fieldRef)) setDefault(fieldRef, 'apiVersion', 'v1');
    }
  }
}

export function defaultPodSpec(spec: JsonObject): void {
  setDefault(spec, 'restartPolicy', 'Always');
  setDefault(spec, 'terminationGracePeriodSeconds', 30);
  setDefault(spec, 'dnsPolicy', 'ClusterFirst');
  setDefault(spec, 'securityContext', {});
  setDefault(spec, 'schedulerName', 'default-scheduler');
  for (const list of ['containers', 'initContainers']) {
    const cs = spec[list];
    if (Array.isArray(cs)) cs.forEach(defaultContainer);
  }
}

function defaultTemplate(spec: JsonObject): void {
  const template = objAt(spec, 'template');
  defaultPodSpec(objAt(template, 'spec'));
}

/** `allocateClusterIP` hands out the next Service IP (allocation is the server's, not defaulting proper). */
export function applyDefaults(o: KubeObject, allocateClusterIP: () => string): void {
  switch (o.kind) {
    case 'Namespace': {
      const labels = (o.metadata.labels ??= {});
      labels['kubernetes.io/metadata.name'] = o.metadata.name;
      const spec = objAt(o, 'spec');
      setDefault(spec, 'finalizers', ['kubernetes']);
      break;
    }
    case 'Deployment': {
      const spec = objAt(o, 'spec');
      setDefault(spec, 'replicas', 1);
      const strategy = objAt(spec, 'strategy');
      setDefault(strategy, 'type', 'RollingUpdate');
      if (strategy.type === 'RollingUpdate') {
        const ru = objAt(strategy, 'rollingUpdate');
        setDefault(ru, 'maxUnavailable', '25%');
        setDefault(ru, 'maxSurge', '25%');
      }
      setDefault(spec, 'revisionHistoryLimit', 10);
      setDefault(spec, 'progressDeadlineSeconds', 600);
      defaultTemplate(spec);
      break;
    }
    case 'StatefulSet': {
      const spec = objAt(o, 'spec');
      setDefault(spec, 'replicas', 1);
      setDefault(spec, 'podManagementPolicy', 'OrderedReady');
      const strategy = objAt(spec, 'updateStrategy');
      setDefault(strategy, 'type', 'RollingUpdate');
      if (strategy.type === 'RollingUpdate') setDefault(objAt(strategy, 'rollingUpdate'), 'partition', 0);
      setDefault(spec, 'revisionHistoryLimit', 10);
      setDefault(objAt(spec, 'persistentVolumeClaimRetentionPolicy'), 'whenDeleted', 'Retain');
      setDefault(objAt(spec, 'persistentVolumeClaimRetentionPolicy'), 'whenScaled', 'Retain');
      defaultTemplate(spec);
      break;
    }
    case 'DaemonSet': {
      const spec = objAt(o, 'spec');
      const strategy = objAt(spec, 'updateStrategy');
      setDefault(strategy, 'type', 'RollingUpdate');
      if (strategy.type === 'RollingUpdate') {
        const ru = objAt(strategy, 'rollingUpdate');
        setDefault(ru, 'maxUnavailable', 1);
        setDefault(ru, 'maxSurge', 0);
      }
      setDefault(spec, 'revisionHistoryLimit', 10);
      defaultTemplate(spec);
      break;
    }
    case 'ReplicaSet': {
      const spec = objAt(o, 'spec');
      setDefault(spec, 'replicas', 1);
      defaultTemplate(spec);
      break;
    }
    case 'Pod': {
      const spec = objAt(o, 'spec');
      defaultPodSpec(spec);
      setDefault(spec, 'serviceAccountName', 'default');
      setDefault(spec, 'enableServiceLinks', true);
      setDefault(spec, 'priority', 0);
      break;
    }
    case 'Service': {
      const spec = objAt(o, 'spec');
      setDefault(spec, 'type', 'ClusterIP');
      setDefault(spec, 'sessionAffinity', 'None');
      if (spec.type !== 'ExternalName') {
        if (spec.clusterIP === undefined || spec.clusterIP === '' || spec.clusterIP === null) spec.clusterIP = allocateClusterIP();
        setDefault(spec, 'clusterIPs', [spec.clusterIP as string]);
        setDefault(spec, 'ipFamilies', ['IPv4']);
        setDefault(spec, 'ipFamilyPolicy', 'SingleStack');
        setDefault(spec, 'internalTrafficPolicy', 'Cluster');
      }
      if (Array.isArray(spec.ports)) {
        for (const p of spec.ports) {
          if (!isObject(p)) continue;
          setDefault(p, 'protocol', 'TCP');
          if (p.port !== undefined) setDefault(p, 'targetPort', p.port);
        }
      }
      break;
    }
    case 'PodDisruptionBudget': {
      // nothing beyond what clients send
      break;
    }
    case 'Secret':
      setDefault(o, 'type', 'Opaque');
      break;
    default:
      break;
  }
}

/** Status a new object starts with (clients cannot set status on create for kinds with a status subresource). */
export function initialStatus(o: KubeObject): JsonObject | undefined {
  switch (o.kind) {
    case 'Namespace':
      return { phase: 'Active' };
    case 'Pod':
      return { phase: 'Pending', qosClass: 'BestEffort' };
    case 'Service':
      return { loadBalancer: {} };
    case 'Ingress':
      return { loadBalancer: {} };
    case 'Deployment':
    case 'ReplicaSet':
    case 'StatefulSet':
      return {};
    case 'DaemonSet':
      return { currentNumberScheduled: 0, desiredNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0 };
    default:
      return undefined;
  }
}

/** Next ClusterIP from 10.96.0.0/12 (10.96.0.1 is the kubernetes Service on a real cluster). */
export class ClusterIpAllocator {
  private next = 10;
  allocate(): string {
    const n = this.next++;
    return `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
  }
}
