import { ExitCode, exitCodeOf, InputError, UnreachableError } from '../errors.js';
import { KubeApiError } from '../kube/client.js';
import { buildModel } from '../manifests/model.js';
import { liveObject } from '../plan/cluster-routes.js';
import type { JsonObject, KubeObject, LoadedObject, ManifestSet } from '../manifests/types.js';
import type { ReadinessGateMode } from '../options.js';
import type { Preflight } from '../preflight/index.js';
import { Recorder, type RunContext } from './context.js';
import { specWriters } from './foreign.js';
import { rollbackAndWait, StaleRollback, type RollbackResult } from './rollback.js';
import type { RunEnd } from './run-end.js';
import { DeployError, newRunState, runResult, type DeployDeps, type DeployOptions, type DeployResult } from './types.js';
import { WaitFailed } from './wait.js';
import { waitForWorkload } from './workload.js';

export interface RollbackRunOptions {
  namespace: string;
  deployment: string;
  toRevision?: number;
  rolloutTimeoutSeconds: number;
  readinessGates: ReadinessGateMode;
  timeScale: number;
}

/**
 * `alb-rollout rollback`: put a Deployment back to its previous (or a named) revision, the way `kubectl rollout
 * undo` does, and wait with the same rules as a deploy (gates, healthy targets, drained old targets).
 */
export async function runRollback(options: RollbackRunOptions, deps: DeployDeps): Promise<DeployResult> {
  const state = newRunState(true);
  const rec = new Recorder(deps.log, deps.now);
  const tl = rec.timeline;
  const { namespace, deployment } = options;
  const key = `${namespace}/${deployment}`;
  const rollbacks: RollbackResult[] = [];
  let error: string | undefined;
  let exitCode: ExitCode = ExitCode.ok;
  let rolledBack = false;
  try {
    tl.startPhase('rollback');
    const current = await deps.kube.get('apps/v1', 'Deployment', namespace, deployment);
    if (!current) throw new DeployError(`Deployment ${key} does not exist. Fix: check the name and namespace (kubectl get deployments -n ${namespace}).`, 'rollback', ExitCode.invalidInput);
    const [services, ingresses, tgbs] = await Promise.all([
      deps.kube.list('v1', 'Service', namespace),
      deps.kube.list('networking.k8s.io/v1', 'Ingress', namespace),
      deps.kube.list('elbv2.k8s.aws/v1beta1', 'TargetGroupBinding', namespace).catch(() => ({ items: [] as KubeObject[], resourceVersion: '' })),
    ]);
    const live = [{ ...current, apiVersion: 'apps/v1', kind: 'Deployment' }, ...services.items, ...ingresses.items].map(liveObject);
    const set: ManifestSet = { objects: live, files: [] };
    const model = buildModel(set);
    const pre = { model } as Pick<Preflight, 'model'> as Preflight;
    const d = model.deployments[0];
    const serviceNames = new Set((d?.services ?? []).map((s) => s.name));
    for (const b of tgbs.items) {
      const spec = (b.spec ?? {}) as JsonObject;
      const ref = (spec.serviceRef ?? {}) as JsonObject;
      if (!serviceNames.has(String(ref.name))) continue;
      const tg = model.targetGroups.find((t) => t.service.name === ref.name);
      state.bindings.push({
        route: {
          ingress: { namespace, name: tg?.ingress.name ?? '' },
          service: { namespace, name: String(ref.name) },
          port: (ref.port as string | number | undefined) ?? tg?.port ?? '',
          targetType: String(spec.targetType ?? ''),
          from: 'cluster',
        },
        name: b.metadata.name,
        arn: String(spec.targetGroupARN ?? ''),
        targetType: String(spec.targetType ?? ''),
      });
    }
    const spec = (current.spec ?? {}) as JsonObject;
    const matchLabels = ((spec.selector as JsonObject | undefined)?.matchLabels ?? {}) as Record<string, string>;
    const selector = Object.entries(matchLabels).map(([k, v]) => `${k}=${v}`).join(',');
    const pods = (await deps.kube.list('v1', 'Pod', namespace, { labelSelector: selector })).items;
    const loaded = live[0] as LoadedObject;
    const runOptions: DeployOptions = {
      dryRun: false,
      forceConflicts: false,
      readinessGates: options.readinessGates,
      timeouts: { routingSeconds: 0, rolloutSeconds: options.rolloutTimeoutSeconds },
      timeScale: options.timeScale,
    };
    const result = await rollbackAndWait(deps.kube, namespace, deployment, { ...(options.toRevision !== undefined ? { toRevision: options.toRevision } : {}), now: deps.now }, async (target) => {
      state.previous.set(key, target.fromRevision);
      tl.add('rollback', `Deployment ${key}: revision ${target.fromRevision} → template of revision ${target.toRevision} written`, { from: target.fromRevision, to: target.toRevision });
      deps.log.info(`rolling back Deployment ${key} to the template of revision ${target.toRevision}; waiting for gates, healthy targets and drained old targets`);
      await waitForWorkload(
        {
          loaded,
          namespace,
          name: deployment,
          selector: target.selector,
          bindings: state.bindings,
          oldPodIps: target.oldPodIps,
          oldPodUids: new Set(pods.map((p) => String(p.metadata.uid ?? ''))),
          previousRevision: target.fromRevision,
        },
        { pre, options: runOptions, deps, state, rec, routes: new Map(), clusterGateNamespaces: new Set() },
      );
    });
    rollbacks.push(result);
    tl.add('rollback', result.message, { outcome: result.outcome });
    deps.log.info(result.message);
    rolledBack = result.outcome === 'rolled-back';
    if (result.outcome === 'nothing-to-roll-back') throw new DeployError(result.message, 'rollback');
  } catch (err) {
    const known = err instanceof DeployError || err instanceof WaitFailed || err instanceof KubeApiError || err instanceof UnreachableError || err instanceof InputError;
    const message = err instanceof Error ? err.message : String(err);
    // A failure is a result (report written, outputs set), never an exception that escapes with a stack trace.
    error = known ? message : `unexpected error (a bug in alb-rollout; please report it with the --report file): ${message}`;
    exitCode = exitCodeOf(err);
    if (err instanceof InputError && rollbacks.some((r) => r.outcome === 'rolled-back')) exitCode = ExitCode.failed;
    tl.add('error', error, { exitCode });
  } finally {
    tl.endOpenPhase();
  }
  return runResult(key, error ? 'failed' : rolledBack ? 'rolled-back' : 'succeeded', tl, state, deps, {
    ...(error ? { error, failedPhase: 'rollback' } : {}),
    ...(rollbacks.length > 0 ? { rollbacks } : {}),
    exitCode,
  });
}

/**
 * After a failed release: put back the Deployments this run changed (their generation moved), each to the revision it
 * had before the run, and wait with the same rules as a deploy. Deployments the run did not change are named as
 * untouched; one someone else changed since this run applied it is not rolled back over. Never throws: what could
 * not be done is recorded in `end` for the report.
 */
export async function rollbackChanged(ctx: RunContext, end: RunEnd): Promise<void> {
  const { options, deps, state } = ctx;
  const tl = ctx.rec.timeline;
  if (options.rollback === 'off') {
    tl.add('rollback', 'rollback off: reporting only');
    deps.log.warn('the release failed and --rollback off: the new version stays; nothing was rolled back');
    return;
  }
  end.rollbackAttempted = true;
  tl.startPhase('rollback');
  state.rollingBack = true;
  for (const w of state.watches) {
    const ref = `${w.namespace}/${w.name}`;
    if (w.appliedGeneration === undefined || w.changed === false) {
      end.untouched.push(ref);
      tl.add('rollback', `${w.kind ?? 'Deployment'} ${ref}: not changed by this run, left as it is`);
      continue;
    }
    if (w.kind !== undefined && w.kind !== 'Deployment') {
      const kind = w.kind.toLowerCase();
      const message =
        `${w.kind} ${ref} was changed by this run and is NOT rolled back: alb-rollout rolls back Deployments only. It stays at the new template` +
        `${state.revisions.get(ref) !== undefined ? ` (controller revision ${state.revisions.get(ref)})` : ''}; its pods already replaced run the new version. ` +
        `To go back: kubectl rollout undo ${kind}/${w.name} -n ${w.namespace}${w.previousRevision !== undefined ? ` --to-revision=${w.previousRevision}` : ''}, then kubectl rollout status ${kind}/${w.name} -n ${w.namespace}.`;
      end.rollbackProblems.push(message);
      tl.add('rollback', message);
      deps.log.warn(message);
      continue;
    }
    try {
      const pods = (await deps.kube.list('v1', 'Pod', w.namespace, { labelSelector: w.selector })).items;
      const result = await rollbackAndWait(
        deps.kube,
        w.namespace,
        w.name,
        { now: deps.now, expectGeneration: w.appliedGeneration, ...(w.previousRevision !== undefined ? { toRevision: w.previousRevision } : {}) },
        async (target) => {
          tl.add('rollback', `Deployment ${ref}: revision ${target.fromRevision} → template of revision ${target.toRevision} applied`, { from: target.fromRevision, to: target.toRevision });
          deps.log.warn(`rolling back Deployment ${ref} to the template of revision ${target.toRevision}; waiting with the same rules (gates, healthy targets, drain)`);
          await waitForWorkload(
            { ...w, selector: target.selector, oldPodIps: target.oldPodIps, oldPodUids: new Set(pods.map((p) => String(p.metadata.uid ?? ''))), previousRevision: target.fromRevision },
            ctx,
          ).catch((err: unknown) => {
            end.rollbackProblems.push(
              `The previous template of Deployment ${ref} (revision ${target.toRevision}) was applied back, but the rollback did not complete safely: ${(err as Error).message}`,
            );
          });
        },
      );
      end.rollbacks.push(result);
      tl.add('rollback', result.message, { outcome: result.outcome });
    } catch (err) {
      if (err instanceof StaleRollback) {
        const live = await deps.kube.get('apps/v1', 'Deployment', w.namespace, w.name).catch(() => undefined);
        const by = live ? specWriters(live)[0] : undefined;
        end.foreign.push(`${ref} (generation ${w.appliedGeneration} → ${err.generation}${by ? `, last written by ${by}` : ''})`);
        tl.add('rollback', `Deployment ${ref}: ${err.message}`);
        continue;
      }
      const message = err instanceof Error ? err.message : String(err);
      end.rollbackProblems.push(
        `Could not roll back Deployment ${ref}: ${message}. The new version is still there; roll back by hand (kubectl rollout undo deployment/${w.name} -n ${w.namespace}) once the cause is fixed.`,
      );
      tl.add('rollback', `Deployment ${ref}: rollback failed: ${message}`);
    }
  }
}
