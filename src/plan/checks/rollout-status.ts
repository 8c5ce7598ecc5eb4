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
