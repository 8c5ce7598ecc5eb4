/**
 * DaemonSet controller (upstream pkg/controller/daemon): one pod per schedulable Node, bound to it by spec.nodeName
 * (the embedded control plane has no scheduler). RollingUpdate without surge deletes the old pod of up to
 * maxUnavailable nodes and creates the successor; with maxSurge the successor starts next to the old pod, which is
 * deleted once the new one is available. Status per upstream, from the oldest pod on each node:
 * desired/current/updated NumberScheduled, numberReady, numberAvailable, numberUnavailable.
 */
import type { KubeObject } from '../../manifests/types.js';
import type { ObjectStore } from '../store.js';
import type { LabClock } from '../timing.js';
import { OwnerController, type ControllerOptions } from './owner.js';
import { CONTROLLER_REVISION_HASH, pruneRevisions, syncUpdateRevision } from './revisions.js';
import {
  clonePlain,
  createWithGeneratedName,
  deleteOwnedPod,
  isControlledBy,
  isPodReady,
  labelsOf,
  newControllerRef,
  numAt,
  objAt,
  parseTime,
  podAvailableAt,
  scaledValue,
  splitKey,
  strAt,
  writeStatus,
} from './util.js';

export class DaemonSetController extends OwnerController {
  private readonly names: () => number;

  constructor(store: ObjectStore, clock: LabClock, opts: ControllerOptions = {}) {
    super(store, clock, { controller: 'daemonset-controller', owner: 'DaemonSet', owned: 'Pod' }, opts);
    this.names = clock.random.fork('daemonset-names').fn();
  }

  /** A Node added, changed or gone changes where every DaemonSet must run. */
  protected override watchMore(): void {
    this.watch('Node', () => this.requeueAll());
  }

  protected sync(key: string): void {
    const [namespace, name] = splitKey(key);
    const ds = this.store.get('DaemonSet', namespace, name);
    if (!ds || ds.metadata.deletionTimestamp) return;
    const spec = objAt(ds, 'spec') ?? {};
    const strategy = objAt(spec, 'updateStrategy') ?? {};
    const rolling = strAt(strategy, 'type') !== 'OnDelete';
    const minReadyMs = this.clock.ms(numAt(spec, 'minReadySeconds') ?? 0);
    const nodes = this.store.list('Node').items.filter((n) => objAt(n, 'spec')?.unschedulable !== true);
    const desired = nodes.length;
    const ru = objAt(strategy, 'rollingUpdate') ?? {};
    const maxSurge = scaledValue(ru.maxSurge, desired, true, 0);
    const maxUnavailable = maxSurge > 0 ? scaledValue(ru.maxUnavailable, desired, true, 0) : Math.max(1, scaledValue(ru.maxUnavailable, desired, true, 1));
    const { hash } = syncUpdateRevision(this.store, ds);
    const now = Date.now();
    let nextAvailable = Infinity;
    const available = (p: KubeObject): boolean => {
      const at = podAvailableAt(p, minReadyMs) ?? Infinity;
      if (at > now && at !== Infinity) nextAvailable = Math.min(nextAvailable, at);
      return at <= now;
    };
    const isNew = (p: KubeObject): boolean => labelsOf(p)[CONTROLLER_REVISION_HASH] === hash;

    const podsOn = (): Map<string, KubeObject[]> => {
      const byNode = new Map<string, KubeObject[]>(nodes.map((n) => [n.metadata.name, []]));
      for (const p of this.store.list('Pod', namespace).items) {
        if (!isControlledBy(p, ds)) continue;
        const node = strAt(objAt(p, 'spec'), 'nodeName') ?? '';
        const list = byNode.get(node);
        if (list) list.push(p);
        else this.deletePod(ds, p, `node ${node || '(none)'} does not run it`);
      }
      for (const list of byNode.values()) list.sort((a, b) => (parseTime(a.metadata.creationTimestamp) ?? 0) - (parseTime(b.metadata.creationTimestamp) ?? 0) || this.arrivals.of(a) - this.arrivals.of(b));
      return byNode;
    };

    let byNode = podsOn();
    let surging = 0;
    let unavailable = 0;
    for (const list of byNode.values()) {
      const live = list.filter((p) => !p.metadata.deletionTimestamp);
      if (live.some((p) => !isNew(p)) && live.some(isNew)) surging++;
      if (!live.some(available)) unavailable++;
    }
    for (const [node, list] of byNode) {
      const live = list.filter((p) => !p.metadata.deletionTimestamp);
      const fresh = live.filter(isNew);
      const old = live.filter((p) => !isNew(p));
      if (live.length === 0) {
        this.createPod(ds, node, hash);
        continue;
      }
      if (!rolling || old.length === 0) continue;
      if (maxSurge > 0) {
        if (fresh.length === 0 && surging < maxSurge) {
          surging++;
          this.createPod(ds, node, hash);
        } else if (fresh.some(available)) {
          for (const p of old) this.deletePod(ds, p, `pod ${fresh[0]?.metadata.name ?? ''} of revision ${hash} is available`);
        }
      } else if (fresh.length === 0) {
        const wasAvailable = old.some(available);
        if (wasAvailable && unavailable >= maxUnavailable) continue;
        if (wasAvailable) unavailable++;
        for (const p of old) this.deletePod(ds, p, `update to revision ${hash}`);
      }
    }
    if (nextAvailable !== Infinity) this.queue.addAfter(key, this.clock.simulatedSeconds(nextAvailable - now + 5));

    byNode = podsOn();
    let current = 0;
    let updated = 0;
    let ready = 0;
    let numberAvailable = 0;
    const inUse = new Set<string>([hash]);
    for (const list of byNode.values()) {
      for (const p of list) inUse.add(labelsOf(p)[CONTROLLER_REVISION_HASH] ?? '');
      const oldest = list[0];
      if (!oldest) continue;
      current++;
      if (isPodReady(oldest)) {
        ready++;
        if ((podAvailableAt(oldest, minReadyMs) ?? Infinity) <= now) numberAvailable++;
      }
      if (isNew(oldest)) updated++;
    }
    pruneRevisions(this.store, ds, inUse);
    const next: Record<string, unknown> = {
      observedGeneration: ds.metadata.generation ?? 1,
      desiredNumberScheduled: desired,
      currentNumberScheduled: current,
      numberMisscheduled: 0,
      numberReady: ready,
      updatedNumberScheduled: updated,
      numberAvailable,
      ...(desired - numberAvailable > 0 ? { numberUnavailable: desired - numberAvailable } : {}),
    };
    writeStatus(this.store, 'DaemonSet', ds, next);
  }

  private createPod(ds: KubeObject, node: string, hash: string): void {
    const template = objAt(objAt(ds, 'spec') ?? {}, 'template') ?? {};
    const tmeta = objAt(template, 'metadata') ?? {};
    const podSpec = clonePlain(objAt(template, 'spec') ?? {});
    podSpec.nodeName = node;
    const annotations = objAt(tmeta, 'annotations') as Record<string, string> | undefined;
    const pod: KubeObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: '',
        generateName: `${ds.metadata.name}-`,
        namespace: ds.metadata.namespace ?? '',
        labels: {
          ...((objAt(tmeta, 'labels') as Record<string, string> | undefined) ?? {}),
          [CONTROLLER_REVISION_HASH]: hash,
          'pod-template-generation': String(ds.metadata.generation ?? 1),
        },
        ...(annotations && Object.keys(annotations).length > 0 ? { annotations: { ...annotations } } : {}),
        ownerReferences: [newControllerRef(ds)],
      },
      spec: podSpec,
      status: { phase: 'Pending' },
    };
    try {
      const created = createWithGeneratedName(this.store, 'Pod', pod, `${ds.metadata.name}-`, this.names);
      this.arrivals.note(created);
      this.recorder.record(ds, 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata.name}`);
    } catch (err) {
      this.recorder.record(ds, 'Warning', 'FailedCreate', `Error creating: ${(err as Error).message}`);
      throw err;
    }
  }

  private deletePod(ds: KubeObject, pod: KubeObject, why: string): void {
    deleteOwnedPod(this.store, this.recorder, ds, pod, `Deleted pod: ${pod.metadata.name} (${why})`);
  }

}
