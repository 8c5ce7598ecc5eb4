import type { Preflight } from '../preflight/index.js';
import { newRunContext } from './context.js';
import { rollbackChanged } from './rollback-run.js';
import { needsRollback, RunEnd } from './run-end.js';
import { runSteps } from './runner.js';
import { newRunState, type DeployDeps, type DeployOptions, type DeployResult } from './types.js';

export * from './types.js';
export { runRollback, type RollbackRunOptions } from './rollback-run.js';

/** Runs the plan's steps (DESIGN.md "Safe order") against a cluster, and rolls back when the new version fails. Load, tune and lint have already run. */
export async function runDeploy(pre: Preflight, options: DeployOptions, deps: DeployDeps): Promise<DeployResult> {
  const state = newRunState(false);
  const ctx = newRunContext(pre, options, deps, state);
  const tl = ctx.rec.timeline;
  const end = new RunEnd();
  try {
    try {
      await runSteps(pre.plan.steps, ctx);
    } catch (err) {
      // The new version was applied and did not become healthy, or the guard saw it fail: put back what this run changed.
      if (!needsRollback(err, state)) throw err;
      end.failedPhase = tl.phases.at(-1)?.name ?? 'workloads';
      await rollbackChanged(ctx, end);
      throw err;
    }
  } catch (err) {
    end.fail(err, tl, state, options);
  } finally {
    tl.endOpenPhase();
    if (state.guard) await state.guard.guard.stop();
  }
  const first = pre.model.deployments[0];
  return end.result(first ? `${first.namespace}/${first.name}` : '', tl, state, deps, options);
}
