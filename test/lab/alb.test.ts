import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AlbCloud, AwsApiError, elbErrorBody } from '../../src/lab/alb/index.js';
import { awsAccount } from '../../src/lab/aws/index.js';
import { waitFor } from '../helpers/wait.js';
import { albWithTargetGroup, fastClock, httpGet, podServer, type PodServer } from './alb-helpers.js';
import { LabNetwork } from '../../src/lab/network.js';

/** Where the test pods' virtual addresses lead (the kubelet's job in a lab). */
const network = new LabNetwork();

function health(alb: AlbCloud, tgArn: string, id: string, port: number): Promise<string> {
  return awsAccount(alb)
    .elbv2('DescribeTargetHealth', { TargetGroupArn: tgArn, Targets: [{ Id: id, Port: port }] })
    .then((o) => {
      const h = o.TargetHealthDescriptions![0]!.TargetHealth!;
      return `${h.State}${h.Reason ? `/${h.Reason}` : ''}`;
    });
}

describe('ALB model', () => {
  const clock = fastClock();
  let alb: AlbCloud;
  const servers: PodServer[] = [];

  before(() => {
    alb = new AlbCloud({ clock, region: 'us-east-1', network });
  });
  after(async () => {
    await alb.stop();
    await Promise.all(servers.map((s) => s.close()));
  });

  test('names, ARNs and DNS names follow AWS formats', async () => {
    const { lbArn, tgArn } = await albWithTargetGroup(alb, { name: 'k8s-names-test-0123456789' });
    assert.match(lbArn, /^arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer\/app\/k8s-names-test-0123456789\/[0-9a-f]{16}$/);
    assert.match(tgArn, /^arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup\/k8s-names-test-012345abcd\/[0-9a-f]{16}$/);
    const lbs = await awsAccount(alb).elbv2('DescribeLoadBalancers', { LoadBalancerArns: [lbArn] });
    assert.match(lbs.LoadBalancers![0]!.DNSName!, /^k8s-names-test-0123456789-\d{10}\.us-east-1\.elb\.amazonaws\.com$/);
    assert.equal(lbs.LoadBalancers![0]!.State!.Code, 'active');
    const attrs = await awsAccount(alb).elbv2('DescribeTargetGroupAttributes', { TargetGroupArn: tgArn });
    const map = Object.fromEntries(attrs.Attributes!.map((a) => [a.Key, a.Value]));
    assert.equal(map['deregistration_delay.timeout_seconds'], '300');
    assert.equal(map['slow_start.duration_seconds'], '0');
    assert.equal(map['stickiness.enabled'], 'false');
    assert.equal(map['load_balancing.algorithm.type'], 'round_robin');
  });

  test('target: initial → healthy for a live pod; draining → gone after deregistration (early completion recorded)', async () => {
    const pod = await podServer(network, '127.0.200.11');
    servers.push(pod);
    const { tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-life-0123456789' });
    const account = awsAccount(alb);
    await account.elbv2('ModifyTargetGroupAttributes', { TargetGroupArn: tgArn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '30' }] });
    await account.elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
    assert.equal(await health(alb, tgArn, pod.ip, pod.port), 'initial/Elb.RegistrationInProgress');
    await waitFor(async () => (await health(alb, tgArn, pod.ip, pod.port)) === 'healthy', { timeoutMs: 5000, what: 'target healthy' });
    const states = alb.history.filter((e) => e.tgArn === tgArn && e.kind === 'state').map((e) => `${e.state}/${e.reason ?? ''}`);
    assert.deepEqual(states, ['initial/Elb.RegistrationInProgress', 'initial/Elb.InitialHealthChecking', 'healthy/']);

    await account.elbv2('DeregisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
    assert.equal(await health(alb, tgArn, pod.ip, pod.port), 'draining/Target.DeregistrationInProgress');
    const rec = await waitFor(() => alb.targetRecord(tgArn, pod.ip, pod.port)?.drainCompletedAt !== undefined && alb.targetRecord(tgArn, pod.ip, pod.port), {
      timeoutMs: 5000,
      what: 'early drain completion',
    });
    assert.equal(rec.status, 'draining', 'still shown draining after early completion');
    assert.ok(rec.drainEndsAt! > rec.drainCompletedAt!);
    await waitFor(async () => (await health(alb, tgArn, pod.ip, pod.port)) === 'unused/Target.NotRegistered', { timeoutMs: 5000, what: 'target gone' });
    const all = await account.elbv2('DescribeTargetHealth', { TargetGroupArn: tgArn });
    assert.deepEqual(all.TargetHealthDescriptions, []);
  });

  test('health path answering 500 → unhealthy with Target.ResponseCodeMismatch; connection refused → Target.FailedHealthChecks', async () => {
    const pod = await podServer(network, '127.0.200.12', (req, res) => {
      res.writeHead(req.url === '/healthz' ? 500 : 200);
      res.end('x');
    });
    servers.push(pod);
    const { tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-sick-0123456789' });
    const account = awsAccount(alb);
    network.attach('127.0.200.13', 'test-pod-no-listener'); // a pod whose port nothing listens on
    await account.elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }, { Id: '127.0.200.13', Port: 1 }] });
    await waitFor(async () => (await health(alb, tgArn, pod.ip, pod.port)) === 'unhealthy/Target.ResponseCodeMismatch', { timeoutMs: 5000, what: 'unhealthy' });
    const d = await account.elbv2('DescribeTargetHealth', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
    assert.equal(d.TargetHealthDescriptions![0]!.TargetHealth!.Description, 'Health checks failed with these codes: [500]');
    await waitFor(async () => (await health(alb, tgArn, '127.0.200.13', 1)) === 'unhealthy/Target.FailedHealthChecks', { timeoutMs: 5000, what: 'refused → FailedHealthChecks' });
  });

  test('a target group not used by any rule shows its targets unused/Target.NotInUse', async () => {
    const pod = await podServer(network, '127.0.200.14');
    servers.push(pod);
    const { tgArn, listenerArn } = await albWithTargetGroup(alb, { name: 'k8s-default-idle-0123456789', forward: false });
    const account = awsAccount(alb);
    await account.elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
    await waitFor(async () => (await health(alb, tgArn, pod.ip, pod.port)) === 'unused/Target.NotInUse', { timeoutMs: 5000, what: 'NotInUse' });
    await account.elbv2('CreateRule', {
      ListenerArn: listenerArn,
      Priority: 5,
      Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/*'] } }],
      Actions: [{ Type: 'forward', TargetGroupArn: tgArn }],
    });
    await waitFor(async () => (await health(alb, tgArn, pod.ip, pod.port)) === 'healthy', { timeoutMs: 5000, what: 'healthy once in use' });
  });

  test('validation errors: attribute ranges, unknown target group, invalid target', async () => {
    const { tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-vali-0123456789' });
    const account = awsAccount(alb);
    await assert.rejects(
      account.elbv2('ModifyTargetGroupAttributes', { TargetGroupArn: tgArn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '4000' }] }),
      (e: unknown) => e instanceof AwsApiError && e.code === 'ValidationError' && /0 and 3600/.test(e.message),
    );
    await assert.rejects(account.elbv2('DescribeTargetHealth', { TargetGroupArn: tgArn.replace(/[0-9a-f]{16}$/, '0000000000000000') }), (e: unknown) => e instanceof AwsApiError && e.code === 'TargetGroupNotFound');
    await assert.rejects(account.elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: 'not-an-ip', Port: 80 }] }), (e: unknown) => e instanceof AwsApiError && e.code === 'InvalidTarget');
    await assert.rejects(account.elbv2('DeleteTargetGroup', { TargetGroupArn: tgArn }), (e: unknown) => e instanceof AwsApiError && e.code === 'ResourceInUse');
  });
});

describe('ALB data plane', () => {
  const clock = fastClock();
  let alb: AlbCloud;
  const servers: PodServer[] = [];

  before(() => {
    alb = new AlbCloud({ clock, region: 'us-east-1', network });
  });
  after(async () => {
    await alb.stop();
    await Promise.all(servers.map((s) => s.close()));
  });

  test('503 with no registered targets; 404 fixed response off the rules', async () => {
    const { lbArn, tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-empty-012345678' });
    const url = alb.dataPlaneUrl(lbArn);
    const r = await httpGet(`${url}/`);
    assert.equal(r.status, 503);
    assert.equal(r.body, elbErrorBody(503));
    assert.match(r.body, /503 Service Temporarily Unavailable/);
    assert.equal(r.headers.server, 'awselb/2.0');
    const c = alb.stats(lbArn);
    assert.equal(c.elb5xx, 1);
    assert.equal(alb.stats(tgArn).requests, 1);
  });

  test('proxies 200s round robin over healthy targets, with x-lab-target', async () => {
    const a = await podServer(network, '127.0.200.21');
    const b = await podServer(network, '127.0.200.22');
    servers.push(a, b);
    const { lbArn, tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-rr-0123456789' });
    await awsAccount(alb).elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: a.ip, Port: a.port }, { Id: b.ip, Port: b.port }] });
    const url = alb.dataPlaneUrl(lbArn);
    await waitFor(async () => (await httpGet(`${url}/x`)).status === 200 && alb.targetRecord(tgArn, b.ip, b.port)?.status === 'healthy' && alb.targetRecord(tgArn, a.ip, a.port)?.status === 'healthy', {
      timeoutMs: 5000,
      what: 'both healthy and serving',
    });
    // wait until both are routable in the data plane
    await waitFor(() => alb.history.filter((e) => e.tgArn === tgArn && e.kind === 'data-plane' && e.state === 'routable').length === 2, { timeoutMs: 5000, what: 'both routable' });
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await httpGet(`${url}/x?i=${i}`);
      assert.equal(r.status, 200);
      seen.push(String(r.headers['x-lab-target']));
    }
    assert.deepEqual(new Set(seen), new Set([`${a.ip}:${a.port}`, `${b.ip}:${b.port}`]));
    for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1], 'round robin alternates');
    assert.ok(alb.stats(tgArn).target2xx >= 6);
  });

  test('502 for a refused target (fail open over unhealthy targets)', async () => {
    const pod = await podServer(network, '127.0.200.31');
    servers.push(pod);
    const { lbArn, tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-refuse-012345678' });
    await awsAccount(alb).elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
    const url = alb.dataPlaneUrl(lbArn);
    await waitFor(async () => (await httpGet(`${url}/`)).status === 200, { timeoutMs: 5000, what: 'serving' });
    await pod.close(); // the process is gone: the port refuses
    const r = await httpGet(`${url}/`);
    assert.equal(r.status, 502);
    assert.match(r.body, /502 Bad Gateway/);
    // once unhealthy, the ALB fails open and still sends to it → still 502
    await waitFor(() => alb.targetRecord(tgArn, pod.ip, pod.port)?.status === 'unhealthy', { timeoutMs: 5000, what: 'unhealthy' });
    assert.equal((await httpGet(`${url}/`)).status, 502);
    assert.ok(alb.stats(lbArn).byStatus['502']! >= 2);
  });

  test('504 after the connect timeout when the target address is gone (blackhole)', async () => {
    const ip = '127.0.201.41';
    const pod = await podServer(network, ip);
    servers.push(pod);
    const { lbArn, tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-hole-0123456789' });
    await awsAccount(alb).elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: ip, Port: pod.port }] });
    const url = alb.dataPlaneUrl(lbArn);
    await waitFor(async () => (await httpGet(`${url}/`)).status === 200, { timeoutMs: 5000, what: 'serving' });
    pod.release(); // pod object deleted, IP released
    const t0 = Date.now();
    const r = await httpGet(`${url}/`);
    assert.equal(r.status, 504);
    assert.ok(Date.now() - t0 >= clock.ms(clock.timings.albConnectTimeoutSeconds) - 5, 'waited the connect timeout');
    assert.equal(alb.stats(lbArn).byStatus['504'], 1);
  });

  test('502 when the target closes the connection with the request outstanding', async () => {
    const pod = await podServer(network, '127.0.200.35', (req, res) => {
      if (req.url === '/healthz') {
        res.end('ok');
        return;
      }
      req.socket.destroy();
    });
    servers.push(pod);
    const { lbArn, tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-reset-012345678' });
    await awsAccount(alb).elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
    await waitFor(() => alb.history.some((e) => e.tgArn === tgArn && e.kind === 'data-plane' && e.state === 'routable'), { timeoutMs: 5000, what: 'routable' });
    const r = await httpGet(`${alb.dataPlaneUrl(lbArn)}/boom`);
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-lab-target'], `${pod.ip}:${pod.port}`);
  });

  test('a request still in flight when the deregistration delay ends is cut (502); drain completes after it', async () => {
    let release: () => void = () => undefined;
    const pod = await podServer(network, '127.0.200.36', (req, res) => {
      if (req.url === '/healthz') {
        res.end('ok');
        return;
      }
      release = () => res.end('late');
    });
    servers.push(pod);
    const { lbArn, tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-slow-0123456789' });
    const account = awsAccount(alb);
    await account.elbv2('ModifyTargetGroupAttributes', { TargetGroupArn: tgArn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '20' }] });
    await account.elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
    await waitFor(() => alb.history.some((e) => e.tgArn === tgArn && e.kind === 'data-plane' && e.state === 'routable'), { timeoutMs: 5000, what: 'routable' });
    const pending = httpGet(`${alb.dataPlaneUrl(lbArn)}/slow`);
    await waitFor(() => alb.stats(tgArn).inFlight[`${pod.ip}:${pod.port}`] === 1, { timeoutMs: 5000, what: 'request in flight' });
    await account.elbv2('DeregisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
    const r = await pending;
    release();
    assert.equal(r.status, 502);
    const done = alb.history.find((e) => e.tgArn === tgArn && e.kind === 'drain-complete');
    const removed = alb.history.find((e) => e.tgArn === tgArn && e.kind === 'removed');
    assert.ok(removed, 'target removed at the end of the delay');
    assert.ok(!done || done.at >= removed.at, 'no early completion while a request was in flight');
  });

  test('a deregistered target keeps receiving requests until the deregistration propagates', async () => {
    const slowClock = fastClock({ albPropagationSeconds: 30 });
    const alb2 = new AlbCloud({ clock: slowClock, region: 'us-east-1', network });
    try {
      const pod = await podServer(network, '127.0.200.51');
      servers.push(pod);
      const { lbArn, tgArn } = await albWithTargetGroup(alb2, { name: 'k8s-default-prop-0123456789' });
      const account = awsAccount(alb2);
      await account.elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
      const url = alb2.dataPlaneUrl(lbArn);
      await waitFor(async () => (await httpGet(`${url}/`)).status === 200, { timeoutMs: 5000, what: 'serving' });
      await account.elbv2('DeregisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
      const r = await httpGet(`${url}/`);
      assert.equal(r.status, 200, 'still routed right after DeregisterTargets');
      assert.equal(r.headers['x-lab-target'], `${pod.ip}:${pod.port}`);
      await waitFor(async () => (await httpGet(`${url}/`)).status === 503, { timeoutMs: 5000, what: '503 once the deregistration reached the data plane' });
    } finally {
      await alb2.stop();
    }
  });
});
