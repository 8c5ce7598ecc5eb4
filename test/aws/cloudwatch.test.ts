/**
 * The CloudWatch reader and signal with the real @aws-sdk/client-cloudwatch (awsJson1_0) against the lab's
 * CloudWatch server: dimensions, period alignment, missing points, settling, throttling, unreachable endpoint.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { alignWindow, CloudWatchReader, loadBalancerDimension, targetGroupDimension, type AlbPeriod } from '../../src/aws/cloudwatch.js';
import { UnreachableError } from '../../src/errors.js';
import { CloudWatchSignal, type PeriodReader } from '../../src/guard/cloudwatch-signal.js';
import { DEFAULT_POLICY } from '../../src/guard/policy.js';
import type { Measurement } from '../../src/guard/signal.js';
import { AlbCloud } from '../../src/lab/alb/index.js';
import { startAwsApis, type AwsApis } from '../../src/lab/aws/index.js';
import { DEFAULT_TIMINGS, LabClock } from '../../src/lab/timing.js';
import { waitFor } from '../helpers/wait.js';
import { LabNetwork } from '../../src/lab/network.js';

/** Where the test pods' virtual addresses lead (the kubelet's job in a lab). */
const network = new LabNetwork();

const LB = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/k8s-demo-web-0a1b2c3d4e/50dc6c495c0c9188';
const TG1 = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-demo-web-0a1b2c3d/73e2d6bc24d8a067';
const TG2 = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-demo-api-0a1b2c3d/1111111111111111';
const OTHER_LB = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/k8s-other-0a1b2c3d4e/2222222222222222';
const credentials = { accessKeyId: 'AKIDLAB', secretAccessKey: 'lab' };
const MIN = 60_000;

/** Records `n` requests in the simulated minute starting at `simMinute` (ms). */
function traffic(alb: AlbCloud, simMinute: number, n: number, o: { tgArn?: string; lbArn?: string; status?: number; origin?: 'elb' | 'target' }): void {
  for (let i = 0; i < n; i++) {
    const simMs = simMinute + 1000 + i; // inside the minute
    alb.metrics.record(
      { lbArn: o.lbArn ?? LB, ...(o.tgArn ? { tgArn: o.tgArn } : {}), status: o.status ?? 200, origin: o.origin ?? 'target' },
      alb.epoch.realMs(simMs),
    );
  }
}

describe('dimension values and alignment', () => {
  test('ARN tails; anything else is refused with the expected shape', () => {
    assert.equal(loadBalancerDimension(LB), 'app/k8s-demo-web-0a1b2c3d4e/50dc6c495c0c9188');
    assert.equal(targetGroupDimension(TG1), 'targetgroup/k8s-demo-web-0a1b2c3d/73e2d6bc24d8a067');
    assert.throws(() => loadBalancerDimension('arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/x/1'), /app\/<name>\/<id>/);
    assert.throws(() => targetGroupDimension(LB), /targetgroup\/<name>\/<id>/);
  });
  test('windows align outward to whole periods', () => {
    assert.deepEqual(alignWindow(61_000, 179_000, 60), { start: 60_000, end: 180_000 });
    assert.deepEqual(alignWindow(120_000, 240_000, 120), { start: 120_000, end: 240_000 });
  });
});

describe('CloudWatchReader against the lab (real SDK, awsJson1_0)', () => {
  // Time scale 1: the simulated epoch is wall time, so "minutes ago" are real minutes ago.
  const clock = new LabClock({ ...DEFAULT_TIMINGS, timeScale: 1 });
  let alb: AlbCloud;
  let apis: AwsApis;
  let reader: CloudWatchReader;
  let base = 0;

  before(async () => {
    alb = new AlbCloud({ clock, region: 'us-east-1', network });
    apis = await startAwsApis({ alb, clock });
    reader = new CloudWatchReader(
      { region: 'us-east-1', endpoint: apis.cloudwatchUrl, credentials, sdkMaxAttempts: 1, minRetryDelayMs: 5, maxRetryDelayMs: 20 },
      { now: () => alb.simulatedNow() },
    );
    base = Math.floor(alb.simulatedNow() / MIN) * MIN - 6 * MIN;
    traffic(alb, base, 100, { tgArn: TG1 });
    traffic(alb, base, 50, { tgArn: TG2 });
    // base+1: no traffic at all (no data points are published).
    traffic(alb, base + 2 * MIN, 90, { tgArn: TG1 });
    traffic(alb, base + 2 * MIN, 10, { tgArn: TG1, status: 500 });
    traffic(alb, base + 2 * MIN, 3, { tgArn: TG1, status: 502, origin: 'elb' });
    traffic(alb, base + 2 * MIN, 2, { status: 503, origin: 'elb' });
    // Another ALB's errors never leak in.
    traffic(alb, base + 2 * MIN, 7, { lbArn: OTHER_LB, status: 503, origin: 'elb' });
  });
  after(async () => {
    reader.destroy();
    await apis.stop();
    await alb.stop();
  });

  test('per-period sums: ELB 5xx by LoadBalancer, Target 5xx and RequestCount by TargetGroup+LoadBalancer, missing = 0', async () => {
    const periods = await reader.readPeriods({ loadBalancerArn: LB, targetGroupArns: [TG1, TG2] }, { from: base + 5000, settleSeconds: 120 });
    const now = alb.simulatedNow();
    assert.equal(periods[0]!.start, base, 'aligned down to the minute');
    assert.ok(periods.at(-1)!.start <= now && periods.at(-1)!.end > now, 'up to the current (partial) minute');
    const [p0, p1, p2] = periods as [AlbPeriod, AlbPeriod, AlbPeriod];
    assert.deepEqual(
      { requests: p0.requests, target5xx: p0.target5xx, elb5xx: p0.elb5xx, empty: p0.empty },
      { requests: 150, target5xx: 0, elb5xx: 0, empty: false },
    );
    assert.deepEqual(p0.byTargetGroup, [
      { targetGroupArn: TG1, requests: 100, target5xx: 0 },
      { targetGroupArn: TG2, requests: 50, target5xx: 0 },
    ]);
    assert.deepEqual({ requests: p1.requests, target5xx: p1.target5xx, elb5xx: p1.elb5xx, empty: p1.empty }, { requests: 0, target5xx: 0, elb5xx: 0, empty: true });
    assert.deepEqual({ requests: p2.requests, target5xx: p2.target5xx, elb5xx: p2.elb5xx }, { requests: 103, target5xx: 10, elb5xx: 5 });
    assert.equal(p0.settled, true);
    assert.equal(periods.at(-1)!.settled, false, 'the newest minute is never settled');
    assert.equal(periods.at(-2)!.settled, false, 'nor the one before it, with a 2-minute settle delay');
    assert.equal(reader.calls.GetMetricData, 1);
  });

  test('throttling is retried with backoff until it passes', async () => {
    apis.setFaults({ cloudwatch: { throttleNext: 3 } });
    try {
      const periods = await reader.readPeriods({ loadBalancerArn: LB, targetGroupArns: [TG1] }, { from: base, to: base + 3 * MIN });
      assert.equal(periods.length, 3);
      assert.equal(periods[2]!.target5xx, 10);
      assert.equal(reader.throttled.count, 3);
      assert.equal(apis.calls.throttled['cloudwatch:GetMetricData'], 3);
    } finally {
      apis.setFaults({});
    }
  });

  test('a longer period sums the minutes it covers', async () => {
    const periods = await reader.readPeriods({ loadBalancerArn: LB, targetGroupArns: [TG1] }, { from: base, to: base + 3 * MIN, periodSeconds: 180 });
    // Aligned to whole 180 s periods (outward), so together they cover every request of TG1 in those minutes.
    assert.ok(periods.every((p) => p.end - p.start === 180_000 && p.start % 180_000 === 0));
    assert.ok(periods[0]!.start <= base && periods.at(-1)!.end >= base + 3 * MIN);
    assert.equal(periods.reduce((a, p) => a + p.requests, 0), 100 + 103);
    assert.equal(periods.reduce((a, p) => a + p.target5xx, 0), 10);
  });

  test('an unreachable endpoint is UnreachableError, with what to check', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = new CloudWatchReader({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, credentials, sdkMaxAttempts: 1, retries: 1, minRetryDelayMs: 5 });
    try {
      await assert.rejects(dead.readPeriods({ loadBalancerArn: LB, targetGroupArns: [TG1] }, { from: Date.now() - 5 * MIN }), (e: unknown) => {
        assert.ok(e instanceof UnreachableError, String(e));
        assert.match(e.message, /cannot read CloudWatch metrics \(GetMetricData\).*AWS_ENDPOINT_URL_CLOUDWATCH/s);
        return true;
      });
    } finally {
      dead.destroy();
    }
  });
});

describe('CloudWatchSignal against the lab with compressed time', () => {
  // 60×: one simulated minute per real second.
  const clock = new LabClock({ ...DEFAULT_TIMINGS, timeScale: 60 });
  let alb: AlbCloud;
  let apis: AwsApis;
  let reader: CloudWatchReader;
  before(async () => {
    alb = new AlbCloud({ clock, region: 'us-east-1', network });
    apis = await startAwsApis({ alb, clock });
    reader = new CloudWatchReader({ region: 'us-east-1', endpoint: apis.cloudwatchUrl, credentials, sdkMaxAttempts: 1, minRetryDelayMs: 5 }, { now: () => alb.simulatedNow() });
  });
  after(async () => {
    reader.destroy();
    await apis.stop();
    await alb.stop();
  });

  test('emits each settled period once, judged: healthy → success, no traffic → inconclusive, 10 % 5xx → failure', async () => {
    const first = Math.floor(alb.simulatedNow() / MIN) * MIN - 4 * MIN;
    traffic(alb, first, 200, { tgArn: TG1 });
    traffic(alb, first + 2 * MIN, 180, { tgArn: TG1 });
    traffic(alb, first + 2 * MIN, 20, { tgArn: TG1, status: 502, origin: 'elb' });
    const signal = new CloudWatchSignal({
      reader,
      target: { loadBalancerArn: LB, targetGroupArns: [TG1] },
      since: first,
      settleSeconds: 0,
      pollMs: 100,
      thresholds: DEFAULT_POLICY.signals.cloudwatch,
      toWallClock: (ms) => alb.epoch.realMs(ms),
      readerNow: () => alb.simulatedNow(),
    });
    const out: Measurement[] = [];
    const ac = new AbortController();
    const run = signal.run((m) => out.push(m), ac.signal);
    // Two more simulated minutes pass in about two real seconds; they settle with no traffic (an empty period is
    // emitted only once its datapoints can no longer come, 180 simulated seconds after it ended).
    await waitFor(() => out.length >= 6, { timeoutMs: 15_000, what: 'six settled periods', describe: () => out.map((m) => m.verdict).join(',') });
    ac.abort();
    await run;
    const byStart = [...out].sort((a, b) => String(a.details?.periodStart).localeCompare(String(b.details?.periodStart)));
    const [p0, p1, p2] = byStart as [Measurement, Measurement, Measurement];
    assert.equal(p0.verdict, 'success', p0.evidence);
    assert.equal(p0.requests, 200);
    assert.equal(p1.verdict, 'inconclusive');
    assert.match(p1.evidence, /no data points/);
    assert.equal(p2.verdict, 'failure', p2.evidence);
    assert.equal(p2.errors, 20);
    assert.equal(p2.details?.elb5xx, 20);
    assert.match(p2.evidence, /HTTPCode_ELB_5XX_Count 20; 10\.0% errors/);
    const starts = out.map((m) => String(m.details?.periodStart));
    assert.equal(new Set(starts).size, starts.length, 'no period emitted twice');
    assert.ok(out.every((m) => Date.parse(m.window.end) <= Date.now() + 50), 'only finished periods, on the wall clock');
    assert.ok(out.indexOf(p1) > out.indexOf(p2), 'the empty period is judged after the later one with data: it was re-read while its data could still come');
  });

  test('a failing reader gives one error measurement per distinct failure, never a verdict', async () => {
    let calls = 0;
    const failing: PeriodReader = {
      readPeriods: async () => {
        calls++;
        throw new UnreachableError('cannot read CloudWatch metrics (GetMetricData): no credentials');
      },
    };
    const signal = new CloudWatchSignal({ reader: failing, target: { loadBalancerArn: LB, targetGroupArns: [TG1] }, since: 0, pollMs: 10, thresholds: DEFAULT_POLICY.signals.cloudwatch });
    const out: Measurement[] = [];
    const ac = new AbortController();
    const run = signal.run((m) => out.push(m), ac.signal);
    await waitFor(() => calls >= 3, { timeoutMs: 5000, what: 'three reads' });
    ac.abort();
    await run;
    assert.equal(out.length, 1);
    assert.equal(out[0]!.verdict, 'error');
    assert.match(out[0]!.evidence, /no credentials/);
  });
});
