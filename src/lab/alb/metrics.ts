import { loadBalancerDimension, targetGroupDimension } from './names.js';

/**
 * The ALB's CloudWatch metrics (namespace AWS/ApplicationELB), kept as per-minute sums.
 *
 * Time mapping (one choice, used everywhere in the lab's AWS side): the lab keeps a **simulated epoch**,
 * `simulated = origin + (real − origin) × timeScale`, where `origin` is the real time the ALB model was created.
 * Metric minutes are minutes of that simulated epoch, so one metric minute lasts 60/timeScale real seconds,
 * and the StartTime/EndTime of GetMetricData requests (and the Timestamps returned) are simulated-epoch seconds.
 * Clients that query the lab ask `AlbCloud.simulatedNow()` for "now" instead of Date.now().
 *
 * Publication lag: with a lag source, a minute's datapoints become readable only `lag` simulated seconds after the
 * minute ends (one draw per minute, as CloudWatch publishes a period's batch 1–3 minutes late); without one, every
 * minute is readable at once, the current partial minute included.
 */
export class SimulatedEpoch {
  constructor(
    readonly originMs: number,
    readonly timeScale: number,
  ) {}

  /** Simulated epoch milliseconds for a real time (default: now). */
  nowMs(realMs: number = Date.now()): number {
    return this.originMs + (realMs - this.originMs) * this.timeScale;
  }

  /** The real time at which the simulated clock shows `simMs`. */
  realMs(simMs: number): number {
    return this.originMs + (simMs - this.originMs) / this.timeScale;
  }
}

/** The dimension combinations the ALB publishes; any other combination has no data, as on CloudWatch. */
export type DimensionSet = Record<string, string>;

export interface RequestOutcome {
  lbArn: string;
  /** The target group the request was forwarded to (absent for fixed responses and unrouted requests). */
  tgArn?: string;
  status: number;
  /** Who produced the status: the load balancer itself (5xx it generated), a target, or a fixed-response action. */
  origin: 'elb' | 'target' | 'fixed';
}

export interface TrafficCounters {
  requests: number;
  byStatus: Record<string, number>;
  elb5xx: number;
  target5xx: number;
  target2xx: number;
}

function emptyCounters(): TrafficCounters {
  return { requests: 0, byStatus: {}, elb5xx: 0, target5xx: 0, target2xx: 0 };
}

export class AlbMetrics {
  /** dimension key → metric name → minute start (simulated epoch seconds) → sum */
  private readonly series = new Map<string, Map<string, Map<number, number>>>();
  private readonly totals = new Map<string, TrafficCounters>();
  /** minute start → simulated epoch second from which its datapoints are readable (only with a lag source). */
  private readonly publishAt = new Map<number, number>();

  constructor(
    private readonly epoch: SimulatedEpoch,
    private readonly periodSeconds: number = 60,
    /** Draws a minute's publication lag in simulated seconds (absent: no lag). */
    private readonly lag?: () => number,
  ) {}

  static key(dims: DimensionSet): string {
    return Object.keys(dims)
      .sort()
      .map((k) => `${k}=${dims[k]}`)
      .join('|');
  }

  record(o: RequestOutcome, realMs: number = Date.now()): void {
    const minute = Math.floor(this.epoch.nowMs(realMs) / 1000 / this.periodSeconds) * this.periodSeconds;
    if (this.lag && !this.publishAt.has(minute)) this.publishAt.set(minute, minute + this.periodSeconds + this.lag());
    const lbDims = { LoadBalancer: loadBalancerDimension(o.lbArn) };
    const cls = `${Math.floor(o.status / 100)}XX`;
    const lbMetrics: string[] = ['RequestCount'];
    if (o.origin === 'elb') {
      lbMetrics.push(`HTTPCode_ELB_${cls}_Count`);
      if ([500, 502, 503, 504].includes(o.status)) lbMetrics.push(`HTTPCode_ELB_${o.status}_Count`);
    } else if (o.origin === 'target') {
      lbMetrics.push(`HTTPCode_Target_${cls}_Count`);
    } else {
      lbMetrics.push('HTTP_Fixed_Response_Count');
    }
    for (const m of lbMetrics) this.add(lbDims, m, minute);
    if (o.tgArn) {
      const tgDims = { LoadBalancer: lbDims.LoadBalancer, TargetGroup: targetGroupDimension(o.tgArn) };
      this.add(tgDims, 'RequestCount', minute);
      if (o.origin === 'target') this.add(tgDims, `HTTPCode_Target_${cls}_Count`, minute);
    }
    for (const k of [o.lbArn, ...(o.tgArn ? [o.tgArn] : [])]) {
      const c = this.totals.get(k) ?? emptyCounters();
      c.requests++;
      c.byStatus[String(o.status)] = (c.byStatus[String(o.status)] ?? 0) + 1;
      if (o.origin === 'elb' && o.status >= 500) c.elb5xx++;
      if (o.origin === 'target' && o.status >= 500) c.target5xx++;
      if (o.origin === 'target' && o.status >= 200 && o.status < 300) c.target2xx++;
      this.totals.set(k, c);
    }
  }

  private add(dims: DimensionSet, metric: string, minute: number): void {
    const k = AlbMetrics.key(dims);
    let byMetric = this.series.get(k);
    if (!byMetric) this.series.set(k, (byMetric = new Map()));
    let points = byMetric.get(metric);
    if (!points) byMetric.set(metric, (points = new Map()));
    points.set(minute, (points.get(minute) ?? 0) + 1);
  }

  /**
   * Per-minute sums of one metric for one exact dimension set, [startSec, endSec) in simulated epoch seconds,
   * ascending — only the minutes already published at `nowSec` (simulated; default now).
   */
  minutes(metric: string, dims: DimensionSet, startSec: number, endSec: number, nowSec: number = this.epoch.nowMs() / 1000): Array<[number, number]> {
    const points = this.series.get(AlbMetrics.key(dims))?.get(metric);
    if (!points) return [];
    return [...points.entries()]
      .filter(([t]) => t >= startSec && t < endSec && this.published(t, nowSec))
      .sort((a, b) => a[0] - b[0]);
  }

  /** Whether the minute starting at `minuteSec` is readable at `nowSec` (simulated epoch seconds). */
  published(minuteSec: number, nowSec: number = this.epoch.nowMs() / 1000): boolean {
    if (!this.lag) return true;
    const at = this.publishAt.get(minuteSec);
    return at === undefined || nowSec >= at;
  }

  /** Totals since start for a load balancer or target group ARN (what the lab reports; CloudWatch reads `minutes`). */
  counters(arn: string): TrafficCounters {
    const c = this.totals.get(arn);
    return c ? structuredClone(c) : emptyCounters();
  }

  /** Which dimension keys have data (diagnostics). */
  dimensionKeys(): string[] {
    return [...this.series.keys()];
  }
}
