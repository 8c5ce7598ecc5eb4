import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_POLICY, describeRate, evaluate, exceedsBaseline, judgeWindow, type GuardPolicy, type SignalPolicy } from '../../src/guard/policy.js';
import type { Measurement, SignalKind } from '../../src/guard/signal.js';
import { seededRandom } from '../../src/lab/kubelet/behavior.js';

/** A deterministic PRNG (the lab's mulberry32), so the noise test is reproducible. */
const prng = seededRandom;

const T0 = Date.parse('2026-05-01T10:00:00Z');

function window(i: number, requests: number, errors: number, signal: SignalKind = 'probe', policy: GuardPolicy = DEFAULT_POLICY, source?: string): Measurement {
  const start = T0 + i * 1000;
  const j = judgeWindow({ requests, errors }, policy.signals[signal]);
  return {
    signal,
    ...(source ? { source } : {}),
    at: new Date(start + 1000).toISOString(),
    window: { start: new Date(start).toISOString(), end: new Date(start + 1000).toISOString() },
    value: requests ? errors / requests : 0,
    requests,
    errors,
    verdict: j.verdict,
    evidence: j.reason,
    ...(errors > 0 ? { firstErrorAt: new Date(start + 100).toISOString() } : {}),
  };
}

describe('judgeWindow', () => {
  test('too few requests → inconclusive, whatever the errors', () => {
    const j = judgeWindow({ requests: 3, errors: 3 }, DEFAULT_POLICY.signals.probe);
    assert.equal(j.verdict, 'inconclusive');
    assert.match(j.reason, /3 request\(s\), fewer than the 5 needed/);
  });
  test('one stray error in a window is not a failure (rate above, count not)', () => {
    assert.equal(judgeWindow({ requests: 10, errors: 1 }, DEFAULT_POLICY.signals.probe).verdict, 'success');
  });
  test('both thresholds exceeded → failure; a rate at the limit is not', () => {
    assert.equal(judgeWindow({ requests: 10, errors: 5 }, DEFAULT_POLICY.signals.probe).verdict, 'failure');
    assert.equal(judgeWindow({ requests: 40, errors: 2 }, DEFAULT_POLICY.signals.probe).verdict, 'success'); // 5% is not > 5%
  });
});

/** Binomial(n, p) draws from the seeded PRNG. */
function draw(rand: () => number, n: number, p: number): number {
  let k = 0;
  for (let i = 0; i < n; i++) if (rand() < p) k++;
  return k;
}

describe('judged against the old version (a baseline)', () => {
  const probe = (b: { requests: number; errors: number }): SignalPolicy => ({ ...DEFAULT_POLICY.signals.probe, baseline: { ...b, source: 'test' } });

  test('the release at the old version\'s 8%: over a bake of 600 windows of 20 requests, two failing windows in a row never happen (seeded)', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rand = prng(seed);
      const baseline = { requests: 100, errors: draw(rand, 100, 0.08) };
      const policy: GuardPolicy = { ...DEFAULT_POLICY, signals: { ...DEFAULT_POLICY.signals, probe: probe(baseline) } };
      const history: Measurement[] = [];
      for (let i = 0; i < 600; i++) {
        const m = window(i, 20, draw(rand, 20, 0.08), 'probe', policy);
        history.push(m);
      }
      const d = evaluate(history, policy, T0 + 601_000, { bakeStartedAt: T0 });
      assert.equal(d.verdict, 'pass', `seed ${seed}, baseline ${baseline.errors}/100: ${d.reason}`);
      // The old rule (a window fails above baseline + 5% with more than one error) fails these windows often.
      const old = history.filter((m) => (m.errors ?? 0) / 20 > baseline.errors / 100 + 0.05 && (m.errors ?? 0) > 1).length;
      assert.ok(old > 20, `seed ${seed}: ${old} windows above the naive limit`);
    }
  });

  test('a release at 50% against the old version\'s 8% fails within a few windows (seeded); a release answering only 500 in two', () => {
    const policy: GuardPolicy = { ...DEFAULT_POLICY, signals: { ...DEFAULT_POLICY.signals, probe: probe({ requests: 100, errors: 8 }) } };
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9]) {
      const rand = prng(seed);
      const history: Measurement[] = [];
      while (history.length < 6 && evaluate(history, policy, T0 + history.length * 1000).verdict !== 'fail') history.push(window(history.length, 20, draw(rand, 20, 0.5), 'probe', policy));
      assert.equal(evaluate(history, policy, T0 + history.length * 1000).verdict, 'fail', `seed ${seed}: ${history.map((m) => m.evidence).join('\n')}`);
    }
    const zero: GuardPolicy = { ...DEFAULT_POLICY, signals: { ...DEFAULT_POLICY.signals, probe: probe({ requests: 100, errors: 0 }) } };
    assert.equal(evaluate([window(0, 10, 10, 'probe', zero), window(1, 10, 10, 'probe', zero)], zero, T0 + 2000).verdict, 'fail');
  });

  test('the reason names the baseline, its bound and the confidence; max-errors still applies', () => {
    const f = judgeWindow({ requests: 20, errors: 12 }, probe({ requests: 100, errors: 8 }));
    assert.equal(f.verdict, 'failure');
    assert.match(f.reason, /12 error\(s\) in 20 request\(s\) = 60\.0%: above the old version's 8\.0% \(8 of 100, test; at most 1[34]\.\d% at 95%\) \+ 5\.0% \(p = /);
    const ok = judgeWindow({ requests: 20, errors: 3 }, probe({ requests: 100, errors: 8 }));
    assert.equal(ok.verdict, 'success');
    assert.match(ok.reason, /not above the old version's 8\.0% .* with 95% confidence/);
    assert.equal(judgeWindow({ requests: 5, errors: 1 }, { ...probe({ requests: 100, errors: 0 }), minRequests: 1 }).verdict, 'success', 'one error is within max-errors 1');
  });

  test('a baseline from few requests gives the release the benefit of the doubt (a wider bound, a higher limit)', () => {
    const few = exceedsBaseline({ requests: 20, errors: 6 }, { requests: 20, errors: 2 }, 0.05);
    const many = exceedsBaseline({ requests: 20, errors: 6 }, { requests: 2000, errors: 200 }, 0.05);
    assert.ok(few.limit > many.limit);
    assert.equal(few.exceeds, false);
    assert.equal(exceedsBaseline({ requests: 0, errors: 0 }, { requests: 100, errors: 0 }, 0.05).exceeds, false);
    assert.match(describeRate({ requests: 100, errors: 8 }), /^8\.0% \(95% bounds 4\.\d%–1[34]\.\d% from 100 request\(s\)\)$/);
    assert.equal(describeRate({ requests: 0, errors: 0 }), 'no requests: rate unknown');
  });
});

describe('evaluate', () => {
  test('0.1 % noise at 10 requests/s never rolls back (100,000 windows, about 28 hours)', () => {
    const rand = prng(42);
    const history: Measurement[] = [];
    let totalErrors = 0;
    for (let i = 0; i < 100_000; i++) {
      let errors = 0;
      for (let r = 0; r < 10; r++) if (rand() < 0.001) errors++;
      totalErrors += errors;
      history.push(window(i, 10, errors));
    }
    assert.ok(totalErrors > 500, `the noise is there (${totalErrors} errors)`);
    const d = evaluate(history, DEFAULT_POLICY, T0 + 200_000_000);
    assert.equal(d.verdict, 'pending', d.reason);
  });

  test('a sustained 50 % failure fails in the second window, naming the signal and the first error', () => {
    const history = [window(0, 10, 0), window(1, 10, 5)];
    assert.equal(evaluate(history, DEFAULT_POLICY, T0 + 2000).verdict, 'pending');
    history.push(window(2, 10, 5));
    const d = evaluate(history, DEFAULT_POLICY, T0 + 3000);
    assert.equal(d.verdict, 'fail');
    assert.equal(d.decidingSignal, 'probe');
    assert.equal(d.decidingKind, 'probe');
    assert.equal(d.firstErrorAt, new Date(T0 + 1000 + 100).toISOString());
    assert.equal(d.failingWindows?.length, 2);
    assert.match(d.reason, /probe: 2 failing window\(s\) in a row/);
  });

  test('too few requests everywhere → pending, never fail; inconclusive windows do not reset a streak, successes do', () => {
    assert.equal(evaluate([window(0, 2, 2), window(1, 3, 3), window(2, 1, 1)], DEFAULT_POLICY, T0 + 5000).verdict, 'pending');
    assert.equal(evaluate([window(0, 10, 5), window(1, 2, 2), window(2, 10, 5)], DEFAULT_POLICY, T0 + 5000).verdict, 'fail');
    assert.equal(evaluate([window(0, 10, 5), window(1, 10, 0), window(2, 10, 5)], DEFAULT_POLICY, T0 + 5000).verdict, 'pending');
  });

  test('order of the history does not matter (sorted by window per signal instance)', () => {
    const d = evaluate([window(2, 10, 5), window(0, 10, 0), window(1, 10, 5)], DEFAULT_POLICY, T0 + 5000);
    assert.equal(d.verdict, 'fail');
  });

  test('a signal that may not decide is reported in notes only', () => {
    const policy: GuardPolicy = { ...DEFAULT_POLICY, signals: { ...DEFAULT_POLICY.signals, probe: { ...DEFAULT_POLICY.signals.probe, decides: false } } };
    const d = evaluate([window(0, 10, 5, 'probe', policy), window(1, 10, 5, 'probe', policy)], policy, T0 + 5000);
    assert.equal(d.verdict, 'pending');
    assert.match(d.notes.join('\n'), /probe failed 2 window\(s\) in a row but may not decide/);
  });

  test('two probe instances are judged separately; the earliest streak decides', () => {
    const a = [window(0, 10, 5, 'probe', DEFAULT_POLICY, 'probe a'), window(2, 10, 5, 'probe', DEFAULT_POLICY, 'probe a')];
    const b = [window(1, 10, 5, 'probe', DEFAULT_POLICY, 'probe b'), window(3, 10, 0, 'probe', DEFAULT_POLICY, 'probe b')];
    // Interleaved, neither instance alone has 2 in a row until a's second window.
    const d = evaluate([...a, ...b], DEFAULT_POLICY, T0 + 5000);
    assert.equal(d.verdict, 'fail');
    assert.equal(d.decidingSignal, 'probe a');
  });

  test('error measurements (could not measure) never decide and are noted', () => {
    const err: Measurement = { ...window(0, 0, 0, 'cloudwatch'), verdict: 'error', evidence: 'GetMetricData failed: boom' };
    const d = evaluate([err, { ...err, window: window(1, 0, 0).window }], DEFAULT_POLICY, T0 + 5000);
    assert.equal(d.verdict, 'pending');
    assert.match(d.notes.join('\n'), /cloudwatch could not measure: GetMetricData failed: boom/);
  });

  test('bake window: pending while baking, pass after bakeSeconds, fail still wins', () => {
    const quiet = [window(0, 10, 0), window(1, 10, 0), window(2, 10, 0)];
    const bakeStartedAt = T0 + 1000;
    const during = evaluate(quiet, DEFAULT_POLICY, bakeStartedAt + 60_000, { bakeStartedAt });
    assert.equal(during.verdict, 'pending');
    assert.match(during.reason, /baking, 60s left/);
    const after = evaluate(quiet, DEFAULT_POLICY, bakeStartedAt + 120_000, { bakeStartedAt });
    assert.equal(after.verdict, 'pass');
    assert.match(after.reason, /measured by probe \(3 judged probe window\(s\)\)/);
    assert.match(after.reason, /probe: 3 window\(s\) \(3 ok/);
    assert.equal(evaluate([...quiet, window(3, 10, 9), window(4, 10, 9)], DEFAULT_POLICY, bakeStartedAt + 120_000, { bakeStartedAt }).verdict, 'fail');
  });

  test('nothing measured is never pass: after the bake and the grace period the verdict is inconclusive, naming what is missing', () => {
    const bakeStartedAt = T0 + 1000;
    const bakeEnd = bakeStartedAt + DEFAULT_POLICY.bakeSeconds * 1000;
    // 124 probe windows that could not measure (DNS), two too-thin windows, one CloudWatch period without traffic.
    const blind: Measurement[] = [];
    for (let i = 0; i < 124; i++) blind.push({ ...window(i, 0, 0), verdict: 'error', evidence: '10 request(s) could not be sent (ENOTFOUND)' });
    blind.push(window(200, 2, 0), window(201, 3, 0), window(202, 0, 0, 'cloudwatch'));
    const waiting = evaluate(blind, DEFAULT_POLICY, bakeEnd, { bakeStartedAt });
    assert.equal(waiting.verdict, 'pending');
    assert.match(waiting.reason, /bake window over, waiting up to 30s more for enough measurements/);
    const d = evaluate(blind, DEFAULT_POLICY, bakeEnd + DEFAULT_POLICY.measureGraceSeconds * 1000, { bakeStartedAt });
    assert.equal(d.verdict, 'inconclusive', d.reason);
    assert.match(d.reason, /probe: 0 of 3 judged probe window\(s\), cloudwatch: 0 of 1 settled CloudWatch period\(s\) with enough requests, target-health: 0 of 3/);
    assert.deepEqual(d.measured, { probe: 0, cloudwatch: 0, 'target-health': 0 });
    // Any one signal reaching its minimum is enough.
    const health = [0, 1, 2].map((i): Measurement => ({ ...window(300 + i, 0, 0, 'target-health'), verdict: 'success', evidence: '2 new target(s), none unhealthy' }));
    assert.equal(evaluate([...blind, ...health], DEFAULT_POLICY, bakeEnd, { bakeStartedAt }).verdict, 'pass');
    const strict = { ...DEFAULT_POLICY, minMeasured: { ...DEFAULT_POLICY.minMeasured, targetHealthChecks: 4 } };
    assert.equal(evaluate([...blind, ...health], strict, bakeEnd + 60_000, { bakeStartedAt }).verdict, 'inconclusive');
  });

  test('target health: one failing observation decides (the signal already required consecutive ones)', () => {
    const m: Measurement = { ...window(0, 0, 0, 'target-health'), verdict: 'failure', value: 1, evidence: '10.0.0.1:8080 unhealthy (Target.ResponseCodeMismatch)' };
    const d = evaluate([m], DEFAULT_POLICY, T0 + 5000);
    assert.equal(d.verdict, 'fail');
    assert.equal(d.decidingKind, 'target-health');
  });
});
