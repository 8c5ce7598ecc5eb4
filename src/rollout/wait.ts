import type { CheckResult } from '../plan/checks/result.js';
import type { Logger } from '../report/log.js';

/**
 * Waits until `check` says done, re-checking whenever a trigger fires (informer changes, AWS answers) and at
 * least every `recheckMs`. Fails with the last status message when the deadline passes or `check` says failed.
 */
export type { CheckResult } from '../plan/checks/result.js';

export class WaitFailed extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
  ) {
    super(message);
    this.name = 'WaitFailed';
  }
}

export interface WaitOptions {
  what: string;
  deadlineMs: number;
  recheckMs: number;
  log: Logger;
  now: () => number;
  /** Subscribes to "something changed" signals; returns an unsubscribe function. */
  subscribe: (onChange: () => void) => () => void;
  /** e.g. "estimate 45s" */
  expectation?: string;
  /** What to do when the deadline passes (after the check's own hint). */
  hint?: string;
}

export async function waitUntil(check: () => Promise<CheckResult> | CheckResult, o: WaitOptions): Promise<CheckResult> {
  const started = o.now();
  let wake: (() => void) | undefined;
  let dirty = true;
  const unsubscribe = o.subscribe(() => {
    dirty = true;
    wake?.();
  });
  try {
    for (;;) {
      dirty = false;
      const r = await check();
      const elapsed = Math.round((o.now() - started) / 1000);
      if (r.done) return r;
      if (r.failed) throw new WaitFailed(`${o.what}: ${r.detail ?? r.message}`, false);
      if (o.now() - started > o.deadlineMs) {
        const hints = [r.hint, o.hint].filter((h): h is string => Boolean(h));
        throw new WaitFailed(
          `${o.what}: expected to be done within ${Math.round(o.deadlineMs / 1000)}s, but after ${elapsed}s still waiting for: ${r.detail ?? r.message}` +
            (hints.length > 0 ? `\n${hints.join('\n')}` : ''),
          true,
        );
      }
      o.log.progress(`${o.what} (${elapsed}s${o.expectation ? `, ${o.expectation}` : ''}): ${r.message}`);
      if (!dirty) {
        const remaining = o.deadlineMs - (o.now() - started);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(5, Math.min(o.recheckMs, remaining + 5)));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  } finally {
    unsubscribe();
  }
}
