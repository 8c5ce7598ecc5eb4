/**
 * CloudWatch publishes an ALB period's datapoints 1–3 minutes after it ends: a period that is settled but has no
 * datapoint yet is re-read until its data can no longer come, and only then is it "no data points" (not
 * measured) — never zero errors, and a late 5xx is still judged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AlbPeriod } from '../../src/aws/cloudwatch.js';
import { CLOUDWATCH_LATE_SECONDS, CloudWatchSignal, type PeriodReader } from '../../src/guard/cloudwatch-signal.js';
import { DEFAULT_POLICY } from '../../src/guard/policy.js';
import type { Measurement } from '../../src/guard/signal.js';
import { waitFor } from '../helpers/wait.js';
import { LB, MIN, TG, period } from './cloudwatch-helpers.js';

/** A reader whose answers the test scripts, on a clock the test moves. */
function scripted(): { reader: PeriodReader; now: { ms: number }; periods: AlbPeriod[]; reads: { n: number } } {
  const state = { reader: undefined as unknown as PeriodReader, now: { ms: 10 * MIN }, periods: [] as AlbPeriod[], reads: { n: 0 } };
  state.reader = {
    readPeriods: async () => {
      state.reads.n++;
      return state.periods.map((p) => ({ ...p }));
    },
  };
  return state;
}

async function running(s: ReturnType<typeof scripted>, fn: (out: Measurement[], afterReads: (n: number) => Promise<void>) => Promise<void>): Promise<void> {
  const signal = new CloudWatchSignal({
    reader: s.reader,
    target: { loadBalancerArn: LB, targetGroupArns: [TG] },
    since: 0,
    settleSeconds: 120,
    pollMs: 5,
    thresholds: DEFAULT_POLICY.signals.cloudwatch,
    readerNow: () => s.now.ms,
  });
  const out: Measurement[] = [];
  const ac = new AbortController();
  const run = signal.run((m) => out.push(m), ac.signal);
  const afterReads = async (n: number): Promise<void> => {
    const target = s.reads.n + n;
    await waitFor(() => s.reads.n >= target || undefined, { timeoutMs: 5000, what: `${n} more reads` });
  };
  try {
    await fn(out, afterReads);
  } finally {
    ac.abort();
    await run;
  }
}

describe('CloudWatch: late datapoints', () => {
  test('a settled period without datapoints is re-read; its 5xx, published 170 s after it ended, is judged a failure', async () => {
    const s = scripted();
    const start = 7 * MIN; // ended at 8 min; now 10 min: settled (120 s), but data may come until 11 min
    s.periods = [period(start)];
    await running(s, async (out, afterReads) => {
      await afterReads(3);
      assert.equal(out.length, 0, 'an empty period is not judged while its datapoints can still come');
      s.now.ms = start + MIN + 170_000;
      s.periods = [period(start, { requests: 400, target5xx: 60 })];
      await waitFor(() => out.length > 0 || undefined, { timeoutMs: 5000, what: 'the late period judged' });
      await afterReads(3);
      assert.equal(out.length, 1, 'judged once');
      assert.equal(out[0]!.verdict, 'failure', out[0]!.evidence);
      assert.equal(out[0]!.errors, 60);
    });
  });

  test(`a period still empty ${CLOUDWATCH_LATE_SECONDS} s after it ended is "no data points": inconclusive, not measured, not zero errors`, async () => {
    const s = scripted();
    const start = 7 * MIN;
    s.periods = [period(start)];
    await running(s, async (out, afterReads) => {
      await afterReads(2);
      assert.equal(out.length, 0);
      s.now.ms = start + MIN + CLOUDWATCH_LATE_SECONDS * 1000;
      await waitFor(() => out.length > 0 || undefined, { timeoutMs: 5000, what: 'the empty period emitted' });
      await afterReads(2);
      assert.equal(out.length, 1);
      assert.equal(out[0]!.verdict, 'inconclusive');
      assert.equal(out[0]!.requests, 0);
      assert.match(out[0]!.evidence, /no data points 180s after the period ended .*not measured/);
    });
  });

  test('a settled period with datapoints is judged at once (settle, not the late horizon)', async () => {
    const s = scripted();
    const start = 7 * MIN;
    s.periods = [period(start, { requests: 300, target5xx: 0 })];
    await running(s, async (out) => {
      await waitFor(() => out.length > 0 || undefined, { timeoutMs: 5000, what: 'judged' });
      assert.equal(out[0]!.verdict, 'success', out[0]!.evidence);
    });
  });
});
