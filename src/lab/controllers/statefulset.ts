/**
 * StatefulSet controller (upstream pkg/controller/statefulset): pods with stable names `<set>-<ordinal>`; with the
 * default OrderedReady policy one at a time in ordinal order, each Running and Ready (and available after
 * minReadySeconds) before the next; Parallel creates them all at once. RollingUpdate replaces pods from the highest
 * ordinal down to spec.updateStrategy.rollingUpdate.partition, one at a time: the pod is deleted, and its successor
 * (same name, the update revision) is created once it is gone. OnDelete only gives pods deleted by someone else
 * the update revision. Status: replicas, ready/available/current/updated counts, currentRevision/updateRevision.
 */
import type { KubeObject } from '../../manifests/types.js';
import type { ObjectStore } from '../store.js';
import type { LabClock } from '../timing.js';
import { OwnerController, type ControllerOptions } from './owner.js';
import { CONTROLLER_REVISION_HASH, pruneRevisions, syncUpdateRevision, templateOf } from './revisions.js';
import { clonePlain, deleteOwnedPod, isControlledBy, isPodReady, labelsOf, newControllerRef, numAt, objAt, podAvailableAt, splitKey, strAt, writeStatus } from './util.js';

export class StatefulSetController extends OwnerController {
  constructor(store: ObjectStore, clock: LabClock, opts: ControllerOptions = {}) {
    super(store, clock, { controller: 'statefulset-controller', owner: 'StatefulSet', owned: 'Pod' }, opts);
  }

  protected sync(key: string): void {
    const [namespace, name] = splitKey(key);
    const set = this.store.get('StatefulSet', namespace, name);
    if (!set || set.metadata.deletionTimestamp) return;
    const spec = objAt(set, 'spec') ?? {};
    const replicas = numAt(spec, 'replicas') ?? 1;
    const strategy = objAt(spec, 'updateStrategy') ?? {};
    const rollingUpdate = strAt(strategy, 'type') !== 'OnDelete';
    const partition = numAt(objAt(strategy, 'rollingUpdate'), 'partition') ?? 0;
    const ordered = strAt(spec, 'podManagementPolicy') !== 'Parallel';
    const minReadyMs = this.clock.ms(numAt(spec, 'minReadySeconds') ?? 0);

    const { update, all } = syncUpdateRevision(this.store, set);
    const updateRevision = update.metadata.name;
    const previous = objAt(set, 'status') ?? {};
    const currentName = strAt(previous, 'currentRevision');
    const current = all.find((cr) => cr.metadata.name === currentName) ?? update;
    const currentRevision = current.metadata.name;

    const byOrdinal = new Map<number, KubeObject>();
    for (const p of this.store.list('Pod', namespace).items) {
      if (!isControlledBy(p, set)) continue;
      const ordinal = ordinalOf(name, p.metadata.name);
      if (ordinal !== undefined) byOrdinal.set(ordinal, p);
    }
    const now = Date.now();
    let nextAvailable = Infinity;
    const healthy = (p: KubeObject): boolean => {
      if (p.metadata.deletionTimestamp || strAt(objAt(p, 'status'), 'phase') !== 'Running' || !isPodReady(p)) return false;
      const at = podAvailableAt(p, minReadyMs) ?? Infinity;
      if (at > now) nextAvailable = Math.min(nextAvailable, at);
      return at <= now;
    };
    const revisionOfPod = (p: KubeObject): string => labelsOf(p)[CONTROLLER_REVISION_HASH] ?? '';

    // Create the missing pods, in order (OrderedReady: only while every lower ordinal is healthy).
    let blocked = false;
    for (let ordinal = 0; ordinal < replicas && !blocked; ordinal++) {
      const p = byOrdinal.get(ordinal);
      if (!p) {
        const useCurrent = rollingUpdate && ordinal < partition;
        this.createPod(set, ordinal, useCurrent ? current : update);
        if (ordered) blocked = true;
        continue;
      }
      if (ordered && !healthy(p)) blocked = true;
    }
    // Scale down from the highest ordinal, one at a time when ordered.
    const extra = [...byOrdinal.keys()].filter((o) => o >= replicas).sort((a, b) => b - a);
    if (!blocked && extra.length > 0) {
      const others = [...byOrdinal.entries()].filter(([o]) => o < replicas).map(([, p]) => p);
      const terminating = [...byOrdinal.values()].some((p) => p.metadata.deletionTimestamp);
      for (const o of ordered ? extra.slice(0, 1) : extra) {
        if (ordered && (terminating || !others.every(healthy))) break;
        this.deletePod(set, byOrdinal.get(o) as KubeObject, 'scale down');
      }
    }
    // RollingUpdate: replace the highest ordinal at or above the partition that is not at the update revision,
    // once every pod is healthy (maxUnavailable 1).
    const inRange = [...byOrdinal.entries()].filter(([o]) => o < replicas);
    if (rollingUpdate && !blocked && extra.length === 0 && inRange.length === replicas && inRange.every(([, p]) => healthy(p))) {
      const target = inRange
        .filter(([o, p]) => o >= partition && revisionOfPod(p) !== updateRevision)
        .sort(([a], [b]) => b - a)[0];
      if (target) this.deletePod(set, target[1], `update to revision ${updateRevision}`);
    }
    if (nextAvailable !== Infinity) this.queue.addAfter(key, this.clock.simulatedSeconds(nextAvailable - now + 5));

    // Status, counted over every pod the set owns (terminating ones are neither current nor updated).
    const pods = [...this.store.list('Pod', namespace).items.filter((p) => isControlledBy(p, set))];
    let ready = 0;
    let available = 0;
    let currentCount = 0;
    let updated = 0;
    for (const p of pods) {
      if (isPodReady(p)) {
        ready++;
        if ((podAvailableAt(p, minReadyMs) ?? Infinity) <= now) available++;
      }
      if (p.metadata.deletionTimestamp) continue;
      if (revisionOfPod(p) === currentRevision) currentCount++;
      if (revisionOfPod(p) === updateRevision) updated++;
    }
    const next: Record<string, unknown> = {
      observedGeneration: set.metadata.generation ?? 1,
      replicas: pods.length,
      readyReplicas: ready,
      availableReplicas: available,
      currentReplicas: currentCount,
      updatedReplicas: updated,
      currentRevision,
      updateRevision,
      collisionCount: 0,
    };
    // The rolling update is complete once every pod runs the update revision and is ready.
    if (rollingUpdate && updated === pods.length && ready === pods.length && pods.length === replicas) {
      next.currentRevision = updateRevision;
      next.currentReplicas = updated;
    }
    pruneRevisions(this.store, set, new Set([String(next.currentRevision), updateRevision, ...pods.map(revisionOfPod)]));
    writeStatus(this.store, 'StatefulSet', set, next);
  }

  private createPod(set: KubeObject, ordinal: number, revision: KubeObject): void {
    const template = templateOf(revision) as KubeObject & { metadata?: KubeObject['metadata']; spec?: KubeObject['spec'] };
    const tmeta = (template.metadata ?? {}) as KubeObject['metadata'];
    const name = `${set.metadata.name}-${ordinal}`;
    const podSpec = clonePlain(template.spec ?? {}) as Record<string, unknown>;
    podSpec.hostname = name;
    const serviceName = strAt(objAt(set, 'spec'), 'serviceName');
    if (serviceName) podSpec.subdomain = serviceName;
    const pod: KubeObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: set.metadata.namespace ?? '',
        labels: {
          ...(tmeta.labels ?? {}),
          [CONTROLLER_REVISION_HASH]: revision.metadata.name,
          'statefulset.kubernetes.io/pod-name': name,
          'apps.kubernetes.io/pod-index': String(ordinal),
        },
        ...(tmeta.annotations && Object.keys(tmeta.annotations).length > 0 ? { annotations: { ...tmeta.annotations } } : {}),
        ownerReferences: [newControllerRef(set)],
      },
      spec: podSpec as KubeObject['spec'],
      status: { phase: 'Pending' },
    };
    try {
      this.store.create('Pod', pod);
      this.recorder.record(set, 'Normal', 'SuccessfulCreate', `create Pod ${name} in StatefulSet ${set.metadata.name} successful`);
    } catch (err) {
      // The previous pod of this ordinal is still being removed: the DELETED event re-queues the set.
      if ((err as { code?: number }).code === 409) return;
      this.recorder.record(set, 'Warning', 'FailedCreate', `create Pod ${name} in StatefulSet ${set.metadata.name} failed error: ${(err as Error).message}`);
      throw err;
    }
  }

  private deletePod(set: KubeObject, pod: KubeObject, why: string): void {
    deleteOwnedPod(this.store, this.recorder, set, pod, `delete Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} successful (${why})`);
  }

}

function ordinalOf(setName: string, podName: string): number | undefined {
  if (!podName.startsWith(`${setName}-`)) return undefined;
  const rest = podName.slice(setName.length + 1);
  return /^(0|[1-9]\d*)$/.test(rest) ? Number(rest) : undefined;
}
