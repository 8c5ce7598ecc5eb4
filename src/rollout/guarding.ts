import type { AwsClock } from '../aws/clock.js';
import type { Elbv2Reader } from '../aws/elbv2.js';
import { createGuard, describeDecision, realTimers, type Decision, type Guard, type GuardOptions, type Measurement, type PeriodReader } from '../guard/index.js';
import type { Logger } from '../report/log.js';
import type { Timeline } from '../report/timeline.js';

/**
 * The 5xx guard as the deploy runner uses it: started when the workloads are applied, watched through the
 * bake window; its first failure trips the run once (the runner then rolls back).
 */

export class GuardTripped extends Error {
  constructor(readonly decision: Decision) {
    super(describeDecision(decision));
    this.name = 'GuardTripped';
  }
}

export interface GuardRunDeps {
  elbv2: Elbv2Reader;
  cloudwatch?: PeriodReader;
  clock: AwsClock;
  log: Logger;
  now: () => number;
  probeUrlFor?: (hostname: string) => Promise<string | undefined>;
}

export interface GuardRun {
  guard: Guard;
  skipped: string[];
  /** Set at the first failure decision. */
  tripped(): Decision | undefined;
  /** Called when the guard trips, so that waits re-check at once. */
  onTrip(fn: () => void): void;
  measurements: Measurement[];
}

export async function startGuard(
  options: GuardOptions,
  targets: { hostnames: string[]; targetGroupArns: string[]; newTargets: () => Iterable<string> },
  deps: GuardRunDeps,
  tl: Timeline,
): Promise<GuardRun> {
  const probe = { ...options.probe };
  if (probe.urls.length === 0 && deps.probeUrlFor) {
    probe.urls = (await Promise.all(targets.hostnames.map((h) => deps.probeUrlFor?.(h)))).filter((u): u is string => typeof u === 'string');
  }
  const lbArn = targets.targetGroupArns[0] ? (await deps.elbv2.targetGroup(targets.targetGroupArns[0]).catch(() => undefined))?.loadBalancerArns[0] : undefined;
  let decision: Decision | undefined;
  const listeners: Array<() => void> = [];
  const measurements: Measurement[] = [];
  const { guard, skipped } = createGuard(
    { ...options, probe },
    { hostnames: targets.hostnames, targetGroupArns: targets.targetGroupArns, newTargets: targets.newTargets, ...(lbArn ? { loadBalancerArn: lbArn } : {}) },
    {
      now: deps.now,
      timers: realTimers,
      elbv2: deps.elbv2,
      ...(deps.cloudwatch ? { cloudwatch: deps.cloudwatch } : {}),
      cloudwatchSince: deps.clock.now(),
      cloudwatchToWallClock: (ms) => deps.clock.toWall(ms),
      onMeasurement: (m) => {
        measurements.push(m);
        if (m.verdict === 'failure') tl.add('guard', `${m.signal}: ${m.evidence}`, { signal: m.signal, verdict: m.verdict, errors: m.errors ?? null, requests: m.requests ?? null });
      },
      onFailure: (d) => {
        decision = d;
        tl.add('guard', describeDecision(d), { verdict: d.verdict, signal: d.decidingSignal ?? null, firstErrorAt: d.firstErrorAt ?? null });
        deps.log.error(describeDecision(d));
        for (const l of listeners) l();
      },
    },
  );
  for (const s of skipped) {
    deps.log.warn(`guard signal skipped: ${s}`);
    tl.add('warning', `guard signal skipped: ${s}`);
  }
  guard.start();
  deps.log.info(`guard started: ${guard.signals.map((s) => s.name).join(', ') || 'no signal'}`);
  return { guard, skipped, tripped: () => decision, onTrip: (fn) => listeners.push(fn), measurements };
}

/** A summary of the guard's measurements for the report: per signal, windows, requests, errors, versions seen. */
export function summarizeMeasurements(ms: Measurement[]): Array<{ signal: string; windows: number; requests: number; errors: number; failingWindows: number; firstErrorAt?: string }> {
  const by = new Map<string, Measurement[]>();
  for (const m of ms) by.set(m.signal, [...(by.get(m.signal) ?? []), m]);
  return [...by.entries()].map(([signal, list]) => {
    const firstError = list.find((m) => (m.errors ?? 0) > 0);
    return {
      signal,
      windows: list.length,
      requests: list.reduce((a, m) => a + (m.requests ?? 0), 0),
      errors: list.reduce((a, m) => a + (m.errors ?? 0), 0),
      failingWindows: list.filter((m) => m.verdict === 'failure').length,
      ...(firstError ? { firstErrorAt: firstError.firstErrorAt ?? firstError.window.start } : {}),
    };
  });
}
