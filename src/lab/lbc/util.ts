import { randomUUID } from 'node:crypto';
import type { JsonObject, JsonValue, KubeObject } from '../../manifests/types.js';
import { AwsApiError, THROTTLING_CODES } from '../alb/errors.js';
import type { AwsAccount, Elbv2Action, Elbv2Input, Elbv2Output } from '../aws/account.js';
import type { ClusterAccess } from '../cluster.js';
import { StoreError } from '../store.js';
import type { LabClock } from '../timing.js';

/** Small shared pieces of the LBC emulation: JSON access, events, the AWS call wrapper, a keyed work queue. */

export function o(v: JsonValue | undefined): JsonObject {
  return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
}

export function a(v: JsonValue | undefined): JsonValue[] {
  return Array.isArray(v) ? v : [];
}

export function s(v: JsonValue | undefined): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

export function nowIso(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function isNotFound(e: unknown): boolean {
  return e instanceof StoreError && e.code === 404;
}

export { EventRecorder } from '../controllers/events.js';

/**
 * The AWS SDK for Go v2 as LBC uses it: every call goes through the account gateway (faults and rate limits
 * included), throttling and 5xx are retried up to 3 attempts with jittered exponential backoff (1 s base for
 * throttling, 50 ms otherwise, capped at 20 s; simulated seconds), and the final error reads like the Go SDK's.
 */
export async function callElbv2<A extends Elbv2Action>(account: AwsAccount, clock: LabClock, action: A, input: Elbv2Input<A>, maxAttempts = 3): Promise<Elbv2Output<A>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await account.elbv2(action, input, 'lbc');
    } catch (e) {
      const err = e instanceof AwsApiError ? e : new AwsApiError('InternalFailure', (e as Error).message, 500);
      const retryable = THROTTLING_CODES.has(err.code) || err.httpStatus >= 500;
      if (!retryable || attempt >= maxAttempts) throw new LbcAwsError(action, err);
      const base = THROTTLING_CODES.has(err.code) ? 1 : 0.05;
      await clock.sleep(clock.stream('lbc/aws-retry-jitter').float() * Math.min(base * 2 ** (attempt - 1), 20));
    }
  }
}

export interface TargetGroupSpec {
  name: string;
  protocol: 'HTTP' | 'TCP';
  port: number;
  targetType: 'ip' | 'instance';
  /** The health-check settings the annotations ask for: sent on create, compared and sent again on drift. */
  healthCheck: {
    HealthCheckProtocol: 'HTTP' | 'HTTPS' | 'TCP';
    HealthCheckPort: string;
    HealthCheckPath?: string;
    HealthCheckIntervalSeconds: number;
    HealthCheckTimeoutSeconds: number;
    HealthyThresholdCount: number;
    UnhealthyThresholdCount: number;
    Matcher?: { HttpCode: string };
  };
  tags: Array<{ Key: string; Value: string }>;
  /** Only the keys given are reconciled; keys removed from the annotation keep their value (LBC's rule). */
  attributes?: Record<string, string>;
}

/** LBC's target-group deploy: CreateTargetGroup (idempotent by name), ModifyTargetGroup on health-check drift, attribute diff. */
export async function ensureTargetGroup(account: AwsAccount, clock: LabClock, tg: TargetGroupSpec): Promise<string> {
  const hc = tg.healthCheck;
  const out = await callElbv2(account, clock, 'CreateTargetGroup', {
    Name: tg.name,
    Protocol: tg.protocol,
    ...(tg.protocol === 'HTTP' ? { ProtocolVersion: 'HTTP1' } : {}),
    Port: tg.port,
    TargetType: tg.targetType,
    IpAddressType: 'ipv4',
    ...hc,
    Tags: tg.tags,
  });
  const cur = out.TargetGroups![0]!;
  const arn = cur.TargetGroupArn!;
  if (
    cur.HealthCheckProtocol !== hc.HealthCheckProtocol ||
    cur.HealthCheckPath !== hc.HealthCheckPath ||
    cur.HealthCheckPort !== hc.HealthCheckPort ||
    cur.HealthCheckIntervalSeconds !== hc.HealthCheckIntervalSeconds ||
    cur.HealthCheckTimeoutSeconds !== hc.HealthCheckTimeoutSeconds ||
    cur.HealthyThresholdCount !== hc.HealthyThresholdCount ||
    cur.UnhealthyThresholdCount !== hc.UnhealthyThresholdCount ||
    cur.Matcher?.HttpCode !== hc.Matcher?.HttpCode
  ) {
    await callElbv2(account, clock, 'ModifyTargetGroup', { TargetGroupArn: arn, ...hc });
  }
  if (tg.attributes && Object.keys(tg.attributes).length > 0) {
    const current = await callElbv2(account, clock, 'DescribeTargetGroupAttributes', { TargetGroupArn: arn });
    const have = new Map((current.Attributes ?? []).map((x) => [x.Key ?? '', x.Value ?? '']));
    const changes = Object.entries(tg.attributes).filter(([k, v]) => have.get(k) !== v);
    if (changes.length > 0) await callElbv2(account, clock, 'ModifyTargetGroupAttributes', { TargetGroupArn: arn, Attributes: changes.map(([Key, Value]) => ({ Key, Value })) });
  }
  return arn;
}

/**
 * The first step of a stack's deletion: delete its TargetGroupBindings (their controller deregisters the targets and
 * releases the gates), noting their target groups. Returns true while some still exist (wait and come back).
 */
export function deleteStackTgbs(store: ClusterAccess, tgbs: () => KubeObject[], targetGroups: Set<string>): boolean {
  for (const tgb of tgbs()) {
    const arn = s(o(tgb.spec).targetGroupARN);
    if (arn) targetGroups.add(arn);
    if (!tgb.metadata.deletionTimestamp) store.delete('TargetGroupBinding', tgb.metadata.namespace ?? '', tgb.metadata.name);
  }
  return tgbs().length > 0;
}

/**
 * After a deploy: delete the stack's TGBs that the model no longer has (`wanted`: `ns/name`), then their target
 * groups unless the model still uses them (`live`); deleted ARNs leave `known`.
 */
export async function deleteStaleTgbs(store: ClusterAccess, account: AwsAccount, clock: LabClock, tgbs: KubeObject[], wanted: Set<string>, live: Set<string>, known: Set<string>): Promise<void> {
  for (const tgb of tgbs) {
    if (wanted.has(`${tgb.metadata.namespace ?? ''}/${tgb.metadata.name}`)) continue;
    const arn = s(o(tgb.spec).targetGroupARN);
    if (!tgb.metadata.deletionTimestamp) store.delete('TargetGroupBinding', tgb.metadata.namespace ?? '', tgb.metadata.name);
    if (arn && !live.has(arn)) {
      await deleteTargetGroup(account, clock, arn);
      known.delete(arn);
    }
  }
}

/** A stack's load balancer found by its tags (`<prefix>/stack` and the cluster tag), as LBC finds it after a restart. */
export async function findStackLoadBalancer(account: AwsAccount, clock: LabClock, opts: { type: 'application' | 'network'; stackTag: string; stack: string; clusterName: string }): Promise<string | undefined> {
  const lbs = (await callElbv2(account, clock, 'DescribeLoadBalancers', {})).LoadBalancers ?? [];
  const arns = lbs.filter((lb) => lb.Type === opts.type).map((lb) => lb.LoadBalancerArn!);
  for (let i = 0; i < arns.length; i += 20) {
    for (const d of (await callElbv2(account, clock, 'DescribeTags', { ResourceArns: arns.slice(i, i + 20) })).TagDescriptions ?? []) {
      const t = new Map((d.Tags ?? []).map((x) => [x.Key ?? '', x.Value ?? '']));
      if (t.get(opts.stackTag) === opts.stack && t.get('elbv2.k8s.aws/cluster') === opts.clusterName) return d.ResourceArn;
    }
  }
  return undefined;
}

/**
 * A stack whose load balancer must be replaced (its name changed with the scheme, or `…load-balancer-name`):
 * LBC deletes the old one before creating the new one (the hostname changes; traffic to the old one stops).
 */
export async function deleteReplacedLoadBalancer(account: AwsAccount, clock: LabClock, oldArn: string | undefined, wantedName: string): Promise<void> {
  if (!oldArn) return;
  let name: string | undefined;
  try {
    name = (await callElbv2(account, clock, 'DescribeLoadBalancers', { LoadBalancerArns: [oldArn] })).LoadBalancers?.[0]?.LoadBalancerName;
  } catch (e) {
    if (e instanceof LbcAwsError && e.code === 'LoadBalancerNotFound') return;
    throw e;
  }
  if (name !== undefined && name !== wantedName) await callElbv2(account, clock, 'DeleteLoadBalancer', { LoadBalancerArn: oldArn });
}

/** The last step of a stack's deletion: the load balancer (its target groups noted first), then every target group. */
export async function deleteLoadBalancerAndTargetGroups(account: AwsAccount, clock: LabClock, lbArn: string | undefined, targetGroups: Set<string>): Promise<void> {
  if (lbArn) {
    try {
      for (const tg of (await callElbv2(account, clock, 'DescribeTargetGroups', { LoadBalancerArn: lbArn })).TargetGroups ?? []) targetGroups.add(tg.TargetGroupArn!);
    } catch (e) {
      if (!(e instanceof LbcAwsError && e.code === 'LoadBalancerNotFound')) throw e;
    }
    await callElbv2(account, clock, 'DeleteLoadBalancer', { LoadBalancerArn: lbArn });
  }
  for (const arn of targetGroups) await deleteTargetGroup(account, clock, arn);
}

/** DeleteTargetGroup, retried every 2 s for up to 20 s while it is still in use (as LBC does). */
export async function deleteTargetGroup(account: AwsAccount, clock: LabClock, arn: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await callElbv2(account, clock, 'DeleteTargetGroup', { TargetGroupArn: arn });
      return;
    } catch (e) {
      if (e instanceof LbcAwsError && e.code === 'ResourceInUse' && i < 10) {
        await clock.sleep(2);
        continue;
      }
      throw e;
    }
  }
}

export class LbcAwsError extends Error {
  constructor(
    readonly action: string,
    readonly awsError: AwsApiError,
  ) {
    super(
      `operation error Elastic Load Balancing v2: ${action}, https response error StatusCode: ${awsError.httpStatus}, RequestID: ${randomUUID()}, api error ${awsError.code}: ${awsError.message}`,
    );
    this.name = 'LbcAwsError';
  }

  get code(): string {
    return this.awsError.code;
  }
}

export type ReconcileResult = { requeueAfterSeconds?: number } | void;

/**
 * A keyed work queue like controller-runtime's: `enqueue(key, delay)` coalesces (the earliest due time wins), one
 * reconcile per key at a time (a trigger during a run reruns it afterwards), failures requeue with exponential
 * backoff (5 ms doubling up to 1000 s, simulated), successes may ask for a requeue. At most `timings.lbcWorkers`
 * reconciles run at once (LBC's max-concurrent-reconciles, 3); due keys wait in FIFO order for a worker.
 */
export class WorkQueue {
  private readonly due = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  /** Due keys waiting for a free worker, in arrival order. */
  private readonly waiting = new Set<string>();
  private stopped = false;
  /** Promises of reconciles in progress (tests and stop() can await them). */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly clock: LabClock,
    private readonly reconcile: (key: string) => Promise<ReconcileResult>,
    private readonly onError: (key: string, err: unknown) => void = () => undefined,
  ) {}

  enqueue(key: string, delaySeconds: number): void {
    if (this.stopped) return;
    const at = Date.now() + this.clock.ms(delaySeconds);
    const cur = this.due.get(key);
    if (cur && cur.at <= at) return;
    if (cur) clearTimeout(cur.timer);
    const timer = setTimeout(() => {
      this.due.delete(key);
      this.run(key);
    }, Math.max(0, at - Date.now()));
    timer.unref();
    this.due.set(key, { at, timer });
  }

  forget(key: string): void {
    this.waiting.delete(key);
    const cur = this.due.get(key);
    if (cur) clearTimeout(cur.timer);
    this.due.delete(key);
    this.failures.delete(key);
  }

  private run(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    const workers = this.clock.timings.lbcWorkers ?? 0;
    if (workers > 0 && this.running.size >= workers) {
      this.waiting.add(key);
      return;
    }
    this.running.add(key);
    const p = (async () => {
      try {
        const r = await this.reconcile(key);
        this.failures.delete(key);
        if (r && r.requeueAfterSeconds !== undefined) this.enqueue(key, r.requeueAfterSeconds);
      } catch (err) {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        this.onError(key, err);
        this.enqueue(key, Math.min(0.005 * 2 ** (n - 1), 1000));
      } finally {
        this.running.delete(key);
        if (this.dirty.delete(key)) this.enqueue(key, 0);
        const next = this.waiting.values().next();
        if (!next.done) {
          this.waiting.delete(next.value);
          this.run(next.value);
        }
      }
    })();
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const d of this.due.values()) clearTimeout(d.timer);
    this.due.clear();
    await Promise.allSettled([...this.inFlight]);
  }
}
