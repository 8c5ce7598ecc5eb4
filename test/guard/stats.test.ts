import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lowerBound, lowerTail, upperBound, upperTail } from '../../src/guard/stats.js';

describe('binomial tails and confidence bounds', () => {
  test('tails match exact sums on small cases and add up to one', () => {
    // P(X ≥ 2) for Binomial(3, 0.5) = (3 + 1) / 8
    assert.ok(Math.abs(upperTail(2, 3, 0.5) - 0.5) < 1e-12);
    assert.ok(Math.abs(upperTail(5, 5, 0.1) - 1e-5) < 1e-15);
    assert.equal(upperTail(0, 5, 0.1), 1);
    assert.equal(upperTail(6, 5, 0.1), 0);
    for (const [n, p] of [[20, 0.08], [180, 0.115], [1000, 0.5]] as const) {
      for (const k of [0, 1, Math.floor(n * p), Math.ceil(n * p) + 3, n]) {
        assert.ok(Math.abs(upperTail(k + 1, n, p) + lowerTail(k, n, p) - 1) < 1e-9, `n ${n} p ${p} k ${k}`);
      }
    }
  });

  test('large counts (a busy ALB minute) stay exact where it matters and cheap', () => {
    const started = performance.now();
    assert.ok(upperTail(1200, 1_000_000, 0.001) < 1e-8);
    assert.ok(upperTail(1000, 1_000_000, 0.001) > 0.45);
    assert.ok(performance.now() - started < 1000);
  });

  test('Clopper–Pearson bounds: 0 of 100 at 95% is 1 − 0.05^(1/100); the bounds bracket the rate and narrow with more requests', () => {
    assert.ok(Math.abs(upperBound(0, 100, 0.95) - (1 - 0.05 ** (1 / 100))) < 1e-9);
    assert.equal(upperBound(0, 0, 0.95), 1, 'nothing measured: nothing known');
    assert.equal(lowerBound(0, 100, 0.95), 0);
    const wide = [lowerBound(2, 20, 0.95), upperBound(2, 20, 0.95)];
    const narrow = [lowerBound(80, 1000, 0.95), upperBound(80, 1000, 0.95)];
    assert.ok(wide[0]! < 0.1 && 0.1 < wide[1]!);
    assert.ok(narrow[0]! < 0.08 && 0.08 < narrow[1]!);
    assert.ok(narrow[1]! - narrow[0]! < (wide[1]! - wide[0]!) / 4);
    // At the bound, seeing this few errors is exactly the 5% tail.
    assert.ok(Math.abs(lowerTail(8, 100, upperBound(8, 100, 0.95)) - 0.05) < 1e-6);
  });
});
