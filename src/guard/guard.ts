import { evaluate, type Decision, type GuardPolicy } from './policy.js';
import type { Measurement, Signal } from './signal.js';

/**
 * The guard runner: starts the signals (concurrently), evaluates the policy on every new measurement, and calls
 * `onFailure` once — at the first `fail` decision (the run rolls back at most once). Signals keep measuring after
 * a failure unless `stopOnFailure`, so that the report shows the recovery after the rollback.
 *
 * Life cycle, as the deploy runner uses it: `start()` when the workloads are applied (phase 4), `startBake()` when
 * the rollout is complete (phase 5), `await done` (fail, pass, or inconclusive when the bake passed without enough
 * measurements), `await stop()`.
 * Time and timers are injected (no globals).
 */

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers. Not unref'd: someone awaiting `done` needs the bake timer to keep the process alive; `stop()` clears it. */
export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface GuardDeps {
  now: () => number;
  timers: Timers;
  /** Called once, at the first `fail` decision. Errors it throws are recorded, not rethrown. */
  onFailure: (decision: Decision) => void | Promise<void>;
  /** Every measurement with the decision it led to (logs, timeline). */
  onMeasurement?: (m: Measurement, decision: Decision) => void;
  /** Abort the signals at the first failure (default false: keep measuring through the rollback). */
  stopOnFailure?: boolean;
}

export class Guard {
  private readonly measurements: Measurement[] = [];
  private readonly abort = new AbortController();
  private runs: Promise<void>[] = [];
  private started = false;
  private bakeStartedAt: number | undefined;
  private bakeTimer: unknown;
  private current: Decision = { verdict: 'pending', reason: 'not started', notes: [] };
  private final: Decision | undefined;
  private failureHandled: Promise<void> | undefined;
  private resolveDone!: (d: Decision) => void;
  /** Resolves with the first `fail`, the `pass`/`inconclusive` at the end of the bake window, or the decision at `stop()`. */
  readonly done: Promise<Decision>;
  /** Signal errors that were not measurements (programming errors) and onFailure errors. */
  readonly problems: string[] = [];

  constructor(
    readonly signals: Signal[],
    readonly policy: GuardPolicy,
    private readonly deps: GuardDeps,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.current = { verdict: 'pending', reason: 'no measurements yet', notes: [] };
    this.runs = this.signals.map((s) =>
      s.run((m) => this.record(m), this.abort.signal).catch((err: unknown) => {
        this.problems.push(`signal ${s.name} stopped: ${(err as Error).message}`);
      }),
    );
  }

  /** The rollout is complete: the bake window starts now; `done` resolves with `pass` when it ends quietly. */
  startBake(): void {
    if (this.bakeStartedAt !== undefined || this.final) return;
    this.bakeStartedAt = this.deps.now();
    this.bakeTimer = this.deps.timers.setTimeout(() => {
      // Not measured enough yet: the policy waits up to the grace period for more measurements, then says inconclusive.
      if (this.reevaluate().verdict === 'pending') this.bakeTimer = this.deps.timers.setTimeout(() => this.reevaluate(), this.policy.measureGraceSeconds * 1000);
    }, this.policy.bakeSeconds * 1000);
    this.reevaluate();
  }

  get bakeStart(): number | undefined {
    return this.bakeStartedAt;
  }

  history(): Measurement[] {
    return [...this.measurements];
  }

  decision(): Decision {
    return this.final ?? this.current;
  }

  /** Stops the signals, waits for them (and for onFailure), and returns the final decision. */
  async stop(): Promise<Decision> {
    this.abort.abort();
    if (this.bakeTimer !== undefined) this.deps.timers.clearTimeout(this.bakeTimer);
    await Promise.all(this.runs);
    if (this.failureHandled) await this.failureHandled;
    if (!this.final) {
      this.current = evaluate(this.measurements, this.policy, this.deps.now(), this.ctx());
      this.settle(this.current);
    }
    return this.final ?? this.current;
  }

  private ctx(): { bakeStartedAt?: number } {
    return this.bakeStartedAt !== undefined ? { bakeStartedAt: this.bakeStartedAt } : {};
  }

  private record(m: Measurement): void {
    this.measurements.push(m);
    const d = this.reevaluate();
    this.deps.onMeasurement?.(m, d);
  }

  private reevaluate(): Decision {
    if (this.final) return this.final;
    const d = evaluate(this.measurements, this.policy, this.deps.now(), this.ctx());
    this.current = d;
    if (d.verdict === 'fail') {
      this.settle(d);
      if (this.deps.stopOnFailure) this.abort.abort();
      this.failureHandled = (async () => {
        try {
          await this.deps.onFailure(d);
        } catch (err) {
          this.problems.push(`rollback after the guard's decision failed: ${(err as Error).message}`);
        }
      })();
    } else if (d.verdict === 'pass' || d.verdict === 'inconclusive') {
      this.settle(d);
    }
    return d;
  }

  private settle(d: Decision): void {
    if (this.final) return;
    this.final = d;
    if (this.bakeTimer !== undefined) this.deps.timers.clearTimeout(this.bakeTimer);
    this.resolveDone(d);
  }
}
