import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Elbv2Reader, type TargetHealth } from '../../src/aws/elbv2.js';
import type { Measurement } from '../../src/guard/signal.js';
import { TargetHealthSignal, type TargetHealthSource } from '../../src/guard/target-health.js';
import { AlbCloud } from '../../src/lab/alb/index.js';
import { startAwsApis, type AwsApis } from '../../src/lab/aws/index.js';
import { albWithTargetGroup, fastClock, podServer, type PodServer } from '../lab/alb-helpers.js';
import { waitFor } from '../helpers/wait.js';
import { LabNetwork } from '../../src/lab/network.js';

/** Where the test pods' virtual addresses lead (the kubelet's job in a lab). */
const network = new LabNetwork();

const TG = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-demo-web-0a1b2c3d/73e2d6bc24d8a067';

/** Answers DescribeTargetHealth from a script, one step per call. */
function scripted(steps: TargetHealth[][]): TargetHealthSource & { calls: number } {
  const src = {
    calls: 0,
    targetHealth: async () => {
      const step = steps[Math.min(src.calls, steps.length - 1)]!;
      src.calls++;
      return step;
    },
  };
  return src;
}

const healthy = (id: string): TargetHealth => ({ id, port: 8080, state: 'healthy' });
const unhealthy = (id: string): TargetHealth => ({ id, port: 8080, state: 'unhealthy', reason: 'Target.ResponseCodeMismatch', description: 'Health checks failed with these codes: [500]' });

describe('TargetHealthSignal (scripted target health)', () => {
  test('a new target unhealthy twice in a row is a failure with the AWS reason; old targets are ignored', async () => {
    let t = Date.parse('2026-05-01T10:00:00Z');
    const src = scripted([
      [unhealthy('10.0.0.1'), { id: '10.0.0.9', port: 8080, state: 'draining', reason: 'Target.DeregistrationInProgress' }],
      [healthy('10.0.0.1'), unhealthy('10.0.0.2'), unhealthy('10.0.0.9')],
      [healthy('10.0.0.1'), unhealthy('10.0.0.2')],
    ]);
    const s = new TargetHealthSignal({ elbv2: src, targetGroupArns: [TG], newTargets: () => ['10.0.0.1', '10.0.0.2'], intervalMs: 10, now: () => (t += 1000) });
    const m1 = await s.observe(t);
    assert.equal(m1.verdict, 'inconclusive');
    assert.match(m1.evidence, /10\.0\.0\.1:8080 unhealthy .* 1 of 2 observations/);
    const m2 = await s.observe(t);
    assert.equal(m2.verdict, 'inconclusive', 'the streak of 10.0.0.1 was reset; 10.0.0.2 is at 1; the old 10.0.0.9 does not count');
    const m3 = await s.observe(t);
    assert.equal(m3.verdict, 'failure');
    assert.equal(m3.value, 1);
    assert.match(m3.evidence, /10\.0\.0\.2:8080 unhealthy in targetgroup\/k8s-demo-web-0a1b2c3d\/73e2d6bc24d8a067 \(Target\.ResponseCodeMismatch: Health checks failed with these codes: \[500\]\), 2 observations in a row/);
    assert.ok(m3.firstErrorAt && Date.parse(m3.firstErrorAt) < Date.parse(m3.at), 'the first unhealthy observation');
  });

  test('old targets unhealthy before the release: a new one unhealthy for the same reason is not the release\'s fault; for another reason it is', async () => {
    let t = Date.parse('2026-05-01T10:00:00Z');
    const timeout: TargetHealth = { id: '10.0.0.3', port: 8080, state: 'unhealthy', reason: 'Target.Timeout', description: 'Request timed out' };
    const src = scripted([
      [unhealthy('10.0.0.8'), unhealthy('10.0.0.9'), { id: '10.0.0.1', port: 8080, state: 'initial' }],
      [unhealthy('10.0.0.9'), unhealthy('10.0.0.1'), timeout],
      [unhealthy('10.0.0.1'), timeout],
    ]);
    const s = new TargetHealthSignal({ elbv2: src, targetGroupArns: [TG], newTargets: () => ['10.0.0.1', '10.0.0.3'], intervalMs: 10, now: () => (t += 1000) });
    await s.observe(t);
    assert.equal((await s.observe(t)).verdict, 'inconclusive');
    const m = await s.observe(t);
    assert.equal(m.verdict, 'failure', m.evidence);
    assert.match(m.evidence, /10\.0\.0\.3:8080 unhealthy .*Target\.Timeout/);
    assert.doesNotMatch(m.evidence, /10\.0\.0\.1/);
    assert.equal(m.details?.unhealthyBefore, 2);

    const same = new TargetHealthSignal({ elbv2: scripted([[unhealthy('10.0.0.9')], [unhealthy('10.0.0.1')]]), targetGroupArns: [TG], newTargets: () => ['10.0.0.1'], intervalMs: 10, now: () => (t += 1000) });
    await same.observe(t);
    await same.observe(t);
    const n = await same.observe(t);
    assert.equal(n.verdict, 'inconclusive');
    assert.match(n.evidence, /for the reason the old version's were before the release .* not the release's fault: 10\.0\.0\.1:8080 unhealthy .*Target\.ResponseCodeMismatch.*, as 1 target\(s\) of the old version were/);
  });

  test('no new target yet → inconclusive; all healthy → success; DescribeTargetHealth failing → error', async () => {
    const s = new TargetHealthSignal({ elbv2: scripted([[healthy('10.0.0.9')]]), targetGroupArns: [TG], newTargets: () => ['10.0.0.1'], intervalMs: 10 });
    assert.equal((await s.observe(Date.now())).verdict, 'inconclusive');
    const ok = new TargetHealthSignal({ elbv2: scripted([[healthy('10.0.0.1')]]), targetGroupArns: [TG], newTargets: () => new Set(['10.0.0.1']), intervalMs: 10 });
    assert.equal((await ok.observe(Date.now())).verdict, 'success');
    const broken = new TargetHealthSignal({
      elbv2: { targetHealth: () => Promise.reject(new Error('Rate exceeded')) },
      targetGroupArns: [TG],
      newTargets: () => ['10.0.0.1'],
      intervalMs: 10,
    });
    const m = await broken.observe(Date.now());
    assert.equal(m.verdict, 'error');
    assert.match(m.evidence, /DescribeTargetHealth failed: Rate exceeded/);
  });

  test('run() is bounded by maxObservations and by abort', async () => {
    const out: Measurement[] = [];
    const s = new TargetHealthSignal({ elbv2: scripted([[healthy('10.0.0.1')]]), targetGroupArns: [TG], newTargets: () => ['10.0.0.1'], intervalMs: 5, maxObservations: 3 });
    await s.run((m) => out.push(m), new AbortController().signal);
    assert.equal(out.length, 3);
    const ac = new AbortController();
    const run = new TargetHealthSignal({ elbv2: scripted([[healthy('10.0.0.1')]]), targetGroupArns: [TG], newTargets: () => ['10.0.0.1'], intervalMs: 60_000 }).run(() => undefined, ac.signal);
    ac.abort();
    await run;
  });
});

describe('TargetHealthSignal with Elbv2Reader against the lab ALB', () => {
  const clock = fastClock();
  let alb: AlbCloud;
  let apis: AwsApis;
  let reader: Elbv2Reader;
  const pods: PodServer[] = [];
  before(async () => {
    alb = new AlbCloud({ clock, region: 'us-east-1', network });
    apis = await startAwsApis({ alb, clock });
    reader = new Elbv2Reader({ region: 'us-east-1', endpoint: apis.elbv2Url, credentials: { accessKeyId: 'AKIDLAB', secretAccessKey: 'lab' }, minRetryDelayMs: 5 });
  });
  after(async () => {
    reader.destroy();
    await apis.stop();
    await alb.stop();
    await Promise.all(pods.map((p) => p.close()));
  });

  test('a new pod whose health check answers 500 fails the signal with Target.ResponseCodeMismatch', async () => {
    const { tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-guard-0123456789' });
    const bad = await podServer(network, '127.0.200.171', (_req, res) => {
      res.writeHead(500);
      res.end('broken');
    });
    const old = await podServer(network, '127.0.200.172');
    pods.push(bad, old);
    await apis.account.elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: bad.ip, Port: bad.port }, { Id: old.ip, Port: old.port }] });
    const signal = new TargetHealthSignal({ elbv2: reader, targetGroupArns: [tgArn], newTargets: () => [bad.ip], intervalMs: 50 });
    const out: Measurement[] = [];
    const ac = new AbortController();
    const run = signal.run((m) => out.push(m), ac.signal);
    try {
      await waitFor(() => out.some((m) => m.verdict === 'failure'), { timeoutMs: 10_000, what: 'a failure measurement', describe: () => out.map((m) => `${m.verdict}: ${m.evidence}`).slice(-3).join(' | ') });
    } finally {
      ac.abort();
      await run;
    }
    const failure = out.find((m) => m.verdict === 'failure')!;
    assert.match(failure.evidence, new RegExp(`${bad.ip.replace(/\./g, '\\.')}:${bad.port} unhealthy .*Target\\.ResponseCodeMismatch`));
    assert.doesNotMatch(failure.evidence, /127\.0\.200\.172/);
  });
});
