/**
 * ReplicaSet controller (upstream pkg/controller/replicaset): keeps the number of active pods owned by a
 * ReplicaSet at spec.replicas and reports status. Pods are created through `store.create` so that
 * admission hooks (the LBC readiness-gate webhook) see them, named `<rs>-<5 random chars>`.
 * When scaling down, pods are deleted in upstream's order: unscheduled, pending, not ready, ready for the
 * shortest time, most restarts, newest first.
 */
import type { KubeObject } from '../../manifests/types.js';
import type { ObjectStore } from '../store.js';
import type { LabClock } from '../timing.js';
import { OwnerController, type ControllerOptions } from './owner.js';
import {
  arrAt,
  canonicalJson,
  clonePlain,
  createWithGeneratedName,
  isControlledBy,
  isPodActive,
  isPodReady,
  keyOf,
  labelsOf,
  newControllerRef,
  numAt,
  objAt,
  parseTime,
  podAvailableAt,
  podReadyCondition,
  splitKey,
  strAt,
} from './util.js';

export class ReplicaSetController extends OwnerController {
  private readonly names: () => number;

  constructor(store: ObjectStore, clock: LabClock, opts: ControllerOptions = {}) {
    super(store, clock, { controller: 'replicaset-controller', owner: 'ReplicaSet', owned: 'Pod' }, opts);
    this.names = clock.random.fork('replicaset-names').fn();
  }

  protected sync(key: string): void {
    const [namespace, name] = splitKey(key);
    const rs = this.store.get('ReplicaSet', namespace, name);
    if (!rs) return;
    const desired = numAt(objAt(rs, 'spec'), 'replicas') ?? 1;
    const owned = (): KubeObject[] => this.store.list('Pod', namespace).items.filter((p) => isControlledBy(p, rs));
    let pods = owned();
    const active = pods.filter(isPodActive);
    if (!rs.metadata.deletionTimestamp) {
      const diff = active.length - desired;
      if (diff < 0) {
        for (let i = 0; i < -diff; i++) this.createPod(rs);
        pods = owned();
      } else if (diff > 0) {
        for (const p of this.podsToDelete(active, diff)) {
          try {
            this.store.delete('Pod', namespace, p.metadata.name);
            this.recorder.record(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${p.metadata.name}`);
          } catch (err) {
            if ((err as { code?: number }).code !== 404) throw err;
          }
        }
        pods = owned();
      }
    }
    this.updateStatus(rs, pods);
  }

  private createPod(rs: KubeObject): void {
    const template = objAt(objAt(rs, 'spec') ?? {}, 'template') ?? {};
    const tmeta = objAt(template, 'metadata') ?? {};
    const pod: KubeObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: '',
        generateName: `${rs.metadata.name}-`,
        namespace: rs.metadata.namespace ?? '',
        labels: { ...((objAt(tmeta, 'labels') as Record<string, string> | undefined) ?? {}) },
        ownerReferences: [newControllerRef(rs)],
      },
      spec: clonePlain(objAt(template, 'spec') ?? {}),
      status: { phase: 'Pending' },
    };
    const annotations = objAt(tmeta, 'annotations') as Record<string, string> | undefined;
    if (annotations && Object.keys(annotations).length > 0) pod.metadata.annotations = { ...annotations };
    try {
      const created = createWithGeneratedName(this.store, 'Pod', pod, `${rs.metadata.name}-`, this.names);
      this.arrivals.note(created);
      this.recorder.record(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata.name}`);
    } catch (err) {
      this.recorder.record(rs, 'Warning', 'FailedCreate', `Error creating: ${(err as Error).message}`);
      throw err;
    }
  }

  /** controller.ActivePodsWithRanks ordering: the first pods are the cheapest to lose. */
  private podsToDelete(active: KubeObject[], count: number): KubeObject[] {
    const phaseRank = (p: KubeObject): number => {
      const phase = strAt(objAt(p, 'status'), 'phase');
      return phase === 'Pending' ? 0 : phase === 'Unknown' ? 1 : phase === 'Running' ? 2 : 0;
    };
    const restarts = (p: KubeObject): number =>
      arrAt(objAt(p, 'status'), 'containerStatuses').reduce((s, c) => s + (numAt(c, 'restartCount') ?? 0), 0);
    const readySince = (p: KubeObject): number => parseTime(podReadyCondition(p)?.lastTransitionTime) ?? 0;
    const cost = (p: KubeObject): number => Number(p.metadata.annotations?.['controller.kubernetes.io/pod-deletion-cost'] ?? 0) || 0;
    const created = (p: KubeObject): number => parseTime(p.metadata.creationTimestamp as string | undefined) ?? 0;
    const order = (p: KubeObject): number => this.arrivals.of(p);
    const sorted = [...active].sort((a, b) => {
      const assignedA = strAt(objAt(a, 'spec'), 'nodeName') ? 1 : 0;
      const assignedB = strAt(objAt(b, 'spec'), 'nodeName') ? 1 : 0;
      if (assignedA !== assignedB) return assignedA - assignedB;
      if (phaseRank(a) !== phaseRank(b)) return phaseRank(a) - phaseRank(b);
      const ra = isPodReady(a) ? 1 : 0;
      const rb = isPodReady(b) ? 1 : 0;
      if (ra !== rb) return ra - rb;
      if (cost(a) !== cost(b)) return cost(a) - cost(b);
      if (ra && rb && readySince(a) !== readySince(b)) return readySince(b) - readySince(a);
      if (restarts(a) !== restarts(b)) return restarts(b) - restarts(a);
      if (created(a) !== created(b)) return created(b) - created(a);
      return order(b) - order(a);
    });
    return sorted.slice(0, count);
  }

  private updateStatus(rs: KubeObject, pods: KubeObject[]): void {
    const spec = objAt(rs, 'spec') ?? {};
    const minReadyMs = this.clock.ms(numAt(spec, 'minReadySeconds') ?? 0);
    const templateLabels = labelsOf((objAt(spec, 'template') ?? {}) as KubeObject);
    const active = pods.filter(isPodActive);
    const now = Date.now();
    let ready = 0;
    let available = 0;
    let fullyLabeled = 0;
    let nextAvailable = Infinity;
    for (const p of active) {
      const labels = labelsOf(p);
      if (Object.entries(templateLabels).every(([k, v]) => labels[k] === v)) fullyLabeled++;
      if (!isPodReady(p)) continue;
      ready++;
      const at = podAvailableAt(p, minReadyMs) ?? Infinity;
      if (at <= now) available++;
      else nextAvailable = Math.min(nextAvailable, at);
    }
    if (nextAvailable !== Infinity) {
      // Re-check when the next pod has been ready for minReadySeconds (upstream: AddAfter(minReadySeconds)).
      this.queue.addAfter(keyOf(rs), this.clock.simulatedSeconds(nextAvailable - now + 5));
    }
    const old = objAt(rs, 'status') ?? {};
    const next: Record<string, unknown> = {
      replicas: active.length,
      fullyLabeledReplicas: fullyLabeled,
      readyReplicas: ready,
      availableReplicas: available,
      observedGeneration: rs.metadata.generation ?? 1,
    };
    const conditions = old.conditions;
    if (conditions !== undefined) next.conditions = conditions;
    if (canonicalJson(old) === canonicalJson(next)) return;
    this.store.mutate(
      'ReplicaSet',
      rs.metadata.namespace ?? '',
      rs.metadata.name,
      (o) => {
        o.status = next as KubeObject['status'];
      },
      'status',
    );
  }
}
