import {
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { awsCall } from './call.js';
import { UnreachableError } from '../errors.js';

/**
 * Read-only ELBv2 access: target health and target-group attributes, by ARN (from TargetGroupBindings;
 * never by scanning the account). Throttling is retried with jittered exponential backoff: the controller
 * shares the same account limits, so we back off rather than hammer.
 */

export type TargetState = 'initial' | 'healthy' | 'unhealthy' | 'unhealthy.draining' | 'unused' | 'draining' | 'unavailable';

export interface TargetHealth {
  id: string;
  port: number;
  state: TargetState;
  reason?: string;
  description?: string;
}

export interface AwsConnection {
  region?: string;
  /** Explicit endpoint (tests); otherwise the SDK reads AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2 / AWS_ENDPOINT_URL. */
  endpoint?: string;
  /** Static credentials (the lab); otherwise the SDK's default chain (env, IRSA web identity, OIDC on GitHub…). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Retries (p-retry, jittered exponential backoff) after the one SDK attempt, for throttling storms and 5xx (default 8). */
  retries?: number;
  minRetryDelayMs?: number;
  maxRetryDelayMs?: number;
}

/** The caller's identity is missing, wrong or not allowed: retrying cannot help (exit 3, with the fix). */


export class Elbv2Reader {
  /** Attempts sent, by action (an SDK-internal retry is not counted separately). */
  readonly calls: Record<string, number> = {};
  /** Attempts answered with a throttling error (then retried with backoff). */
  readonly throttled = { count: 0 };
  /** Attempts that failed transiently (throttling or 5xx) and were retried, by action. */
  readonly retried: Record<string, number> = {};
  private readonly client: ElasticLoadBalancingV2Client;

  constructor(private readonly conn: AwsConnection) {
    this.client = new ElasticLoadBalancingV2Client({
      ...(conn.region ? { region: conn.region } : {}),
      ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
      ...(conn.credentials ? { credentials: conn.credentials } : {}),
      // One attempt per send: every retry is ours (p-retry below), so each throttled attempt is counted and backs off with jitter.
      maxAttempts: 1,
      requestHandler: { requestTimeout: 10_000, connectionTimeout: 3_000 },
    });
  }

  destroy(): void {
    this.client.destroy();
  }

  private call<T>(action: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return awsCall(action, fn, {
      counters: this,
      retry: { retries: this.conn.retries ?? 8, minRetryDelayMs: this.conn.minRetryDelayMs ?? 500, maxRetryDelayMs: this.conn.maxRetryDelayMs ?? 8_000 },
      unreachable: (action, detail, err) =>
        new UnreachableError(
          `cannot reach ELBv2 (${action}): ${detail}. Check AWS credentials and region (aws-actions/configure-aws-credentials on GitHub; AWS_REGION), or AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2 for the lab.`,
          { cause: err },
        ),
      ...(signal ? { signal } : {}),
    });
  }

  /** `signal` aborts the request and any backoff between retries (the promise then rejects). */
  async targetHealth(targetGroupArn: string, signal?: AbortSignal): Promise<TargetHealth[]> {
    const out = await this.call(
      'DescribeTargetHealth',
      () => this.client.send(new DescribeTargetHealthCommand({ TargetGroupArn: targetGroupArn }), signal ? { abortSignal: signal } : {}),
      signal,
    );
    return (out.TargetHealthDescriptions ?? []).map((d) => ({
      id: d.Target?.Id ?? '',
      port: d.Target?.Port ?? 0,
      state: (d.TargetHealth?.State ?? 'unavailable') as TargetState,
      ...(d.TargetHealth?.Reason ? { reason: d.TargetHealth.Reason } : {}),
      ...(d.TargetHealth?.Description ? { description: d.TargetHealth.Description } : {}),
    }));
  }

  async attributes(targetGroupArn: string, signal?: AbortSignal): Promise<Record<string, string>> {
    const out = await this.call(
      'DescribeTargetGroupAttributes',
      () => this.client.send(new DescribeTargetGroupAttributesCommand({ TargetGroupArn: targetGroupArn }), signal ? { abortSignal: signal } : {}),
      signal,
    );
    const attrs: Record<string, string> = {};
    for (const a of out.Attributes ?? []) if (a.Key) attrs[a.Key] = a.Value ?? '';
    return attrs;
  }

  /** Health-check settings, to know when a target's state can next change (interval × thresholds). */
  async targetGroup(targetGroupArn: string): Promise<{ intervalSeconds: number; healthyThreshold: number; unhealthyThreshold: number; loadBalancerArns: string[] } | undefined> {
    const out = await this.call('DescribeTargetGroups', () => this.client.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [targetGroupArn] })));
    const tg = out.TargetGroups?.[0];
    if (!tg) return undefined;
    return {
      intervalSeconds: tg.HealthCheckIntervalSeconds ?? 15,
      healthyThreshold: tg.HealthyThresholdCount ?? 2,
      unhealthyThreshold: tg.UnhealthyThresholdCount ?? 2,
      loadBalancerArns: tg.LoadBalancerArns ?? [],
    };
  }
}
