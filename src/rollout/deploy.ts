import { ExitCode, exitCodeOf, UnreachableError } from '../errors.js';
import { KubeApiError } from '../kube/client.js';
import type { Preflight } from '../preflight/index.js';
import { newRunContext, type RunContext } from './context.js';
import { GuardTripped, summarizeMeasurements } from './guarding.js';
import { rollbackAndWait, type RollbackResult } from './rollback.js';
import { runSteps } from './runner.js';
import { DeployError, newRunState, runResult, type DeployDeps, type DeployOptions, type DeployResult } from './types.js';
import { WaitFailed } from './wait.js';
import { waitForWorkload } from './workload.js';

export * from './types.js';
export { runRollback, type RollbackRunOptions } from './rollback-run.js';

/** Runs the plan's steps (DESIGN.md "Safe order") against a cluster, and rolls back when the new version fails. Load, tune and lint have already run. */
export async function runDeploy(pre: Preflight, options: DeployOptions, deps: DeployDeps): Promise<DeployResult> {
  const state = newRunState(false);
  const ctx = newRunContext(pre, options, deps, state);
  const tl = ctx.rec.timeline;
  let error: string | undefined;
  let failedPhase: string | undefined;
  let exitCode: ExitCode = ExitCode.ok;
  let rolledBack = false;
  const rollbacks: RollbackResult[] = [];
  try {
    try {
      await runSteps(pre.plan.steps, ctx);
    } catch (err) {
      // The new version was applied and did not become healthy, or the guard saw it fail: put the previous one back.
      const workloadFailure = err instanceof WaitFailed && state.watches.length > 0 && state.workloadsApplied;
      if (!(err instanceof GuardTripped) && !workloadFailure) throw err;
      failedPhase = tl.phases.at(-1)?.name ?? 'workloads';
      rolledBack = await rollbackPhase(ctx, rollbacks);
      throw err;
    }
  } catch (err) {
    failedPhase ??= tl.phases.at(-1)?.name ?? 'preflight';
    error = err instanceof Error ? err.message : String(err);
    // 401: the kubeconfig's credentials are rejected (an expired EKS token…): the cluster cannot be used, like unreachable.
    exitCode = err instanceof KubeApiError && err.code === 401 ? ExitCode.unreachable : exitCodeOf(err);
    if (err instanceof GuardTripped) error = guardFailureMessage(err, rolledBack, rollbacks);
    else if (rollbacks.length > 0 || (options.rollback === 'off' && state.workloadsApplied && err instanceof WaitFailed)) error = `${error}\n${rollbackOutcome(rolledBack, rollbacks)}`;
    tl.add('error', error, { exitCode });
    if (!(err instanceof DeployError || err instanceof WaitFailed || err instanceof KubeApiError || err instanceof UnreachableError || err instanceof GuardTripped)) throw err;
  } finally {
    tl.endOpenPhase();
    if (state.guard) await state.guard.guard.stop();
  }
  const first = pre.model.deployments[0];
  return runResult(first ? `${first.namespace}/${first.name}` : '', rolledBack ? 'rolled-back' : error ? 'failed' : 'succeeded', tl, state, deps, {
    ...(error ? { error, failedPhase: failedPhase ?? 'preflight' } : {}),
    ...(state.guard
      ? { guard: { decision: state.guard.tripped() ?? state.guard.guard.decision(), signals: summarizeMeasurements(state.guard.measurements), skipped: state.guard.skipped } }
      : {}),
    ...(rollbacks.length > 0 ? { rollbacks } : {}),
    exitCode,
  });
}

/** The guard failed: put every changed Deployment back to its previous revision and wait for it as for a deploy. */
async function rollbackPhase(ctx: RunContext, out: RollbackResult[]): Promise<boolean> {
  const { options, deps, state } = ctx;
  const tl = ctx.rec.timeline;
  if (options.rollback === 'off') {
    tl.add('rollback', 'rollback off: reporting only');
    deps.log.warn('guard failed and --rollback off: the new version stays; nothing was rolled back');
    return false;
  }
  tl.startPhase('rollback');
  state.rollingBack = true;
  let rolledBack = false;
  for (const w of state.watches) {
    const pods = (await deps.kube.list('v1', 'Pod', w.namespace, { labelSelector: w.selector })).items;
    const result = await rollbackAndWait(deps.kube, w.namespace, w.name, { now: deps.now }, async (target) => {
      tl.add('rollback', `Deployment ${w.namespace}/${w.name}: revision ${target.fromRevision} → template of revision ${target.toRevision} written`, { from: target.fromRevision, to: target.toRevision });
      deps.log.warn(`rolling back Deployment ${w.namespace}/${w.name} to the template of revision ${target.toRevision}; waiting with the same rules (gates, healthy targets, drain)`);
      await waitForWorkload(
        { ...w, selector: target.selector, oldPodIps: target.oldPodIps, oldPodUids: new Set(pods.map((p) => String(p.metadata.uid ?? ''))), previousRevision: target.fromRevision },
        ctx,
      ).catch((err: unknown) => {
        throw new DeployError(
          `the previous template of Deployment ${w.namespace}/${w.name} (revision ${target.toRevision}) was written back, but the rollback did not complete safely: ${(err as Error).message}`,
          'rollback',
        );
      });
    });
    out.push(result);
    tl.add('rollback', result.message, { outcome: result.outcome });
    if (result.outcome === 'rolled-back') rolledBack = true;
  }
  return rolledBack;
}

function rollbackOutcome(rolledBack: boolean, rollbacks: RollbackResult[]): string {
  if (rolledBack) {
    return `Rolled back: ${rollbacks
      .filter((r) => r.outcome === 'rolled-back')
      .map((r) => `${r.namespace}/${r.name} revision ${'fromRevision' in r ? r.fromRevision : '?'} → template of revision ${'toRevision' in r ? r.toRevision : '?'}`)
      .join(', ')}; the previous version is serving again.`;
  }
  if (rollbacks.some((r) => r.outcome === 'nothing-to-roll-back')) {
    return 'Nothing to roll back to (first install): the new version is still running. Fix the release and deploy again, or delete it.';
  }
  return 'Not rolled back (--rollback off): the new version is still running; roll back with `alb-rollout rollback` or fix forward.';
}

function guardFailureMessage(trip: GuardTripped, rolledBack: boolean, rollbacks: RollbackResult[]): string {
  const d = trip.decision;
  const evidence = (d.failingWindows ?? []).slice(0, 3).map((m) => `  ${m.window.start} ${m.signal}: ${m.evidence}`);
  const after = rollbackOutcome(rolledBack, rollbacks);
  return `expected the new version to serve without errors, but the guard saw: ${d.reason}${d.firstErrorAt ? ` (first error at ${d.firstErrorAt})` : ''}.${evidence.length ? `\n${evidence.join('\n')}` : ''}\n${after}`;
}
