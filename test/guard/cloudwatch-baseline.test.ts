/**
 * CloudWatch's settled minutes before apply are the old version's baseline: the release's periods are judged against
 * them (a release as noisy as the old version passes; a much worse one fails), and minutes with no datapoint are
 * said to be no baseline, not a baseline of zero.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ReadPeriodsOptions } from '../../src/aws/cloudwatch.js';
import { CloudWatchSignal, type CloudWatchBaseline } from '../../src/guard/cloudwatch-signal.js';
import { DEFAULT_POLICY } from '../../src/guard/policy.js';
import type { Measurement } from '../../src/guard/signal.js';
import { waitFor } from '../helpers/wait.js';
import { LB, MIN, TG, period } from './cloudwatch-helpers.js';

const APPLY = 100 * MIN + 20_000;

async function judge(before: Array<{ requests: number; target5xx: number } | undefined>, release: { requests: number; target5xx: number }, elb5xxBefore = 0): Promise<{ m: Measurement; baseline: CloudWatchBaseline | undefined; from: number[] }> {
  const periods = [...before.map((d, i) => ({ ...period(100 * MIN - (before.length - i) * MIN, d), ...(d ? { elb5xx: elb5xxBefore } : {}) })), period(100 * MIN, release)];
  const from: number[] = [];
  let baseline: CloudWatchBaseline | undefined;
  const signal = new CloudWatchSignal({
    reader: {
      readPeriods: async (_t, o: ReadPeriodsOptions) => {
        from.push(o.from);
        return periods.filter((p) => p.start >= o.from).map((p) => ({ ...p }));
      },
    },
    target: { loadBalancerArn: LB, targetGroupArns: [TG] },
    since: APPLY,
    baselineSeconds: 300,
    settleSeconds: 0,
    lateSeconds: 0,
    pollMs: 5,
    thresholds: DEFAULT_POLICY.signals.cloudwatch,
    readerNow: () => 110 * MIN,
    onBaseline: (b) => (baseline = b),
  });
  const out: Measurement[] = [];
  const ac = new AbortController();
  const run = signal.run((m) => out.push(m), ac.signal);
  await waitFor(() => out.length > 0 || undefined, { timeoutMs: 5000, what: 'the first judged period' });
  ac.abort();
  await run;
  assert.equal(out.length, 1, 'the minutes before apply are never judged as the release');
  return { m: out[0]!, baseline, from };
}

describe('CloudWatch judges the release against the minutes before apply', () => {
  test('the old version at 8%: a release at 8% passes, one at 50% fails; the baseline names the target group and its bound', async () => {
    const old = [{ requests: 600, target5xx: 48 }, { requests: 600, target5xx: 50 }, { requests: 600, target5xx: 46 }, { requests: 600, target5xx: 49 }, { requests: 600, target5xx: 47 }];
    const same = await judge(old, { requests: 600, target5xx: 55 });
    assert.deepEqual([...new Set(same.from)], [95 * MIN], 'five whole periods before the period of the apply');
    assert.equal(same.m.verdict, 'success', same.m.evidence);
    assert.match(same.m.evidence, /not above the old version's 8\.0% \(240 of 3000, CloudWatch, 5 of the 5 period\(s\) of 60s before apply with datapoints/);
    assert.match(same.baseline?.text ?? '', /^baseline of the old version: 5 of the 5 period\(s\) of 60s before apply with datapoints — targetgroup\/k8s-demo-web-0a1b2c3d\/73e2d6bc24d8a067: RequestCount 3000, HTTPCode_Target_5XX_Count 240 \+ HTTPCode_ELB_5XX_Count 0; error rate 8\.0% \(95% bounds /);
    assert.equal(same.m.details?.baselineRequests, 3000);
    // The naive rule (above 8% + 2% with more than 5 errors) would have failed a period at 10.5%.
    const noisy = await judge(old, { requests: 600, target5xx: 63 });
    assert.equal(noisy.m.verdict, 'success', noisy.m.evidence);
    const worse = await judge(old, { requests: 600, target5xx: 300 });
    assert.equal(worse.m.verdict, 'failure', worse.m.evidence);
    assert.match(worse.m.evidence, /300 error\(s\) in 600 request\(s\) = 50\.0%: above the old version's 8\.0%/);
  });

  test('no datapoint before apply: said so, judged against the thresholds alone (not a baseline of zero)', async () => {
    const r = await judge([undefined, undefined, undefined, undefined, undefined], { requests: 600, target5xx: 3 });
    assert.equal(r.baseline?.counts, undefined);
    assert.match(r.baseline?.text ?? '', /no baseline datapoints in the 5 period\(s\) of 60s before apply .* judged against the thresholds alone — not measured, not zero/);
    assert.equal(r.m.verdict, 'success');
    assert.match(r.m.evidence, /within 2\.0% \/ 5 error\(s\) \(no baseline datapoints/);
    const partial = await judge([undefined, undefined, undefined, { requests: 100, target5xx: 0 }, undefined], { requests: 600, target5xx: 3 });
    assert.match(partial.baseline?.text ?? '', /1 of the 5 period\(s\) of 60s before apply with datapoints/);
    // A first install: before apply the ALB had no target and answered 503 (its own 5xx, no request to a target group).
    const first = await judge([undefined, undefined, undefined, { requests: 0, target5xx: 0 }, undefined], { requests: 600, target5xx: 3 }, 40);
    assert.equal(first.baseline?.counts, undefined, first.baseline?.text);
    assert.match(first.baseline?.text ?? '', /^no baseline datapoints/);
  });
});
