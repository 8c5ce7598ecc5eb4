import type { TargetHealth } from '../aws/elbv2.js';
import { sleep, type Emit, type Measurement, type Signal } from './signal.js';

/**
 * Target health as a guard signal: the ALB's own verdict on the new pods. Every `intervalMs` it describes the
 * target groups; a new-version target (its IP is one of `newTargets()`) that is `unhealthy` for
 * `consecutiveUnhealthy` observations in a row makes the measurement a failure, with AWS's reason
 * (Target.ResponseCodeMismatch, Target.Timeout, Target.FailedHealthChecks…). Old targets are ignored: they are
 * draining or gone by design. `initial` is not a failure (the deploy wait covers slow registration).
 *
 * The old version's health as a baseline: the old targets unhealthy at the first observation (right after apply,
 * before any of them drains) were unhealthy before the release. A new target unhealthy for one of the same reasons
 * is what the target group does to any version (a health-check path, port or security group that fails every
 * target), not the release's fault: it is reported, inconclusive, never a failure. A new target unhealthy for a
 * reason no old target had is the release's.
 */

export interface TargetHealthSource {
  targetHealth(targetGroupArn: string): Promise<TargetHealth[]>;
}

export interface TargetHealthSignalOptions {
  elbv2: TargetHealthSource;
  targetGroupArns: string[];
  /** IPs of the new version's pods; read at every observation (pods appear during the rollout). */
  newTargets: () => Iterable<string>;
  intervalMs: number;
  /** Observations in a row a target must be unhealthy (default 2). */
  consecutiveUnhealthy?: number;
  name?: string;
  now?: () => number;
  /** Stop after this many observations (default unbounded: until aborted). */
  maxObservations?: number;
}

export class TargetHealthSignal implements Signal {
  readonly kind = 'target-health' as const;
  readonly name: string;
  /** target key → unhealthy observations in a row, and when the first of them was made (ms). */
  private readonly streaks = new Map<string, { count: number; since: number }>();
  private readonly now: () => number;
  /** Reason → old targets unhealthy for it at the first observation; undefined until then. */
  private before: Map<string, number> | undefined;

  constructor(private readonly o: TargetHealthSignalOptions) {
    this.name = o.name ?? 'target-health';
    this.now = o.now ?? Date.now;
  }

  async run(emit: Emit, signal: AbortSignal): Promise<void> {
    let last = this.now();
    for (let n = 0; !signal.aborted && n < (this.o.maxObservations ?? Number.POSITIVE_INFINITY); n++) {
      const m = await this.observe(last);
      last = Date.parse(m.window.end);
      if (signal.aborted) break;
      emit(m);
      await sleep(this.o.intervalMs, signal);
    }
  }

  /** One observation of every target group; `since` is the previous observation's time (ms). */
  async observe(since: number): Promise<Measurement> {
    const need = this.o.consecutiveUnhealthy ?? 2;
    const newIps = new Set(this.o.newTargets());
    const seen = new Set<string>();
    const failing: string[] = [];
    const suspect: string[] = [];
    const alreadyBefore: string[] = [];
    let observed = 0;
    let firstAt = Number.POSITIVE_INFINITY;
    const first = this.before === undefined;
    const before = this.before ?? new Map<string, number>();
    try {
      for (const arn of this.o.targetGroupArns) {
        const targets = await this.o.elbv2.targetHealth(arn);
        const tgName = arn.slice(arn.lastIndexOf(':') + 1);
        for (const t of targets) {
          if (!newIps.has(t.id)) {
            if (first && t.state === 'unhealthy') before.set(t.reason ?? 'unknown', (before.get(t.reason ?? 'unknown') ?? 0) + 1);
            continue;
          }
          observed++;
          const key = `${arn}|${t.id}:${t.port}`;
          seen.add(key);
          if (t.state === 'unhealthy') {
            const prev = this.streaks.get(key);
            const streak = (prev?.count ?? 0) + 1;
            this.streaks.set(key, { count: streak, since: prev?.since ?? this.now() });
            if (streak >= need) firstAt = Math.min(firstAt, prev?.since ?? this.now());
            const text = `${t.id}:${t.port} unhealthy in ${tgName}${t.reason ? ` (${t.reason}${t.description ? `: ${t.description}` : ''})` : ''}`;
            const old = before.get(t.reason ?? 'unknown');
            if (streak >= need && old !== undefined) alreadyBefore.push(`${text}, as ${old} target(s) of the old version were before the release`);
            else if (streak >= need) failing.push(`${text}, ${streak} observations in a row`);
            else suspect.push(`${text}, ${streak} of ${need} observations`);
          } else {
            this.streaks.delete(key);
          }
        }
      }
      if (first) this.before = before;
    } catch (err) {
      const now = this.now();
      return {
        signal: 'target-health',
        source: this.name,
        at: new Date(now).toISOString(),
        window: { start: new Date(since).toISOString(), end: new Date(now).toISOString() },
        value: 0,
        verdict: 'error',
        evidence: `DescribeTargetHealth failed: ${(err as Error).message}`,
      };
    }
    for (const k of [...this.streaks.keys()]) if (!seen.has(k)) this.streaks.delete(k);
    const now = this.now();
    const base = {
      signal: 'target-health' as const,
      source: this.name,
      at: new Date(now).toISOString(),
      window: { start: new Date(since).toISOString(), end: new Date(now).toISOString() },
      value: failing.length,
      details: { newTargets: observed, unhealthy: failing.length + suspect.length + alreadyBefore.length, ...(before.size > 0 ? { unhealthyBefore: [...before.values()].reduce((a, n) => a + n, 0) } : {}) },
    };
    if (failing.length > 0) return { ...base, verdict: 'failure', evidence: `new target(s) unhealthy: ${failing.join('; ')}`, firstErrorAt: new Date(firstAt).toISOString() };
    if (observed === 0) return { ...base, verdict: 'inconclusive', evidence: 'no new-version target registered yet' };
    if (suspect.length > 0) return { ...base, verdict: 'inconclusive', evidence: `waiting for confirmation: ${suspect.join('; ')}` };
    if (alreadyBefore.length > 0) {
      return { ...base, verdict: 'inconclusive', evidence: `new target(s) unhealthy for the reason the old version's were before the release — the target group's health check fails every version, not the release's fault: ${alreadyBefore.join('; ')}` };
    }
    return { ...base, verdict: 'success', evidence: `${observed} new target(s), none unhealthy` };
  }
}
