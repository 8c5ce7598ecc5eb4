/**
 * The guard's signals: things that measure whether the new version is hurting users (a synthetic probe,
 * CloudWatch ALB metrics, target health). A signal runs until its bound or an abort and emits one
 * `Measurement` per window; the policy (policy.ts) decides from the history, the guard (guard.ts) acts.
 *
 * Shape chosen to be small and testable: `run(emit, signal)` is one async function; the caller owns the
 * history. Signals run concurrently.
 */

export const SIGNAL_KINDS = ['probe', 'cloudwatch', 'target-health'] as const;
export type SignalKind = (typeof SIGNAL_KINDS)[number];

/**
 * success / failure: the window was judged against the thresholds.
 * inconclusive: not enough data to judge (too few requests, a CloudWatch period not settled yet).
 * error: the signal could not measure (AWS unreachable, DNS failure); never a reason to roll back.
 */
export type MeasurementVerdict = 'success' | 'failure' | 'inconclusive' | 'error';

export interface Measurement {
  signal: SignalKind;
  /** The signal instance (e.g. `probe`, `probe http://a.example/health`); defaults to the kind. */
  source?: string;
  /** ISO time the measurement was made. */
  at: string;
  /** The time range the values cover (ISO; start inclusive, end exclusive). */
  window: { start: string; end: string };
  /** The measured quantity: an error rate (0..1) for probe and CloudWatch, unhealthy new targets for target health. */
  value: number;
  requests?: number;
  errors?: number;
  verdict: MeasurementVerdict;
  /** One line a person can read: what was seen. */
  evidence: string;
  /** ISO time of the first error inside the window, when known. */
  firstErrorAt?: string;
  details?: Record<string, string | number>;
}

export type Emit = (m: Measurement) => void;

export interface Signal {
  readonly name: string;
  readonly kind: SignalKind;
  /**
   * Measures until `signal` aborts or the signal's own bound is reached, calling `emit` for each window.
   * Resolves when done (after the last emit); must not reject for measurement problems (emit an `error`
   * measurement instead). Rejects only for programming errors.
   */
  run(emit: Emit, signal: AbortSignal): Promise<void>;
}

/** Counts of one window, the input of the threshold judgement. */
export interface WindowCounts {
  requests: number;
  errors: number;
}

export function sourceOf(m: Measurement): string {
  return m.source ?? m.signal;
}

/** Error rate of a window; 0 when there were no requests. */
export function errorRate(c: WindowCounts): number {
  return c.requests > 0 ? c.errors / c.requests : 0;
}

export function percent(rate: number): string {
  return `${(rate * 100).toFixed(rate > 0 && rate < 0.001 ? 3 : 1)}%`;
}

/**
 * Promise-based sleep that ends early on abort (resolves, never rejects). The timer is not unref'd: a running
 * signal is awaited work and must keep the process alive; abort clears it.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
