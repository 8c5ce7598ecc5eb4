import type { PhaseRecord, TimelineEntry } from './timeline.js';

/**
 * What the deploy renderers read from a run's result (rollout/types.ts's DeployResult has this shape): the report
 * layer names its input instead of importing the runner's types.
 */
export interface DeployReport {
  result: string;
  revision: string;
  previousRevision: string;
  durationSeconds: number;
  loadBalancerHostnames: string[];
  targetGroupArns: string[];
  phases: PhaseRecord[];
  timeline: TimelineEntry[];
  apiCalls: {
    kubernetes: Record<string, number>;
    elbv2: Record<string, number>;
    throttled?: { elbv2: number };
    retried?: { kubernetes: Record<string, number>; elbv2: Record<string, number> };
  };
  applied: string[];
  error?: string;
  failedPhase?: string;
  /** Result `unverified`: what could not be measured and how to fix it. */
  unverified?: string;
  /** Result `paused`: the Rollout's pause step and how to go on. */
  paused?: string;
  guard?: {
    decision: { verdict: string; reason: string };
    signals: Array<{ signal: string; windows: number; requests: number; errors: number; failingWindows: number; firstErrorAt?: string }>;
    skipped: string[];
    cloudwatchMetrics?: string;
    /** What each signal judged the release against (the old version's measured baseline, or none). */
    baselines?: string[];
  };
  rollbacks?: Array<{ message: string }>;
  exitCode: number;
}

/** `--report FILE.json`: the deploy result as data (extend, never rename). */
export function renderDeployJson(r: DeployReport): string {
  return `${JSON.stringify(
    {
      result: r.result,
      revision: r.revision,
      previousRevision: r.previousRevision,
      durationSeconds: r.durationSeconds,
      loadBalancerHostnames: r.loadBalancerHostnames,
      targetGroupArns: r.targetGroupArns,
      phases: r.phases,
      timeline: r.timeline,
      apiCalls: r.apiCalls,
      applied: r.applied,
      ...(r.error ? { error: r.error, failedPhase: r.failedPhase } : {}),
      ...(r.unverified ? { unverified: r.unverified } : {}),
      ...(r.paused ? { paused: r.paused } : {}),
      ...(r.guard ? { guard: r.guard } : {}),
      ...(r.rollbacks ? { rollbacks: r.rollbacks } : {}),
      exitCode: r.exitCode,
    },
    null,
    2,
  )}\n`;
}

/** The closing lines of a deploy in the log: result, per-phase durations, what to do on failure. */
export function renderDeploySummaryText(r: DeployReport): string {
  const out: string[] = [];
  out.push('');
  out.push(`result: ${r.result} in ${r.durationSeconds}s${r.revision ? ` (revision ${r.previousRevision || '(new)'} → ${r.revision})` : ''}`);
  for (const p of r.phases) out.push(`  ${p.name.padEnd(12)} ${p.durationSeconds ?? '?'}s`);
  if (r.loadBalancerHostnames.length > 0) out.push(`  load balancer: ${r.loadBalancerHostnames.join(', ')}`);
  if (r.targetGroupArns.length > 0) out.push(`  target groups: ${r.targetGroupArns.join(', ')}`);
  const k = Object.values(r.apiCalls.kubernetes).reduce((a, b) => a + b, 0);
  const e = Object.values(r.apiCalls.elbv2).reduce((a, b) => a + b, 0);
  const kr = Object.values(r.apiCalls.retried?.kubernetes ?? {}).reduce((a, b) => a + b, 0);
  const throttled = r.apiCalls.throttled?.elbv2 ?? 0;
  const notes = [kr > 0 ? `${kr} Kubernetes request(s) retried after 429/5xx/reset` : '', throttled > 0 ? `${throttled} ELBv2 call(s) throttled and retried with backoff` : ''].filter(Boolean);
  out.push(`  API calls: ${k} Kubernetes, ${e} ELBv2${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`);
  if (r.guard) {
    out.push(`  guard: ${r.guard.decision.verdict} — ${r.guard.decision.reason}`);
    for (const g of r.guard.signals) {
      out.push(`    ${g.signal}: ${g.windows} window(s), ${g.requests} request(s), ${g.errors} error(s)${g.failingWindows ? `, ${g.failingWindows} failing` : ''}${g.firstErrorAt ? `, first error ${g.firstErrorAt}` : ''}`);
    }
    for (const s of r.guard.skipped) out.push(`    skipped ${s}`);
    if (r.guard.cloudwatchMetrics) out.push(`    cloudwatch judges ${r.guard.cloudwatchMetrics}`);
    for (const b of r.guard.baselines ?? []) out.push(`    baseline ${b}`);
  }
  for (const rb of r.rollbacks ?? []) out.push(`  rollback: ${rb.message}`);
  if (r.paused) {
    out.push('');
    out.push(`paused (exit code ${r.exitCode}): ${r.paused}`);
  }
  if (r.unverified) {
    out.push('');
    out.push(`unverified (exit code ${r.exitCode}): ${r.unverified}`);
  }
  if (r.error) {
    out.push('');
    out.push(`failed in phase ${r.failedPhase} (exit code ${r.exitCode}): ${r.error}`);
    out.push(`applied before the failure: ${r.applied.length > 0 ? r.applied.join(', ') : 'nothing'}`);
  }
  return `${out.join('\n')}\n`;
}
