/**
 * EndpointSlice controller (upstream pkg/controller/endpointslice) and the legacy Endpoints controller
 * (pkg/controller/endpoint), for Services with a selector.
 *
 * Slices: `<svc>-<5 chars>`, labels `kubernetes.io/service-name` and
 * `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, owned by the Service,
 * addressType IPv4, one slice per distinct set of resolved ports (usually one). Every pod with a podIP that
 * has not finished is an endpoint, including terminating pods:
 *   serving = pod Ready (as last reported), terminating = deletionTimestamp set, ready = serving && !terminating
 * (publishNotReadyAddresses makes ready/serving true). Legacy Endpoints leave terminating pods out and put
 * not-ready pods in notReadyAddresses. Changes are applied `timings.endpointsSeconds` after the pod or
 * Service change that caused them.
 */
import type { KubeObject } from '../../manifests/types.js';
import type { ObjectStore, StoreEvent } from '../store.js';
import type { LabClock } from '../timing.js';
import { WorkQueue } from './queue.js';
import type { ControllerOptions } from './owner.js';
import {
  type Obj,
  arrAt,
  canonicalJson,
  createWithGeneratedName,
  isPodReady,
  isoSeconds,
  keyOf,
  labelsOf,
  mapSelectorMatches,
  newControllerRef,
  numAt,
  objAt,
  splitKey,
  strAt,
} from './util.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
export const MANAGED_BY = 'endpointslice-controller.k8s.io';

interface EndpointPort extends Obj {
  name: string;
  port: number;
  protocol: string;
}

interface PodEndpoint {
  pod: KubeObject;
  ip: string;
  ports: EndpointPort[];
}

function serviceSelector(svc: KubeObject): Record<string, string> | undefined {
  const sel = objAt(objAt(svc, 'spec') ?? {}, 'selector');
  return sel && Object.keys(sel).length > 0 ? (sel as Record<string, string>) : undefined;
}

/** podutil.FindPort: a number is used as is; a name is looked up among the pod's container ports. */
export function resolveTargetPort(pod: KubeObject, servicePort: Obj): number | undefined {
  const tp = servicePort.targetPort ?? servicePort.port;
  const protocol = strAt(servicePort, 'protocol') ?? 'TCP';
  if (typeof tp === 'number') return tp;
  if (typeof tp === 'string') {
    if (/^\d+$/.test(tp)) return Number(tp);
    for (const c of arrAt(objAt(pod, 'spec'), 'containers')) {
      for (const p of arrAt(c, 'ports')) {
        if (strAt(p, 'name') === tp && (strAt(p, 'protocol') ?? 'TCP') === protocol) return numAt(p, 'containerPort');
      }
    }
  }
  return undefined;
}

function podIP(pod: KubeObject): string | undefined {
  return strAt(objAt(pod, 'status'), 'podIP') || undefined;
}

function podFinished(pod: KubeObject): boolean {
  const phase = strAt(objAt(pod, 'status'), 'phase');
  return phase === 'Succeeded' || phase === 'Failed';
}

export class EndpointSliceController {
  private readonly queue: WorkQueue;
  private readonly unwatch: Array<() => void> = [];
  /** Which pods each Service's endpoints named at the last sync, to notice pods that stop matching. */
  private readonly members = new Map<string, Set<string>>();

  constructor(
    private readonly store: ObjectStore,
    private readonly clock: LabClock,
    opts: ControllerOptions = {},
  ) {
    this.queue = new WorkQueue('endpointslice-controller', clock, (k) => this.sync(k), opts.log);
    this.names = clock.random.fork('endpointslice-names').fn();
  }

  private readonly names: () => number;

  start(): void {
    this.unwatch.push(this.store.watch('Service', undefined, undefined, (e) => this.schedule(keyOf(e.object))));
    this.unwatch.push(this.store.watch('Pod', undefined, undefined, (e) => this.onPod(e)));
    for (const svc of this.store.list('Service').items) this.queue.add(keyOf(svc));
  }

  stop(): void {
    for (const u of this.unwatch.splice(0)) u();
    this.queue.stop();
  }

  private schedule(key: string): void {
    this.queue.addAfter(key, this.clock.delay('endpointsSeconds'));
  }

  private onPod(e: StoreEvent): void {
    const namespace = e.object.metadata.namespace ?? '';
    const labels = labelsOf(e.object);
    for (const svc of this.store.list('Service', namespace).items) {
      const key = keyOf(svc);
      if (mapSelectorMatches(serviceSelector(svc), labels) || this.members.get(key)?.has(e.object.metadata.name)) this.schedule(key);
    }
  }

  private sync(key: string): void {
    const [namespace, name] = splitKey(key);
    const svc = this.store.get('Service', namespace, name);
    const selector = svc ? serviceSelector(svc) : undefined;
    const svcSpec = svc ? (objAt(svc, 'spec') ?? {}) : {};
    if (!svc || !selector || strAt(svcSpec, 'type') === 'ExternalName') {
      this.members.delete(key);
      if (!svc) this.removeAll(namespace, name);
      return;
    }
    const publishNotReady = svcSpec.publishNotReadyAddresses === true;
    const pods = this.store
      .list('Pod', namespace)
      .items.filter((p) => mapSelectorMatches(selector, labelsOf(p)) && podIP(p) !== undefined && !podFinished(p))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const servicePorts = arrAt(svcSpec, 'ports');
    const eps: PodEndpoint[] = pods.map((pod) => {
      const ports: EndpointPort[] = [];
      for (const sp of servicePorts) {
        const port = resolveTargetPort(pod, sp);
        if (port === undefined) continue;
        const ep: EndpointPort = { name: strAt(sp, 'name') ?? '', port, protocol: strAt(sp, 'protocol') ?? 'TCP' };
        const appProtocol = strAt(sp, 'appProtocol');
        if (appProtocol) ep.appProtocol = appProtocol;
        ports.push(ep);
      }
      return { pod, ip: podIP(pod) as string, ports };
    });
    this.members.set(key, new Set(pods.map((p) => p.metadata.name)));
    this.syncSlices(svc, eps, publishNotReady);
    this.syncEndpoints(svc, eps, publishNotReady);
  }

  private syncSlices(svc: KubeObject, eps: PodEndpoint[], publishNotReady: boolean): void {
    const namespace = svc.metadata.namespace ?? '';
    const groups = new Map<string, { ports: EndpointPort[]; endpoints: Obj[] }>();
    for (const ep of eps) {
      const k = canonicalJson(ep.ports);
      const g = groups.get(k) ?? { ports: ep.ports, endpoints: [] };
      const terminating = !!ep.pod.metadata.deletionTimestamp;
      const serving = publishNotReady || isPodReady(ep.pod);
      const endpoint: Obj = {
        addresses: [ep.ip],
        conditions: { ready: publishNotReady || (serving && !terminating), serving, terminating },
        targetRef: { kind: 'Pod', namespace, name: ep.pod.metadata.name, uid: String(ep.pod.metadata.uid) },
      };
      const nodeName = strAt(objAt(ep.pod, 'spec'), 'nodeName');
      if (nodeName) endpoint.nodeName = nodeName;
      g.endpoints.push(endpoint);
      groups.set(k, g);
    }
    // A Service without endpoints still has one (placeholder) slice, as upstream.
    if (groups.size === 0) groups.set('[]', { ports: [], endpoints: [] });

    const existing = this.store
      .list('EndpointSlice', namespace)
      .items.filter((s) => labelsOf(s)[SERVICE_NAME_LABEL] === svc.metadata.name && labelsOf(s)[MANAGED_BY_LABEL] === MANAGED_BY)
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(labelsOf(svc))) if (k !== SERVICE_NAME_LABEL && k !== MANAGED_BY_LABEL) labels[k] = v;
    if (strAt(objAt(svc, 'spec'), 'clusterIP') === 'None') labels['service.kubernetes.io/headless'] = '';
    labels[SERVICE_NAME_LABEL] = svc.metadata.name;
    labels[MANAGED_BY_LABEL] = MANAGED_BY;

    const unused = [...existing];
    const pending: Array<{ ports: EndpointPort[]; endpoints: Obj[] }> = [];
    const write = (slice: KubeObject, g: { ports: EndpointPort[]; endpoints: Obj[] }): void => {
      const wanted = { labels, addressType: 'IPv4', endpoints: g.endpoints, ports: g.ports };
      const have = { labels: labelsOf(slice), addressType: slice.addressType, endpoints: slice.endpoints ?? [], ports: slice.ports ?? [] };
      if (canonicalJson(wanted) === canonicalJson(have)) return;
      this.store.mutate('EndpointSlice', namespace, slice.metadata.name, (o) => {
        o.metadata.labels = { ...labels };
        o.metadata.annotations = { ...(o.metadata.annotations ?? {}), 'endpoints.kubernetes.io/last-change-trigger-time': isoSeconds() };
        o.addressType = 'IPv4';
        o.endpoints = g.endpoints;
        o.ports = g.ports;
      });
    };
    for (const [k, g] of groups) {
      const i = unused.findIndex((s) => canonicalJson(s.ports ?? []) === k);
      if (i >= 0) write(unused.splice(i, 1)[0] as KubeObject, g);
      else pending.push(g);
    }
    for (const g of pending) {
      const reuse = unused.shift();
      if (reuse) {
        write(reuse, g);
        continue;
      }
      createWithGeneratedName(
        this.store,
        'EndpointSlice',
        {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: {
            name: '',
            generateName: `${svc.metadata.name}-`,
            namespace,
            labels: { ...labels },
            annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': isoSeconds() },
            ownerReferences: [newControllerRef(svc)],
          },
          addressType: 'IPv4',
          endpoints: g.endpoints,
          ports: g.ports,
        },
        `${svc.metadata.name}-`,
        this.names,
      );
    }
    for (const s of unused) this.deleteQuietly('EndpointSlice', namespace, s.metadata.name);
  }

  private syncEndpoints(svc: KubeObject, eps: PodEndpoint[], publishNotReady: boolean): void {
    const namespace = svc.metadata.namespace ?? '';
    const subsets = new Map<string, { addresses: Obj[]; notReadyAddresses: Obj[]; ports: Obj[] }>();
    for (const ep of eps) {
      if (ep.pod.metadata.deletionTimestamp && !publishNotReady) continue;
      if (ep.ports.length === 0 && arrAt(objAt(svc, 'spec'), 'ports').length > 0) continue;
      const k = canonicalJson(ep.ports);
      const s = subsets.get(k) ?? { addresses: [], notReadyAddresses: [], ports: ep.ports.map((p) => ({ ...p })) };
      const address: Obj = {
        ip: ep.ip,
        targetRef: { kind: 'Pod', namespace, name: ep.pod.metadata.name, uid: String(ep.pod.metadata.uid) },
      };
      const nodeName = strAt(objAt(ep.pod, 'spec'), 'nodeName');
      if (nodeName) address.nodeName = nodeName;
      if (publishNotReady || isPodReady(ep.pod)) s.addresses.push(address);
      else s.notReadyAddresses.push(address);
      subsets.set(k, s);
    }
    const byIp = (a: Obj, b: Obj): number => String(a.ip).localeCompare(String(b.ip), undefined, { numeric: true });
    const subsetList: Obj[] = [...subsets.values()].map((s) => {
      const out: Obj = {};
      if (s.addresses.length) out.addresses = s.addresses.sort(byIp);
      if (s.notReadyAddresses.length) out.notReadyAddresses = s.notReadyAddresses.sort(byIp);
      if (s.ports.length) out.ports = s.ports;
      return out;
    });
    const labels: Record<string, string> = { ...labelsOf(svc) };
    if (strAt(objAt(svc, 'spec'), 'clusterIP') === 'None') labels['service.kubernetes.io/headless'] = '';
    const current = this.store.get('Endpoints', namespace, svc.metadata.name);
    if (!current) {
      const obj: KubeObject = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: svc.metadata.name, namespace, labels } };
      if (subsetList.length) obj.subsets = subsetList;
      this.store.create('Endpoints', obj);
      return;
    }
    if (canonicalJson(current.subsets ?? []) === canonicalJson(subsetList) && canonicalJson(labelsOf(current)) === canonicalJson(labels)) return;
    this.store.mutate('Endpoints', namespace, svc.metadata.name, (o) => {
      o.metadata.labels = labels;
      o.metadata.annotations = { ...(o.metadata.annotations ?? {}), 'endpoints.kubernetes.io/last-change-trigger-time': isoSeconds() };
      if (subsetList.length) o.subsets = subsetList;
      else delete o.subsets;
    });
  }

  private removeAll(namespace: string, service: string): void {
    for (const s of this.store.list('EndpointSlice', namespace).items) {
      if (labelsOf(s)[SERVICE_NAME_LABEL] === service && labelsOf(s)[MANAGED_BY_LABEL] === MANAGED_BY) {
        this.deleteQuietly('EndpointSlice', namespace, s.metadata.name);
      }
    }
    this.deleteQuietly('Endpoints', namespace, service);
  }

  private deleteQuietly(kind: string, namespace: string, name: string): void {
    try {
      this.store.delete(kind, namespace, name);
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
  }
}
