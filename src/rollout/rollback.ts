import { isDeepStrictEqual } from 'node:util';
import { InputError } from '../errors.js';
import { KubeApiError, type KubeClient } from '../kube/client.js';
import { revisionOf } from '../plan/checks/rollout-status.js';
import type { JsonObject, KubeObject } from '../manifests/types.js';

/**
 * Rollback of a Deployment to an earlier revision, the way `kubectl rollout undo` does it: find the
 * Deployment's ReplicaSets (by owner uid), pick the previous revision (or the one asked for), and put that
 * ReplicaSet's pod template back into `spec.template` (without the `pod-template-hash` label), together with
 * the annotations the ReplicaSet carries (those under `deployment.kubernetes.io/` and kubectl's
 * last-applied-configuration stay as they are on the Deployment). The Deployment controller then rolls out
 * the old template like any other change (it re-uses the old ReplicaSet and gives it the next revision
 * number), so the same safety waits apply: `rollbackAndWait` hands the rolled-back workload to a wait function
 * (the deploy runner's workload wait).
 *
 * One JSON patch, guarded by a `test` of `metadata.generation` so a concurrent change of the spec is never
 * overwritten (the read–patch is retried a few times on such a conflict).
 */

export interface RollbackOptions {
  /** A specific revision; default: the newest revision older than the current one. */
  toRevision?: number;
  /** Compute the rollback but do not patch. */
  dryRun?: boolean;
  now?: () => number;
}

interface Common {
  namespace: string;
  name: string;
  /** Revisions that have a ReplicaSet, newest first. */
  revisions: number[];
  message: string;
}

export type RollbackResult =
  | (Common & {
      outcome: 'rolled-back' | 'dry-run';
      fromRevision: number;
      toRevision: number;
      /** The ReplicaSet whose template was restored. */
      replicaSet: string;
      /** ISO time of the patch (absent for dry-run). */
      patchedAt?: string;
      /** Label selector of the Deployment's pods (for the wait). */
      selector: string;
      /** IPs of the Deployment's pods before the rollback: the targets that will drain. */
      podIpsBefore: string[];
    })
  | (Common & { outcome: 'nothing-to-roll-back'; fromRevision?: number })
  | (Common & { outcome: 'already-at-revision'; fromRevision: number; toRevision: number });

export const POD_TEMPLATE_HASH = 'pod-template-hash';

/** Annotations of the Deployment that a rollback keeps; every other annotation comes from the ReplicaSet. */
export function isKeptAnnotation(key: string): boolean {
  return key.startsWith('deployment.kubernetes.io/') || key === 'kubectl.kubernetes.io/last-applied-configuration' || key === 'deprecated.deployment.rollback.to';
}

export interface RollbackPlan {
  fromRevision?: number;
  toRevision?: number;
  replicaSet?: KubeObject;
  revisions: number[];
  /** Why there is nothing to do (no target revision). */
  nothing?: string;
}

/** Pure: which ReplicaSet to roll back to. Throws InputError when `toRevision` does not exist. */
export function planRollback(deployment: KubeObject, replicaSets: KubeObject[], toRevision?: number): RollbackPlan {
  const owned = replicaSets.filter((rs) => ownedBy(rs, deployment));
  const byRevision = new Map<number, KubeObject>();
  for (const rs of owned) {
    const r = revisionOf(rs);
    if (r === undefined || !Number.isInteger(r) || r <= 0) continue;
    const prev = byRevision.get(r);
    // Two ReplicaSets with one revision should not happen; prefer the newer object.
    if (!prev || String(rs.metadata.creationTimestamp ?? '') > String(prev.metadata.creationTimestamp ?? '')) byRevision.set(r, rs);
  }
  const revisions = [...byRevision.keys()].sort((a, b) => b - a);
  const current = revisionOf(deployment) ?? revisions[0];
  const ref = `Deployment ${deployment.metadata.namespace ?? ''}/${deployment.metadata.name}`;
  if (toRevision !== undefined) {
    const rs = byRevision.get(toRevision);
    if (!rs) {
      throw InputError.single(
        `${ref} has no revision ${toRevision}; revisions with a ReplicaSet: ${revisions.length ? revisions.join(', ') : 'none'}${current !== undefined ? ` (current: ${current})` : ''}`,
        revisions.length > 1
          ? `pass one of ${revisions.filter((r) => r !== current).join(', ')}, or omit the revision to go back to the previous one (kubectl rollout history deployment/${deployment.metadata.name} -n ${deployment.metadata.namespace ?? 'default'} lists them)`
          : 'there is no earlier revision to roll back to; older ReplicaSets may have been cleaned up (spec.revisionHistoryLimit)',
      );
    }
    return { ...(current !== undefined ? { fromRevision: current } : {}), toRevision, replicaSet: rs, revisions };
  }
  const previous = revisions.find((r) => current === undefined || r < current);
  if (previous === undefined || current === undefined) {
    return {
      ...(current !== undefined ? { fromRevision: current } : {}),
      revisions,
      nothing:
        revisions.length <= 1
          ? `${ref} has only ${revisions.length === 0 ? 'no' : 'one'} revision: this was its first rollout, there is nothing to roll back to`
          : `${ref} is at revision ${current}, and no older revision has a ReplicaSet (revisions: ${revisions.join(', ')})`,
    };
  }
  return { fromRevision: current, toRevision: previous, replicaSet: byRevision.get(previous)!, revisions };
}

function ownedBy(child: KubeObject, owner: KubeObject): boolean {
  return ((child.metadata.ownerReferences ?? []) as JsonObject[]).some((r) => r.uid === owner.metadata.uid);
}

/** Pure: the pod template and annotations the Deployment gets back. */
export function rollbackContent(deployment: KubeObject, rs: KubeObject): { template: JsonObject; annotations: Record<string, string> } {
  const template = structuredClone(((rs.spec as JsonObject | undefined)?.template ?? {}) as JsonObject);
  const meta = (template.metadata ?? {}) as JsonObject;
  const labels = { ...((meta.labels ?? {}) as Record<string, string>) };
  delete labels[POD_TEMPLATE_HASH];
  template.metadata = { ...meta, labels };
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(deployment.metadata.annotations ?? {})) if (isKeptAnnotation(k)) annotations[k] = v;
  for (const [k, v] of Object.entries(rs.metadata.annotations ?? {})) if (!isKeptAnnotation(k)) annotations[k] = v;
  return { template, annotations };
}

/** Whether two pod templates are the same, ignoring the pod-template-hash label. */
export function sameTemplate(a: JsonObject | undefined, b: JsonObject | undefined): boolean {
  const strip = (t: JsonObject | undefined): JsonObject => {
    const c = structuredClone(t ?? {});
    const meta = (c.metadata ?? {}) as JsonObject;
    const labels = { ...((meta.labels ?? {}) as Record<string, string>) };
    delete labels[POD_TEMPLATE_HASH];
    c.metadata = { ...meta, labels };
    return c;
  };
  return isDeepStrictEqual(strip(a), strip(b));
}

export function selectorOf(deployment: KubeObject): string {
  const sel = ((deployment.spec as JsonObject | undefined)?.selector ?? {}) as JsonObject;
  const parts = Object.entries((sel.matchLabels ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`);
  for (const e of (sel.matchExpressions ?? []) as JsonObject[]) {
    const values = ((e.values ?? []) as string[]).join(',');
    if (e.operator === 'In') parts.push(`${String(e.key)} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${String(e.key)} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(String(e.key));
    else if (e.operator === 'DoesNotExist') parts.push(`!${String(e.key)}`);
  }
  return parts.join(',');
}

export async function rollbackDeployment(kube: KubeClient, namespace: string, name: string, options: RollbackOptions = {}): Promise<RollbackResult> {
  const now = options.now ?? Date.now;
  for (let attempt = 1; ; attempt++) {
    const deployment = await kube.get('apps/v1', 'Deployment', namespace, name);
    if (!deployment) {
      throw InputError.single(`Deployment ${namespace}/${name} does not exist`, `check the name and namespace (kubectl get deployments -n ${namespace})`);
    }
    if ((deployment.spec as JsonObject | undefined)?.paused === true) {
      throw InputError.single(
        `Deployment ${namespace}/${name} is paused; a rollback would not be rolled out`,
        `resume it first: kubectl rollout resume deployment/${name} -n ${namespace}`,
      );
    }
    const selector = selectorOf(deployment);
    const replicaSets = (await kube.list('apps/v1', 'ReplicaSet', namespace, selector ? { labelSelector: selector } : {})).items;
    const plan = planRollback(deployment, replicaSets, options.toRevision);
    const common = { namespace, name, revisions: plan.revisions };
    if (!plan.replicaSet || plan.toRevision === undefined) {
      return { ...common, outcome: 'nothing-to-roll-back', ...(plan.fromRevision !== undefined ? { fromRevision: plan.fromRevision } : {}), message: plan.nothing ?? 'nothing to roll back to' };
    }
    const fromRevision = plan.fromRevision ?? plan.toRevision;
    const rs = plan.replicaSet;
    const currentTemplate = (deployment.spec as JsonObject | undefined)?.template as JsonObject | undefined;
    if (sameTemplate(currentTemplate, (rs.spec as JsonObject | undefined)?.template as JsonObject | undefined)) {
      return {
        ...common,
        outcome: 'already-at-revision',
        fromRevision,
        toRevision: plan.toRevision,
        message: `Deployment ${namespace}/${name}: the current pod template already matches revision ${plan.toRevision}; nothing changed`,
      };
    }
    // The Deployment's pods: selected, and from one of its ReplicaSets (selectors of two Deployments may overlap).
    const hashes = new Set(replicaSets.filter((x) => ownedBy(x, deployment)).map((x) => x.metadata.labels?.[POD_TEMPLATE_HASH]).filter((h): h is string => h !== undefined));
    const pods = (await kube.list('v1', 'Pod', namespace, selector ? { labelSelector: selector } : {})).items.filter((p) => hashes.has(p.metadata.labels?.[POD_TEMPLATE_HASH] ?? ''));
    const podIpsBefore = pods.map((p) => (p.status as JsonObject | undefined)?.podIP).filter((ip): ip is string => typeof ip === 'string' && ip !== '');
    const base = {
      ...common,
      fromRevision,
      toRevision: plan.toRevision,
      replicaSet: rs.metadata.name,
      selector,
      podIpsBefore,
    };
    if (options.dryRun) {
      return { ...base, outcome: 'dry-run', message: `would roll Deployment ${namespace}/${name} back from revision ${fromRevision} to ${plan.toRevision} (ReplicaSet ${rs.metadata.name})` };
    }
    const { template, annotations } = rollbackContent(deployment, rs);
    const patch = [
      { op: 'test', path: '/metadata/generation', value: deployment.metadata.generation ?? null },
      { op: 'replace', path: '/spec/template', value: template },
      { op: 'add', path: '/metadata/annotations', value: annotations },
    ];
    try {
      await kube.patch('apps/v1', 'Deployment', namespace, name, patch, 'json');
    } catch (err) {
      // 422 from the test op (or 409): the spec changed between our read and the patch; read again.
      if (err instanceof KubeApiError && (err.code === 409 || err.code === 422) && attempt < 3) continue;
      throw err;
    }
    return {
      ...base,
      outcome: 'rolled-back',
      patchedAt: new Date(now()).toISOString(),
      message: `rolled Deployment ${namespace}/${name} back from revision ${fromRevision} to ${plan.toRevision} (ReplicaSet ${rs.metadata.name}); the Deployment controller rolls it out as revision ${Math.max(...plan.revisions, fromRevision) + 1}`,
    };
  }
}

/** What the workload wait needs to know about a rollback in progress. */
export interface RollbackWaitTarget {
  namespace: string;
  name: string;
  selector: string;
  /** The revision the Deployment had before the rollback (the bad one). */
  fromRevision: number;
  toRevision: number;
  /** Pods of the bad revision (and any others) before the rollback: their targets must drain. */
  oldPodIps: Set<string>;
}

/**
 * Rolls back and waits with the caller's wait (the deploy runner's workload wait: rollout complete, gates
 * True, new targets healthy, nothing draining). The wait is not called when nothing was patched.
 */
export async function rollbackAndWait(
  kube: KubeClient,
  namespace: string,
  name: string,
  options: RollbackOptions,
  wait: (target: RollbackWaitTarget) => Promise<void>,
): Promise<RollbackResult> {
  const result = await rollbackDeployment(kube, namespace, name, options);
  if (result.outcome === 'rolled-back') {
    await wait({
      namespace,
      name,
      selector: result.selector,
      fromRevision: result.fromRevision,
      toRevision: result.toRevision,
      oldPodIps: new Set(result.podIpsBefore),
    });
  }
  return result;
}
