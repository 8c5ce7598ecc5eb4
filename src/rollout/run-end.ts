import { ExitCode, exitCodeOf, InputError } from '../errors.js';
import { KubeApiError } from '../kube/client.js';
import type { Timeline } from '../report/timeline.js';
import { ForeignChange } from './foreign.js';
import { GuardTripped, summarizeMeasurements, unmeasuredMessage } from './guarding.js';
import type { RollbackResult } from './rollback.js';
import { runResult, type DeployDeps, type DeployOptions, type DeployResult, type DeployResultKind, type RunState } from './types.js';
import { WaitFailed } from './wait.js';

/**
 * The one way a deploy run ends: whatever failed (a wait, the guard, the rollback, an API error, a bug), the run
 * returns a result — the report is written, the outputs and the GitHub Deployment status are set by the edges —
 * and never says "nothing was applied" when something was.
 */

/** Whether a failure leaves a new version to put back: the guard tripped, or the workload wait failed after apply. */
export function needsRollback(err: unknown, state: RunState): boolean {
  if (err instanceof ForeignChange) return false;
  if (err instanceof GuardTripped) return true;
  return err instanceof WaitFailed && state.watches.length > 0 && state.workloadsApplied;
}

export class RunEnd {
  error: string | undefined;
  failedPhase: string | undefined;
  exitCode: ExitCode = ExitCode.ok;
  readonly rollbacks: RollbackResult[] = [];
  /** Deployments this run did not change (not rolled back) and ones someone else changed (not rolled back over). */
  readonly untouched: string[] = [];
  readonly foreign: string[] = [];
  /** Why a rollback could not be done or did not complete. */
  readonly rollbackProblems: string[] = [];
  rollbackAttempted = false;

  /** Every Deployment this run changed is back at its previous revision, and the waits after it passed. */
  get rolledBack(): boolean {
    return this.rollbacks.some((r) => r.outcome === 'rolled-back') && this.rollbackProblems.length === 0;
  }

  /** Records a failure: the message for the person on call (no stack trace) and the exit code. */
  fail(err: unknown, tl: Timeline, state: RunState, options: Pick<DeployOptions, 'rollback'>): void {
    this.failedPhase ??= tl.phases.at(-1)?.name ?? 'preflight';
    const message = err instanceof Error ? err.message : String(err);
    // 401: the kubeconfig's credentials are rejected (an expired EKS token…): the cluster cannot be used, like unreachable.
    let code = err instanceof KubeApiError && err.code === 401 ? ExitCode.unreachable : exitCodeOf(err);
    // Exit 2 means "invalid input, nothing applied": once something is applied, a failure is a failed run.
    if (err instanceof InputError && state.applied.length > 0) code = ExitCode.failed;
    const known = err instanceof Error && ['DeployError', 'WaitFailed', 'KubeApiError', 'UnreachableError', 'GuardTripped', 'ForeignChange', 'InputError'].includes(err.name);
    let text = known ? message : `unexpected error (a bug in alb-rollout; please report it with the --report file): ${message}`;
    if (err instanceof GuardTripped) text = guardFailureMessage(err, this);
    else if (this.rollbackAttempted || (options.rollback === 'off' && state.workloadsApplied && state.watches.length > 0 && err instanceof WaitFailed)) text = `${text}\n${this.rollbackOutcome()}`;
    this.error = text;
    this.exitCode = code;
    tl.add('error', text, { exitCode: code });
  }

  rollbackOutcome(): string {
    const lines: string[] = [];
    const done = this.rollbacks.filter((r) => r.outcome === 'rolled-back');
    if (done.length > 0) {
      lines.push(
        `Rolled back: ${done.map((r) => `${r.namespace}/${r.name} revision ${'fromRevision' in r ? r.fromRevision : '?'} → template of revision ${'toRevision' in r ? r.toRevision : '?'}`).join(', ')}${this.rolledBack ? '; the previous version is serving again.' : '.'}`,
      );
    }
    if (this.rollbacks.some((r) => r.outcome === 'nothing-to-roll-back')) {
      lines.push('Nothing to roll back to (first install): the new version is still running. Fix the release and deploy again, or delete it.');
    }
    if (this.untouched.length > 0) lines.push(`Not rolled back, unchanged by this run: ${this.untouched.join(', ')}.`);
    if (this.foreign.length > 0) lines.push(`Not rolled back, changed by someone else during the run: ${this.foreign.join(', ')}.`);
    for (const p of this.rollbackProblems) lines.push(p);
    if (!this.rollbackAttempted) lines.push('Not rolled back (--rollback off): the new version is still running; roll back with `alb-rollout rollback` or fix forward.');
    return lines.join('\n');
  }

  result(key: string, tl: Timeline, state: RunState, deps: DeployDeps, options: DeployOptions): DeployResult {
    const decision = state.guard ? (state.guard.tripped() ?? state.guard.guard.decision()) : undefined;
    let kind: DeployResultKind = this.rolledBack ? 'rolled-back' : this.error ? 'failed' : 'succeeded';
    let exitCode = this.exitCode;
    let unverified: string | undefined;
    if (kind === 'succeeded' && !options.dryRun && decision?.verdict === 'inconclusive' && state.guard) {
      kind = 'unverified';
      unverified = unmeasuredMessage(decision, state.guard);
      exitCode = options.guard?.onInconclusive === 'pass' ? ExitCode.ok : ExitCode.failed;
    }
    // Not a failure, and not the end of the rollout either: Argo holds it at a pause for a person to promote.
    const paused = kind === 'succeeded' && !options.dryRun && state.paused.length > 0 ? state.paused.join('\n') : undefined;
    if (paused) kind = 'paused';
    return runResult(key, kind, tl, state, deps, {
      ...(this.error ? { error: this.error, failedPhase: this.failedPhase ?? 'preflight' } : {}),
      ...(unverified ? { unverified } : {}),
      ...(paused ? { paused } : {}),
      ...(state.guard && decision
        ? {
            guard: {
              decision,
              signals: summarizeMeasurements(state.guard.measurements),
              skipped: state.guard.skipped,
              ...(state.guard.cloudwatchMetrics ? { cloudwatchMetrics: state.guard.cloudwatchMetrics } : {}),
              ...(state.guard.baselines.length > 0 ? { baselines: [...state.guard.baselines] } : {}),
            },
          }
        : {}),
      ...(this.rollbacks.length > 0 ? { rollbacks: this.rollbacks } : {}),
      exitCode,
    });
  }
}

function guardFailureMessage(trip: GuardTripped, end: RunEnd): string {
  const d = trip.decision;
  const evidence = (d.failingWindows ?? []).slice(0, 3).map((m) => `  ${m.window.start} ${m.signal}: ${m.evidence}`);
  return `expected the new version to serve without errors, but the guard saw: ${d.reason}${d.firstErrorAt ? ` (first error at ${d.firstErrorAt})` : ''}.${evidence.length ? `\n${evidence.join('\n')}` : ''}\n${end.rollbackOutcome()}`;
}
