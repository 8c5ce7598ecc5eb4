import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { parseDuration, parseGuardOptions, parseRate } from '../../src/guard/options.js';
import { DEFAULT_POLICY } from '../../src/guard/policy.js';

describe('parseGuardOptions', () => {
  test('defaults: every signal on and deciding, the default policy, bounded probe', () => {
    const o = parseGuardOptions({});
    assert.equal(o.enabled, true);
    // The grace after the bake: what the quickest signal needs for its minimum (3 probe windows of 1 s), × 1.5.
    assert.deepEqual(o.policy, { ...DEFAULT_POLICY, measureGraceSeconds: 4.5 });
    assert.deepEqual(o.probe, { mode: 'on', required: false, urls: [], ratePerSecond: 10, requestTimeoutMs: 2000, windowMs: 1000, maxRequests: 9000, maxDurationMs: 900_000, headers: {}, insecure: false, baselineRequests: 200, baselineMaxMs: 30_000 });
    assert.deepEqual(o.cloudwatch, { mode: 'on', elb5xx: 'auto', periodSeconds: 60, settleSeconds: 120, baselineSeconds: 300 });
    assert.equal(o.onInconclusive, 'fail');
    assert.deepEqual(o.targetHealth, { mode: 'on', intervalMs: 5000, consecutiveUnhealthy: 2 });
  });

  test('measurement minimums, on-inconclusive, probe require, cloudwatch-elb-5xx; bad values name the flag and the fix', () => {
    const o = parseGuardOptions({ probe: 'require', 'min-probe-windows': '10', 'min-cloudwatch-periods': '2', 'min-target-health-checks': '5', 'measure-grace': '1m', 'on-inconclusive': 'pass', 'cloudwatch-elb-5xx': 'off' });
    assert.deepEqual({ mode: o.probe.mode, required: o.probe.required }, { mode: 'on', required: true });
    assert.deepEqual(o.policy.minMeasured, { probeWindows: 10, cloudwatchPeriods: 2, targetHealthChecks: 5 });
    assert.equal(o.policy.measureGraceSeconds, 60);
    assert.equal(o.onInconclusive, 'pass');
    assert.equal(o.cloudwatch.elb5xx, 'off');
    assert.throws(
      () => parseGuardOptions({ 'on-inconclusive': 'maybe', 'min-probe-windows': '0', 'cloudwatch-elb-5xx': 'sometimes' }),
      (e: unknown) =>
        e instanceof InputError &&
        /on-inconclusive "maybe" is not one of fail, pass/.test(e.message) &&
        /min-probe-windows "0" is not a whole number between 1 and/.test(e.message) &&
        /cloudwatch-elb-5xx "sometimes" is not one of auto, on, off/.test(e.message),
    );
    assert.throws(() => parseGuardOptions({ confidence: '30%', 'probe-baseline-requests': '0' }), (e: unknown) => e instanceof InputError && /confidence 0\.3 is not between 50% and 100%/.test(e.message) && /probe-baseline-requests "0" is not a whole number/.test(e.message));
  });

  test('flags as both edges deliver them', () => {
    const o = parseGuardOptions({
      bake: '5m',
      'probe-url': ['https://app.example.com/healthz, http://127.0.0.1:8080/'],
      'probe-rate': '20',
      'probe-timeout': '500ms',
      'probe-header': ['Host: app.example.com', 'X-Probe: 1'],
      'max-error-rate': '10%',
      'max-errors': '0',
      'consecutive-failures': '3',
      cloudwatch: 'report',
      'cloudwatch-period': '120',
      'cloudwatch-settle': '0',
      'cloudwatch-max-error-rate': '0.01',
      'target-health': false,
      'version-header': 'x-app-version',
      'probe-insecure': 'true',
      'probe-baseline-requests': '400',
      'probe-baseline-max-duration': '1m',
      confidence: '99%',
      'cloudwatch-baseline': '10m',
    });
    assert.deepEqual([o.probe.baselineRequests, o.probe.baselineMaxMs, o.cloudwatch.baselineSeconds], [400, 60_000, 600]);
    assert.equal(o.policy.signals.cloudwatch.confidence, 0.99);
    assert.equal(o.policy.bakeSeconds, 300);
    assert.deepEqual(o.probe.urls, ['https://app.example.com/healthz', 'http://127.0.0.1:8080/']);
    assert.equal(o.probe.requestTimeoutMs, 500);
    assert.deepEqual(o.probe.headers, { host: 'app.example.com', 'x-probe': '1' });
    assert.equal(o.probe.versionHeader, 'x-app-version');
    assert.equal(o.probe.insecure, true);
    assert.deepEqual(o.policy.signals.probe, { decides: true, maxErrorRate: 0.1, maxErrors: 0, minRequests: 5, consecutiveFailures: 3, confidence: 0.99 });
    assert.equal(o.policy.signals.cloudwatch.decides, false, 'report = measured, never decides');
    assert.equal(o.policy.signals.cloudwatch.maxErrorRate, 0.01);
    assert.equal(o.cloudwatch.periodSeconds, 120);
    assert.equal(o.cloudwatch.settleSeconds, 0);
    assert.equal(o.targetHealth.mode, 'off');
    assert.equal(o.policy.signals['target-health'].decides, false);
  });

  test('every problem at once, each with a fix', () => {
    let err: unknown;
    try {
      parseGuardOptions({ bake: 'soon', 'probe-url': 'ftp://x', 'max-error-rate': '150%', 'cloudwatch-period': '90', 'probe-header': 'no colon', 'probe-rate': '0', cloudwatch: 'maybe', 'probe-typo': '1' });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof InputError);
    const messages = err.problems.map((p) => p.message).join('\n');
    for (const expected of [/unknown guard option "probe-typo"/, /bake "soon" is not a duration/, /probe-url "ftp:\/\/x"/, /max-error-rate "150%"/, /cloudwatch-period 90 is not a multiple of 60/, /probe-header "no colon"/, /probe-rate "0"/, /cloudwatch "maybe"/]) {
      assert.match(messages, expected);
    }
    assert.ok(err.problems.every((p) => p.fix.length > 0));
  });

  test('a window too small for min-requests is refused (every window would be inconclusive)', () => {
    assert.throws(() => parseGuardOptions({ 'probe-rate': '2', 'probe-window': '1s' }), /fewer than min-requests 5/);
    assert.doesNotThrow(() => parseGuardOptions({ 'probe-rate': '2', 'probe-window': '3s' }));
    assert.doesNotThrow(() => parseGuardOptions({ 'probe-rate': '2', probe: 'off' }));
  });
});

describe('durations and rates', () => {
  test('durations', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('2s'), 2000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1h'), 3600_000);
    assert.equal(parseDuration('45'), 45_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration(''), undefined);
    assert.equal(parseDuration('5 minutes'), undefined);
    assert.equal(parseDuration('-1s'), undefined);
  });
  test('rates', () => {
    assert.equal(parseRate('5%'), 0.05);
    assert.equal(parseRate('0.5 %'), 0.005);
    assert.equal(parseRate('0.05'), 0.05);
    assert.equal(parseRate('five'), undefined);
  });
});
