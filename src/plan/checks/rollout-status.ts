import type { JsonObject, KubeObject } from '../../manifests/types.js';

/**
 * kubectl's rollout-status rule for Deployments (and the same fields on Argo Rollouts), as a pure function:
 * what `kubectl rollout status` waits for, with its messages.
 */
export type RolloutStatus =
  | { done: true; message: string }
  | { done: false; failed: boolean; message: string };

export function deploymentRolloutStatus(d: KubeObject): RolloutStatus {
  const spec = (d.spec ?? {}) as JsonObject;
  const status = (d.status ?? {}) as JsonObject;
  const name = d.metadata.name;
  const generation = Number(d.metadata.generation ?? 0);
  const observed = Number(status.observedGeneration ?? 0);
  if (generation > observed) {
    return { done: false, failed: false, message: `waiting for deployment "${name}" spec update to be observed` };
  }
  const conditions = Array.isArray(status.conditions) ? (status.conditions as JsonObject[]) : [];
  const progressing = conditions.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return { done: false, failed: true, message: `deployment "${name}" exceeded its progress deadline` };
  }
  const desired = spec.replicas === undefined ? 1 : Number(spec.replicas);
  const updated = Number(status.updatedReplicas ?? 0);
  const replicas = Number(status.replicas ?? 0);
  const available = Number(status.availableReplicas ?? 0);
  if (updated < desired) {
    return { done: false, failed: false, message: `${updated} out of ${desired} new replicas have been updated` };
  }
  if (replicas > updated) {
    return { done: false, failed: false, message: `${replicas - updated} old replicas are pending termination` };
  }
  if (available < updated) {
    return { done: false, failed: false, message: `${available} of ${updated} updated replicas are available` };
  }
  return { done: true, message: `deployment "${name}" successfully rolled out` };
}

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';

export function revisionOf(o: KubeObject | undefined): number | undefined {
  const v = o?.metadata.annotations?.[REVISION_ANNOTATION];
  return v === undefined ? undefined : Number(v);
}

/**
 * The rollout of a StatefulSet or DaemonSet whose update strategy is OnDelete never progresses by itself: kubectl
 * refuses to wait on it, and so does the plan (it is applied and named as not waited on).
 */
export function updateStrategyOf(o: KubeObject): string {
  const strategy = ((o.spec as JsonObject | undefined)?.updateStrategy ?? {}) as JsonObject;
  return typeof strategy.type === 'string' ? strategy.type : 'RollingUpdate';
}

/**
 * kubectl's rule for a StatefulSet with the RollingUpdate strategy: the spec observed, every replica ready, then
 * either the pods from the partition up updated (a rollingUpdate block, which the API server always defaults) or the
 * update revision become the current one.
 */
export function statefulSetRolloutStatus(s: KubeObject): RolloutStatus {
  const spec = (s.spec ?? {}) as JsonObject;
  const status = (s.status ?? {}) as JsonObject;
  const name = s.metadata.name;
  const observed = Number(status.observedGeneration ?? 0);
  if (observed === 0 || Number(s.metadata.generation ?? 0) > observed) {
    return { done: false, failed: false, message: `waiting for the spec of statefulset "${name}" to be observed` };
  }
  const ready = Number(status.readyReplicas ?? 0);
  if (spec.replicas !== undefined && ready < Number(spec.replicas)) {
    return { done: false, failed: false, message: `${Number(spec.replicas) - ready} pod(s) of statefulset "${name}" not ready yet` };
  }
  const updated = Number(status.updatedReplicas ?? 0);
  const rolling = ((spec.updateStrategy ?? {}) as JsonObject).rollingUpdate as JsonObject | undefined;
  if (rolling !== undefined) {
    if (spec.replicas !== undefined && rolling.partition !== undefined) {
      const want = Number(spec.replicas) - Number(rolling.partition);
      if (updated < want) return { done: false, failed: false, message: `partitioned rollout of statefulset "${name}": ${updated} of ${want} new pod(s) updated` };
    }
    return { done: true, message: `statefulset "${name}": partitioned rollout complete, ${updated} new pod(s) updated` };
  }
  if (status.updateRevision !== status.currentRevision) {
    return { done: false, failed: false, message: `statefulset "${name}": ${updated} pod(s) at revision ${String(status.updateRevision)}, rolling update in progress` };
  }
  return { done: true, message: `statefulset "${name}": rolling update complete, ${Number(status.currentReplicas ?? 0)} pod(s) at revision ${String(status.currentRevision)}` };
}

/** kubectl's rule for a DaemonSet with the RollingUpdate strategy: observed, then every scheduled pod updated and available. */
export function daemonSetRolloutStatus(d: KubeObject): RolloutStatus {
  const status = (d.status ?? {}) as JsonObject;
  const name = d.metadata.name;
  if (Number(d.metadata.generation ?? 0) > Number(status.observedGeneration ?? 0)) {
    return { done: false, failed: false, message: `waiting for the spec of daemon set "${name}" to be observed` };
  }
  const desired = Number(status.desiredNumberScheduled ?? 0);
  const updated = Number(status.updatedNumberScheduled ?? 0);
  if (updated < desired) return { done: false, failed: false, message: `daemon set "${name}": ${updated} of ${desired} new pod(s) updated` };
  const available = Number(status.numberAvailable ?? 0);
  if (available < desired) return { done: false, failed: false, message: `daemon set "${name}": ${available} of ${desired} updated pod(s) available` };
  return { done: true, message: `daemon set "${name}" successfully rolled out` };
}

/** The rollout rule for a waited kind. */
export function rolloutStatusOf(kind: string, o: KubeObject): RolloutStatus {
  if (kind === 'StatefulSet') return statefulSetRolloutStatus(o);
  if (kind === 'DaemonSet') return daemonSetRolloutStatus(o);
  return deploymentRolloutStatus(o);
}

/** A ControllerRevision's number (StatefulSets and DaemonSets keep their template history in them). */
export function controllerRevisionNumber(cr: KubeObject): number {
  return Number(cr.revision ?? 0);
}
