import type { AlbMetricTarget, AlbPeriod, ReadPeriodsOptions } from '../aws/cloudwatch.js';
import { describeRate, judgeWindow, type BaselineCounts, type Thresholds } from './policy.js';
import { percent, sleep, type Emit, type Measurement, type Signal } from './signal.js';

/**
 * CloudWatch ALB metrics as a guard signal: every `pollMs` it reads the periods since `since`, and emits one
 * measurement per period once that period is settled (never twice, never an unsettled one). Errors are
 * `HTTPCode_Target_5XX_Count` of the rollout's target groups plus (by default) the load balancer's
 * `HTTPCode_ELB_5XX_Count` — 502/503/504 from the ALB itself, which is what a bad rollout produces; note that on
 * an ALB shared by several Ingresses (an IngressGroup) the ELB count includes the other applications.
 * The error rate is errors / max(requests, errors).
 *
 * Baseline: with `baselineSeconds`, the settled periods before `since` (the apply) are read too, as the old
 * version's numbers on the same target groups; frozen when the first period of the release is judged (by then
 * their datapoints are published), and every period of the release is judged against them (policy.ts
 * `exceedsBaseline`). No datapoint before apply is said so and the periods are judged against the thresholds
 * alone: not measured is not zero.
 *
 * Late datapoints: CloudWatch publishes a period's ALB datapoints 1–3 minutes after it ends, so a period that is
 * settled but still has no datapoint at all is not final — it is re-read on every poll until `lateSeconds` after
 * it ended, and judged when its data arrives. Only then is an empty period emitted, as "no data points"
 * (inconclusive: not measured, never zero errors).
 */

/** How long after a period ends CloudWatch may still publish its first datapoint (ALB metrics: up to 3 minutes). */
export const CLOUDWATCH_LATE_SECONDS = 180;

export interface PeriodReader {
  readPeriods(target: AlbMetricTarget, o: ReadPeriodsOptions): Promise<AlbPeriod[]>;
}

export interface CloudWatchSignalOptions {
  reader: PeriodReader;
  target: AlbMetricTarget;
  /** First instant to cover, on the reader's clock (ms); aligned down to the period. */
  since: number;
  periodSeconds?: number;
  settleSeconds?: number;
  /** Re-read a settled period with no datapoint until this long after it ended (default CLOUDWATCH_LATE_SECONDS). */
  lateSeconds?: number;
  /** "Now" on the reader's clock (ms), to tell when an empty period's data can no longer come; default Date.now. */
  readerNow?: () => number;
  /** Real milliseconds between reads (default: a quarter period, at most 15 s). */
  pollMs?: number;
  thresholds: Thresholds;
  /** Seconds before `since` whose settled periods are the old version's baseline (default 0: none). */
  baselineSeconds?: number;
  /** Called once, when the baseline is frozen: what it is, or why there is none. */
  onBaseline?: (b: CloudWatchBaseline) => void;
  /** Count the load balancer's own 5xx (default true). */
  includeElb5xx?: boolean;
  name?: string;
  /** Maps a reader-clock time to wall-clock ms for the measurement (the lab's simulated epoch); default identity. */
  toWallClock?: (ms: number) => number;
  /** Wall clock for `at` (default Date.now). */
  wallNow?: () => number;
}

/** The old version's numbers before apply, as the signal judges against them. */
export interface CloudWatchBaseline {
  /** Undefined: no datapoint in the minutes before apply. */
  counts?: BaselineCounts;
  /** Periods read before apply, and how many had datapoints. */
  periods: number;
  withData: number;
  /** One line: which baseline is used (per target group), or that there is none. */
  text: string;
}

export class CloudWatchSignal implements Signal {
  readonly kind = 'cloudwatch' as const;
  readonly name: string;
  private readonly emittedStarts = new Set<number>();
  private baseline: CloudWatchBaseline | undefined;

  constructor(private readonly o: CloudWatchSignalOptions) {
    this.name = o.name ?? 'cloudwatch';
  }

  async run(emit: Emit, signal: AbortSignal): Promise<void> {
    const periodSeconds = this.o.periodSeconds ?? 60;
    const pollMs = this.o.pollMs ?? Math.min(15_000, (periodSeconds * 1000) / 4);
    let lastError = '';
    const periodMs = periodSeconds * 1000;
    const releaseStart = Math.floor(this.o.since / periodMs) * periodMs;
    const baselinePeriods = Math.ceil((this.o.baselineSeconds ?? 0) / periodSeconds);
    while (!signal.aborted) {
      try {
        const read = await this.o.reader.readPeriods(this.o.target, {
          from: releaseStart - baselinePeriods * periodMs,
          periodSeconds,
          ...(this.o.settleSeconds !== undefined ? { settleSeconds: this.o.settleSeconds } : {}),
        });
        lastError = '';
        const before = read.filter((x) => x.start < releaseStart);
        const periods = read.filter((x) => x.start >= releaseStart);
        const lateMs = Math.max(this.o.lateSeconds ?? CLOUDWATCH_LATE_SECONDS, this.o.settleSeconds ?? 0) * 1000;
        const now = (this.o.readerNow ?? Date.now)();
        for (const p of periods) {
          if (!p.settled || this.emittedStarts.has(p.start)) continue;
          // No datapoint yet: it may still be published; read it again next time.
          if (p.empty && p.end + lateMs > now) continue;
          this.emittedStarts.add(p.start);
          if (baselinePeriods > 0 && !this.baseline) {
            this.baseline = this.baselineOf(before, baselinePeriods, periodSeconds);
            this.o.onBaseline?.(this.baseline);
          }
          emit(this.measure(p));
        }
      } catch (err) {
        const message = (err as Error).message;
        if (message !== lastError) {
          lastError = message;
          const now = this.wallNow();
          emit({
            signal: 'cloudwatch',
            source: this.name,
            at: new Date(now).toISOString(),
            window: { start: new Date(now).toISOString(), end: new Date(now).toISOString() },
            value: 0,
            verdict: 'error',
            evidence: `GetMetricData failed: ${message}`,
          });
        }
      }
      await sleep(pollMs, signal);
    }
  }

  private wallNow(): number {
    return (this.o.wallNow ?? Date.now)();
  }

  /** The settled periods before apply with datapoints, summed as one period counts (per target group in the text). */
  baselineOf(before: AlbPeriod[], periods: number, periodSeconds: number): CloudWatchBaseline {
    const includeElb = this.o.includeElb5xx ?? true;
    // Only minutes in which the target groups served requests: 503s of an ALB with no target yet (a first install) are no old version.
    const data = before.filter((x) => x.settled && !x.empty && x.requests > 0);
    const minutes = `${periods} period(s) of ${periodSeconds}s before apply`;
    if (data.length === 0) {
      return { periods, withData: 0, text: `no baseline datapoints in the ${minutes} (no request to the target groups then, or CloudWatch has not published them): judged against the thresholds alone — not measured, not zero` };
    }
    let requests = 0;
    let errors = 0;
    const byTg = new Map<string, { requests: number; target5xx: number }>();
    for (const x of data) {
      const e = x.target5xx + (includeElb ? x.elb5xx : 0);
      errors += e;
      requests += Math.max(x.requests, e);
      for (const tg of x.byTargetGroup) {
        const short = tg.targetGroupArn.slice(tg.targetGroupArn.lastIndexOf(':') + 1);
        const t = byTg.get(short) ?? { requests: 0, target5xx: 0 };
        t.requests += tg.requests;
        t.target5xx += tg.target5xx;
        byTg.set(short, t);
      }
    }
    const elb = includeElb ? ` + HTTPCode_ELB_5XX_Count ${data.reduce((a, x) => a + x.elb5xx, 0)}` : '';
    const tgs = [...byTg.entries()].map(([k, t]) => `${k}: RequestCount ${t.requests}, HTTPCode_Target_5XX_Count ${t.target5xx}`).join('; ');
    const counts: BaselineCounts = { requests, errors, source: `CloudWatch, ${data.length} of the ${minutes} with datapoints` };
    return {
      counts,
      periods,
      withData: data.length,
      text: `baseline of the old version: ${data.length} of the ${minutes} with datapoints — ${tgs}${elb}; error rate ${describeRate(counts, this.o.thresholds.confidence)}`,
    };
  }

  measure(p: AlbPeriod): Measurement {
    const includeElb = this.o.includeElb5xx ?? true;
    const errors = p.target5xx + (includeElb ? p.elb5xx : 0);
    const requests = Math.max(p.requests, errors);
    const rate = requests > 0 ? errors / requests : 0;
    const base = this.baseline?.counts;
    const j = judgeWindow({ requests, errors }, base ? { ...this.o.thresholds, baseline: base } : this.o.thresholds);
    const wall = this.o.toWallClock ?? ((x: number) => x);
    const details: Record<string, string | number> = {
      requestCount: p.requests,
      target5xx: p.target5xx,
      elb5xx: p.elb5xx,
      periodStart: new Date(p.start).toISOString(),
      periodSeconds: (p.end - p.start) / 1000,
    };
    if (base) {
      details.baselineRequests = base.requests;
      details.baselineErrors = base.errors;
    }
    for (const tg of p.byTargetGroup) {
      const short = tg.targetGroupArn.slice(tg.targetGroupArn.lastIndexOf(':') + 1);
      details[`requests.${short}`] = tg.requests;
      details[`target5xx.${short}`] = tg.target5xx;
    }
    const seen = p.empty
      ? `no data points ${Math.round(Math.max(this.o.lateSeconds ?? CLOUDWATCH_LATE_SECONDS, this.o.settleSeconds ?? 0))}s after the period ended (no traffic reached the ALB in this period, or CloudWatch has not published it): not measured`
      : `RequestCount ${p.requests}, HTTPCode_Target_5XX_Count ${p.target5xx}, HTTPCode_ELB_5XX_Count ${p.elb5xx}${includeElb ? '' : ' (not counted)'}`;
    return {
      signal: 'cloudwatch',
      source: this.name,
      at: new Date(this.wallNow()).toISOString(),
      window: { start: new Date(wall(p.start)).toISOString(), end: new Date(wall(p.end)).toISOString() },
      value: rate,
      requests,
      errors,
      verdict: j.verdict,
      evidence: `${seen}; ${percent(rate)} errors — ${j.reason}${this.baseline && !base ? ` (${this.baseline.text})` : ''}`,
      details,
    };
  }
}
