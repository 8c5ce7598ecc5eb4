import { isDeepStrictEqual } from 'node:util';
import { InputError } from '../errors.js';
import { FIELD_MANAGER, KubeApiError, type KubeClient } from '../kube/client.js';
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
 * The template goes back by server-side apply as the `alb-rollout` field manager (not a patch: an `Update` entry of the
 * same name is another manager to the API server, kubernetes/kubernetes#107417, and the next deploy's apply would
 * conflict with it). The applied configuration is what `alb-rollout` applied last (read from managedFields) with the
 * previous template, so that the fields it owned stay; it is conditional on the resourceVersion read, so a
 * concurrent change is never overwritten (the read–apply is retried a few times on such a conflict). Annotations
 * owned by other managers are left as they are.
 */

export interface RollbackOptions {
  /** A specific revision; default: the newest revision older than the current one. */
  toRevision?: number;
  /** Roll back only while the Deployment is at this generation (what this run applied); otherwise throw StaleRollback. */
  expectGeneration?: number;
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

/**
 * Pure: the part of `live` that `manager`'s Apply entry in managedFields owns (FieldsV1: `f:` map keys, `k:` list
 * items by their keys, `v:` set members, `.` the node itself) — what that manager applied last, as the server holds it.
 */
export function ownedConfig(live: KubeObject, manager: string): JsonObject {
  const entry = ((live.metadata.managedFields ?? []) as JsonObject[]).find((e) => e.manager === manager && e.operation === 'Apply' && e.subresource === undefined);
  const fields = entry?.fieldsV1;
  if (!fields || typeof fields !== 'object' || Array.isArray(fields)) return {};
  return (extractOwned(live as unknown as JsonObject, fields as JsonObject) ?? {}) as JsonObject;
}

function extractOwned(value: unknown, node: JsonObject): unknown {
  const children = Object.keys(node).filter((k) => k !== '.');
  if (children.length === 0) return structuredClone(value);
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const item of value) {
      for (const k of children) {
        if (k.startsWith('v:') && isDeepStrictEqual(JSON.parse(k.slice(2)), item)) out.push(structuredClone(item));
        if (k.startsWith('k:') && item && typeof item === 'object') {
          const key = JSON.parse(k.slice(2)) as JsonObject;
          const matches = Object.entries(key).every(([f, v]) => isDeepStrictEqual((item as JsonObject)[f], v));
          if (matches) out.push({ ...key, ...(extractOwned(item, node[k] as JsonObject) as JsonObject) });
        }
      }
    }
    return out;
  }
  if (value && typeof value === 'object') {
    const out: JsonObject = {};
    for (const k of children) {
      if (!k.startsWith('f:')) continue;
      const name = k.slice(2);
      const v = (value as JsonObject)[name];
      if (v !== undefined) out[name] = extractOwned(v, node[k] as JsonObject) as JsonObject;
    }
    return out;
  }
  return structuredClone(value);
}

/** The Deployment's spec moved past what the caller expected (someone else changed it): not rolled back. */
export class StaleRollback extends Error {
  constructor(
    message: string,
    readonly generation: number,
  ) {
    super(message);
    this.name = 'StaleRollback';
  }
}

/**
 * Pure: the configuration the rollback applies as `alb-rollout`: what it owned (so nothing it applied is dropped),
 * the ReplicaSet's template, and the annotations as `kubectl rollout undo` sets them — for the annotations it owns
 * or adds (another manager's annotations are not taken over).
 */
export function rollbackApplyConfig(deployment: KubeObject, rs: KubeObject): KubeObject {
  const owned = ownedConfig(deployment, FIELD_MANAGER);
  const { template, annotations } = rollbackContent(deployment, rs);
  const ownedMeta = (owned.metadata ?? {}) as JsonObject;
  const ownedAnnotations = (ownedMeta.annotations ?? {}) as Record<string, string>;
  const liveAnnotations = deployment.metadata.annotations ?? {};
  const next: Record<string, string> = {};
  for (const [k, v] of Object.entries(annotations)) {
    // Kept ones (revision, last-applied) stay with whoever owns them; the ReplicaSet's go on as the rollback's.
    if (isKeptAnnotation(k) && !(k in ownedAnnotations)) continue;
    if (liveAnnotations[k] === v && !(k in ownedAnnotations)) continue;
    next[k] = v;
  }
  const metadata: JsonObject = { ...ownedMeta, name: deployment.metadata.name, namespace: deployment.metadata.namespace ?? '' };
  if (Object.keys(next).length > 0) metadata.annotations = next;
  else delete metadata.annotations;
  return {
    ...(owned as Omit<KubeObject, 'metadata'>),
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata as KubeObject['metadata'],
    spec: { ...((owned.spec ?? {}) as JsonObject), template },
  };
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
    if (options.expectGeneration !== undefined && Number(deployment.metadata.generation ?? 0) !== options.expectGeneration) {
      throw new StaleRollback(
        `Deployment ${namespace}/${name} is at generation ${String(deployment.metadata.generation)}, not ${options.expectGeneration} as this run left it: someone else changed it; not rolled back over their change`,
        Number(deployment.metadata.generation ?? 0),
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
    try {
      await kube.apply(rollbackApplyConfig(deployment, rs), { force: true, resourceVersion: String(deployment.metadata.resourceVersion ?? '') });
    } catch (err) {
      // 409 (resourceVersion precondition): the object changed between our read and the apply — during a rollout the
      // controller writes its status every few moments; read again (the generation check above catches a spec change).
      if (err instanceof KubeApiError && (err.code === 409 || err.code === 422) && attempt < 20) continue;
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
