import { CloudWatchClient, GetMetricDataCommand, type MetricDataQuery, type MetricDataResult } from '@aws-sdk/client-cloudwatch';
import { awsCall } from './call.js';
import { UnreachableError } from '../errors.js';
import type { AwsConnection } from './elbv2.js';

/**
 * Read-only CloudWatch access for one ALB: `GetMetricData` on `AWS/ApplicationELB`, Sum per period.
 *
 * - `HTTPCode_ELB_5XX_Count` is published per LoadBalancer only (there is no TargetGroup dimension);
 *   `HTTPCode_Target_5XX_Count` and `RequestCount` are queried with TargetGroup + LoadBalancer (TargetGroup alone
 *   returns nothing). Dimension values are the ARN tails (`app/<name>/<id>`, `targetgroup/<name>/<id>`).
 * - Windows are aligned to whole periods; a missing point is 0 (the ALB publishes only when traffic flows).
 * - The newest periods are not final (ALB metrics land 1–3 minutes late): a period is `settled` only when it ended
 *   at least `settleSeconds` before now. Callers judge settled periods only.
 * - Time comes from `now()` (ms). Against the lab this is the ALB model's simulated clock, so windows and
 *   timestamps are on the same (compressed) epoch as the lab's metrics.
 * - Throttling and 5xx are retried with jittered backoff (as Elbv2Reader); unreachable endpoint or missing
 *   credentials/permissions → UnreachableError.
 */

export interface CloudWatchConnection extends AwsConnection {
  /** The SDK's own attempts per call before our backoff takes over (default 2). */
  sdkMaxAttempts?: number;
}

export interface AlbMetricTarget {
  loadBalancerArn: string;
  targetGroupArns: string[];
}

export interface TargetGroupCounts {
  targetGroupArn: string;
  requests: number;
  target5xx: number;
}

export interface AlbPeriod {
  /** Period start/end, ms since epoch (end exclusive). */
  start: number;
  end: number;
  /** Sum over the target groups. */
  requests: number;
  target5xx: number;
  /** For the whole load balancer (all its target groups and listeners). */
  elb5xx: number;
  byTargetGroup: TargetGroupCounts[];
  /** Ended at least settleSeconds before now: the numbers are final. */
  settled: boolean;
  /** No data point at all in this period (every metric filled with 0). */
  empty: boolean;
}

export interface ReadPeriodsOptions {
  /** Range to cover (ms); aligned outward to whole periods, clipped to now. */
  from: number;
  to?: number;
  periodSeconds?: number;
  settleSeconds?: number;
}

const NAMESPACE = 'AWS/ApplicationELB';
/** GetMetricData takes at most 500 queries; two per target group plus one for the load balancer. */
const MAX_TGS_PER_CALL = 200;

export function loadBalancerDimension(arn: string): string {
  const tail = arn.split(':loadbalancer/')[1];
  if (!tail || !tail.startsWith('app/')) {
    throw new Error(`"${arn}" is not an Application Load Balancer ARN (…:loadbalancer/app/<name>/<id>)`);
  }
  return tail;
}

export function targetGroupDimension(arn: string): string {
  const tail = arn.slice(arn.lastIndexOf(':') + 1);
  if (!tail.startsWith('targetgroup/')) throw new Error(`"${arn}" is not a target group ARN (…:targetgroup/<name>/<id>)`);
  return tail;
}

/** Period boundaries: [floor(from), ceil(to)) in whole periods. */
export function alignWindow(fromMs: number, toMs: number, periodSeconds: number): { start: number; end: number } {
  const p = periodSeconds * 1000;
  return { start: Math.floor(fromMs / p) * p, end: Math.ceil(toMs / p) * p };
}

export class CloudWatchReader {
  readonly calls: Record<string, number> = {};
  readonly throttled = { count: 0 };
  /** Attempts that failed transiently (throttling or 5xx) and were retried, by action. */
  readonly retried: Record<string, number> = {};
  private readonly client: CloudWatchClient;
  private readonly now: () => number;

  constructor(
    private readonly conn: CloudWatchConnection,
    deps: { now?: () => number } = {},
  ) {
    this.now = deps.now ?? Date.now;
    this.client = new CloudWatchClient({
      ...(conn.region ? { region: conn.region } : {}),
      ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
      ...(conn.credentials ? { credentials: conn.credentials } : {}),
      maxAttempts: conn.sdkMaxAttempts ?? 2,
      requestHandler: { requestTimeout: 10_000, connectionTimeout: 3_000 },
    });
  }

  destroy(): void {
    this.client.destroy();
  }

  /**
   * Per-period sums for the ALB and its target groups over [from, to) (default to = now), aligned to whole
   * periods; periods in the future are not returned; missing points are 0.
   */
  async readPeriods(target: AlbMetricTarget, o: ReadPeriodsOptions): Promise<AlbPeriod[]> {
    const periodSeconds = o.periodSeconds ?? 60;
    if (!Number.isInteger(periodSeconds) || periodSeconds < 60 || periodSeconds % 60 !== 0) {
      throw new Error(`periodSeconds must be a multiple of 60 (ALB metrics are standard resolution), got ${periodSeconds}`);
    }
    const now = this.now();
    const settleMs = (o.settleSeconds ?? 120) * 1000;
    const p = periodSeconds * 1000;
    const { start, end: alignedEnd } = alignWindow(o.from, Math.min(o.to ?? now, now), periodSeconds);
    const end = Math.max(alignedEnd, start + p);
    const lb = loadBalancerDimension(target.loadBalancerArn);
    const tgs = target.targetGroupArns.map((arn) => ({ arn, dim: targetGroupDimension(arn) }));

    const series = new Map<string, Map<number, number>>();
    for (let i = 0; i === 0 || i < tgs.length; i += MAX_TGS_PER_CALL) {
      const chunk = tgs.slice(i, i + MAX_TGS_PER_CALL);
      const queries: MetricDataQuery[] = [];
      if (i === 0) queries.push(stat('elb5xx', 'HTTPCode_ELB_5XX_Count', [{ Name: 'LoadBalancer', Value: lb }], periodSeconds));
      chunk.forEach((tg, j) => {
        const dims = [
          { Name: 'TargetGroup', Value: tg.dim },
          { Name: 'LoadBalancer', Value: lb },
        ];
        queries.push(stat(`t5xx_${i + j}`, 'HTTPCode_Target_5XX_Count', dims, periodSeconds));
        queries.push(stat(`req_${i + j}`, 'RequestCount', dims, periodSeconds));
      });
      for (const r of await this.getMetricData(queries, start, end)) {
        const s = series.get(r.Id ?? '') ?? new Map<number, number>();
        (r.Timestamps ?? []).forEach((t, k) => {
          const ms = t.getTime();
          s.set(ms, (s.get(ms) ?? 0) + Number(r.Values?.[k] ?? 0));
        });
        series.set(r.Id ?? '', s);
      }
    }

    const periods: AlbPeriod[] = [];
    for (let t = start; t < end; t += p) {
      const at = (id: string): number | undefined => series.get(id)?.get(t);
      let empty = at('elb5xx') === undefined;
      const byTargetGroup = tgs.map((tg, k) => {
        const req = at(`req_${k}`);
        const t5 = at(`t5xx_${k}`);
        if (req !== undefined || t5 !== undefined) empty = false;
        return { targetGroupArn: tg.arn, requests: req ?? 0, target5xx: t5 ?? 0 };
      });
      periods.push({
        start: t,
        end: t + p,
        requests: byTargetGroup.reduce((a, b) => a + b.requests, 0),
        target5xx: byTargetGroup.reduce((a, b) => a + b.target5xx, 0),
        elb5xx: at('elb5xx') ?? 0,
        byTargetGroup,
        settled: t + p + settleMs <= now,
        empty,
      });
    }
    return periods;
  }

  /** One GetMetricData with pagination; results merged by query id. */
  private async getMetricData(queries: MetricDataQuery[], start: number, end: number): Promise<MetricDataResult[]> {
    const merged = new Map<string, MetricDataResult>();
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const token = nextToken;
      const out = await this.call('GetMetricData', () =>
        this.client.send(
          new GetMetricDataCommand({
            MetricDataQueries: queries,
            StartTime: new Date(start),
            EndTime: new Date(end),
            ScanBy: 'TimestampAscending',
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      for (const r of out.MetricDataResults ?? []) {
        if (r.StatusCode === 'Forbidden') {
          throw new UnreachableError(
            `CloudWatch refused ${r.Id} (${r.Label ?? ''}): Forbidden. Allow cloudwatch:GetMetricData for the role alb-rollout runs as (see examples/iam).`,
          );
        }
        if (r.StatusCode === 'InternalError') {
          throw new Error(`CloudWatch could not compute ${r.Id}: ${(r.Messages ?? []).map((m) => m.Value).join('; ') || 'InternalError'}`);
        }
        const prev = merged.get(r.Id ?? '');
        if (!prev) merged.set(r.Id ?? '', { ...r, Timestamps: [...(r.Timestamps ?? [])], Values: [...(r.Values ?? [])] });
        else {
          prev.Timestamps!.push(...(r.Timestamps ?? []));
          prev.Values!.push(...(r.Values ?? []));
        }
      }
      nextToken = out.NextToken;
      if (++pages > 100) throw new Error('CloudWatch GetMetricData: more than 100 pages; narrow the window');
    } while (nextToken);
    return [...merged.values()];
  }

  private call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    return awsCall(action, fn, {
      counters: this,
      retry: { retries: this.conn.retries ?? 6, minRetryDelayMs: this.conn.minRetryDelayMs ?? 500, maxRetryDelayMs: this.conn.maxRetryDelayMs ?? 8_000 },
      unreachable: (action, detail, err) =>
        new UnreachableError(
          `cannot read CloudWatch metrics (${action}): ${detail}. Check AWS credentials, region and the cloudwatch:GetMetricData permission ` +
            '(aws-actions/configure-aws-credentials on GitHub; IRSA in a cluster; AWS_REGION), or AWS_ENDPOINT_URL_CLOUDWATCH for the lab.',
          { cause: err },
        ),
    });
  }
}

function stat(id: string, metricName: string, dims: Array<{ Name: string; Value: string }>, period: number): MetricDataQuery {
  return { Id: id, MetricStat: { Metric: { Namespace: NAMESPACE, MetricName: metricName, Dimensions: dims }, Period: period, Stat: 'Sum' }, ReturnData: true };
}

