import { randomUUID } from 'node:crypto';
import type { JsonObject, JsonValue } from '../../manifests/types.js';
import { AwsApiError, THROTTLING_CODES } from '../alb/errors.js';
import type { AwsAccount, Elbv2Action, Elbv2Input, Elbv2Output } from '../aws/account.js';
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
