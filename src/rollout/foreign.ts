import { FIELD_MANAGER } from '../kube/client.js';
import { revisionOf } from '../plan/checks/rollout-status.js';
import type { JsonObject, KubeObject } from '../manifests/types.js';
import { objectsOfPhase } from '../plan/phases.js';
import type { Preflight } from '../preflight/index.js';
import type { Timeline } from '../report/timeline.js';
import { DeployError, type DeployDeps, type RunState, type WorkloadWatch } from './types.js';

/**
 * Someone else's change: a Deployment paused or mid-rollout before this run, or given a newer spec by another
 * deployer while this run waits on it. The run never applies over the first two and never rolls back over the third.
 */

/** Another writer changed a Deployment's spec after this run applied it. */
export class ForeignChange extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForeignChange';
  }
}

/** The field managers that wrote a Deployment's spec, newest first, as `name (operation, time)`. */
export function specWriters(d: KubeObject): string[] {
  const entries = ((d.metadata.managedFields ?? []) as JsonObject[]).filter(
    (e) => typeof e.manager === 'string' && e.subresource === undefined && typeof e.fieldsV1 === 'object' && e.fieldsV1 !== null && 'f:spec' in (e.fieldsV1 as JsonObject),
  );
  entries.sort((a, b) => String(b.time ?? '').localeCompare(String(a.time ?? '')));
  return entries.map((e) => `${String(e.manager)} (${String(e.operation)}${e.time ? ` at ${String(e.time)}` : ''})`);
}

/** The newest spec writer other than this tool's Apply, for messages. */
function otherWriter(d: KubeObject): string {
  const others = specWriters(d).filter((w) => !w.startsWith(`${FIELD_MANAGER} (Apply`));
  return others[0] ?? 'another client';
}

/** Pure: why this Deployment must not be rolled out over now, or undefined. */
export function blockedBefore(live: KubeObject, manifest: KubeObject): string | undefined {
  const ref = `Deployment ${live.metadata.namespace ?? ''}/${live.metadata.name}`;
  const cmd = `deployment/${live.metadata.name} -n ${live.metadata.namespace ?? 'default'}`;
  const spec = (live.spec ?? {}) as JsonObject;
  const wantPaused = ((manifest.spec ?? {}) as JsonObject).paused;
  if (spec.paused === true && wantPaused !== false) {
    return (
      `expected ${ref} to roll out, but it is paused (spec.paused: true, written by ${otherWriter(live)}): a new template would not roll out and the run would wait until its timeout. ` +
      `Fix: resume it (kubectl rollout resume ${cmd}) if the pause is over, or set spec.paused: false in the manifest; then re-run.`
    );
  }
  const status = (live.status ?? {}) as JsonObject;
  const generation = Number(live.metadata.generation ?? 0);
  const observed = Number(status.observedGeneration ?? 0);
  const desired = spec.replicas === undefined ? 1 : Number(spec.replicas);
  const updated = Number(status.updatedReplicas ?? 0);
  const replicas = Number(status.replicas ?? 0);
  const stuck = ((status.conditions ?? []) as JsonObject[]).some((c) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded');
  const moving = generation > observed || (!stuck && (updated < desired || replicas > updated));
  if (moving) {
    const seen = generation > observed ? `its spec (generation ${generation}) is not observed yet` : `${updated} of ${desired} replicas updated, ${replicas} in total`;
    return (
      `expected ${ref} to be settled before this run, but a rollout is in progress (revision ${revisionOf(live) ?? '?'}: ${seen}; last written by ${otherWriter(live)}). ` +
      `Rolling out over it would mix two releases, and a rollback would go to a half-finished revision. Fix: wait for it (kubectl rollout status ${cmd}), then re-run.`
    );
  }
  return undefined;
}

/** Before anything is applied: a paused Deployment or one mid-rollout stops the run (nothing applied). */
export async function checkForeignChanges(pre: Preflight, deps: DeployDeps, tl: Timeline): Promise<void> {
  const problems: string[] = [];
  for (const o of objectsOfPhase(pre.set.objects, 'workloads').filter((x) => x.ref.kind === 'Deployment')) {
    const live = await deps.kube.get('apps/v1', 'Deployment', o.ref.namespace, o.ref.name);
    const why = live ? blockedBefore(live, o.object) : undefined;
    if (why) problems.push(`${o.source.file}:${o.source.line} ${why}`);
  }
  if (problems.length === 0) return;
  for (const p of problems) tl.add('warning', p);
  throw new DeployError(`nothing was applied: ${problems.join('\n')}`, 'preflight');
}

/** After this run applied the Deployment: its generation and whether this run changed its spec. */
export function recordApplied(watches: WorkloadWatch[], namespace: string, name: string, applied: KubeObject, tl?: Timeline): void {
  const w = watches.find((x) => x.namespace === namespace && x.name === name);
  if (!w) return;
  const generation = Number(applied.metadata.generation ?? 0);
  w.appliedGeneration = generation;
  w.changed = w.generationBefore === undefined || generation !== w.generationBefore;
  tl?.add('revision', `Deployment ${namespace}/${name}: ${w.changed ? `changed by this run (generation ${w.generationBefore ?? 'new'} → ${generation})` : `unchanged by this run (generation ${generation})`}`);
}

/** During the workload wait: the spec moved past what this run applied, i.e. someone else wrote it. */
export function foreignChange(w: WorkloadWatch, live: KubeObject, state: RunState): string | undefined {
  if (state.rollingBack || w.appliedGeneration === undefined) return undefined;
  const generation = Number(live.metadata.generation ?? 0);
  if (generation <= w.appliedGeneration) return undefined;
  return (
    `expected Deployment ${w.namespace}/${w.name} to keep the spec this run applied (generation ${w.appliedGeneration}), but it is at generation ${generation}: ` +
    `${otherWriter(live)} changed it during the run (revision ${revisionOf(live) ?? '?'}). This run stops and does not roll back over their change. ` +
    `Fix: agree who deploys ${w.namespace}/${w.name} (kubectl get deployment ${w.name} -n ${w.namespace} --show-managed-fields names the writers), then re-run.`
  );
}
