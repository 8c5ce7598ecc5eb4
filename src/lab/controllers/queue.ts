/**
 * A keyed work queue, like client-go's: a key is processed at most once per turn however many events
 * named it, handlers never run inside a store watch callback (so writes are never re-entrant), delayed
 * re-syncs are timers in simulated seconds, and failures are retried with a bounded backoff.
 */
import type { LabClock } from '../timing.js';

export type SyncHandler = (key: string) => void;

export class WorkQueue {
  private readonly dirty = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private scheduled: NodeJS.Immediate | undefined;
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly clock: LabClock,
    private readonly handler: SyncHandler,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    this.dirty.add(key);
    if (!this.scheduled) {
      // Not unref'd: an unref'd immediate only runs when something else wakes the event loop.
      this.scheduled = setImmediate(() => this.drain());
    }
  }

  /** Re-sync after a delay in simulated seconds; an earlier pending delay for the key wins. */
  addAfter(key: string, simulatedSeconds: number): void {
    if (this.stopped) return;
    if (simulatedSeconds <= 0) return this.add(key);
    const at = Date.now() + this.clock.ms(simulatedSeconds);
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = this.clock.after(simulatedSeconds, () => {
      this.delayed.delete(key);
      this.add(key);
    });
    this.delayed.set(key, { at, timer });
  }

  /** Re-sync after a real delay in milliseconds (backoff, which is not part of the simulation). */
  private addAfterRealMs(key: string, ms: number): void {
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.delayed.set(key, { at: Date.now() + ms, timer });
  }

  private drain(): void {
    this.scheduled = undefined;
    const keys = [...this.dirty];
    this.dirty.clear();
    for (const key of keys) {
      if (this.stopped) return;
      try {
        this.handler(key);
        this.failures.delete(key);
      } catch (err) {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        const backoff = Math.min(1000, 5 * 2 ** n);
        this.log(`${this.name}: sync ${key} failed (attempt ${n}, retry in ${backoff} ms): ${(err as Error).message}`);
        this.addAfterRealMs(key, backoff);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.delayed.clear();
    this.dirty.clear();
  }
}
