import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchSpread } from '../../src/plan/tail.js';

describe('batchSpread', () => {
  it('one pod is its own mean', () => {
    const b = batchSpread(1, 15);
    assert.equal(b.slowestSeconds, 0);
    assert.equal(b.nthSeconds(1), 0);
  });

  it('the slowest of n grows with n, ever more slowly', () => {
    const s = [1, 2, 4, 12, 25, 50].map((n) => batchSpread(n, 15).slowestSeconds);
    for (let i = 1; i < s.length; i++) assert.ok(s[i]! > s[i - 1]!, `n #${i}: ${s.join(', ')}`);
    assert.ok(s[3]! > 12 && s[3]! < 16, `slowest of 12: ${s[3]}`);
    assert.ok(s[5]! < 25, `slowest of 50: ${s[5]}`);
  });

  it('order statistics: increasing in j, and averaging to the mean', () => {
    for (const n of [2, 5, 12]) {
      const b = batchSpread(n, 15);
      const xs = Array.from({ length: n }, (_, i) => b.nthSeconds(i + 1));
      for (let i = 1; i < n; i++) assert.ok(xs[i]! > xs[i - 1]!, `n ${n}: ${xs.join(', ')}`);
      assert.ok(Math.abs(xs.reduce((a, x) => a + x, 0)) < 0.05 * n, `n ${n}: Σ (X(j) − mean) = ${xs.reduce((a, x) => a + x, 0)}`);
      assert.equal(b.nthSeconds(n), b.slowestSeconds);
    }
  });

  it('a longer health-check interval spreads more; no target group, only the pod start spreads', () => {
    assert.ok(batchSpread(12, 30).slowestSeconds > batchSpread(12, 5).slowestSeconds);
    const start = batchSpread(12).slowestSeconds;
    assert.ok(start > 0 && start < batchSpread(12, 5).slowestSeconds, `start only: ${start}`);
  });

  it('the last old target off the ALB: later than the slowest new pod, and earlier with pods going first', () => {
    const b = batchSpread(12, 15);
    assert.ok(b.lastDrainSeconds(0) > b.slowestSeconds, `${b.lastDrainSeconds(0)} vs ${b.slowestSeconds}`);
    assert.ok(b.lastDrainSeconds(0) - b.slowestSeconds < 5, 'the pods\' spread dominates the deregistrations\'');
    assert.ok(b.lastDrainSeconds(3) < b.lastDrainSeconds(0));
    assert.ok(b.lastDrainSeconds(3) > b.nthSeconds(9), 'the 9th new pod, plus the spread of 9 deregistrations');
    assert.ok(b.lastDrainSeconds(12) < 0 && b.lastDrainSeconds(12) === b.lastDrainSeconds(20), 'all going first: at the batch start');
  });
});
