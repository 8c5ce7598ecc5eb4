import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CloudWatchClient, GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import {
  DeregisterTargetsCommand,
  DescribeListenersCommand,
  DescribeLoadBalancersCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  DescribeTargetGroupAttributesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyTargetGroupAttributesCommand,
  RegisterTargetsCommand,
  TargetGroupNotFoundException,
  paginateDescribeTargetGroups,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { AlbCloud, loadBalancerDimension, targetGroupDimension } from '../../src/lab/alb/index.js';
import { startAwsApis, type AwsApis } from '../../src/lab/aws/index.js';
import { waitFor } from '../helpers/wait.js';
import { albWithTargetGroup, fastClock, httpGet, podServer, type PodServer } from './alb-helpers.js';
import { LabNetwork } from '../../src/lab/network.js';

/** Where the test pods' virtual addresses lead (the kubelet's job in a lab). */
const network = new LabNetwork();

const credentials = { accessKeyId: 'AKIDLAB', secretAccessKey: 'lab' };

describe('AWS API servers with the real SDK', () => {
  const clock = fastClock();
  let alb: AlbCloud;
  let apis: AwsApis;
  let elbv2: ElasticLoadBalancingV2Client;
  let cw: CloudWatchClient;
  let lbArn = '';
  let tgArn = '';
  const servers: PodServer[] = [];

  before(async () => {
    alb = new AlbCloud({ clock, region: 'us-east-1', network });
    apis = await startAwsApis({ alb, clock });
    elbv2 = new ElasticLoadBalancingV2Client({ region: 'us-east-1', endpoint: apis.elbv2Url, credentials, retryStrategy: new ConfiguredRetryStrategy(3, (n) => 5 * n) });
    cw = new CloudWatchClient({ region: 'us-east-1', endpoint: apis.cloudwatchUrl, credentials, retryStrategy: new ConfiguredRetryStrategy(3, (n) => 5 * n) });
    ({ lbArn, tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-sdk-0123456789' }));
  });
  after(async () => {
    elbv2.destroy();
    cw.destroy();
    await apis.stop();
    await alb.stop();
    await Promise.all(servers.map((s) => s.close()));
  });

  test('RegisterTargets, DescribeTargetHealth (with and without Targets), DeregisterTargets', async () => {
    const pod = await podServer(network, '127.0.200.61');
    servers.push(pod);
    await elbv2.send(new ModifyTargetGroupAttributesCommand({ TargetGroupArn: tgArn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '20' }] }));
    const reg = await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] }));
    assert.match(reg.$metadata.requestId ?? '', /^[0-9a-f-]{36}$/);
    const first = await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn }));
    assert.deepEqual(first.TargetHealthDescriptions, [
      {
        Target: { Id: pod.ip, Port: pod.port },
        HealthCheckPort: String(pod.port),
        TargetHealth: { State: 'initial', Reason: 'Elb.RegistrationInProgress', Description: 'Target registration is in progress' },
      },
    ]);
    await waitFor(
      async () => {
        const d = await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] }));
        return d.TargetHealthDescriptions?.[0]?.TargetHealth?.State === 'healthy';
      },
      { timeoutMs: 5000, what: 'healthy over the SDK' },
    );
    const notReg = await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn, Targets: [{ Id: '127.0.200.99', Port: 80 }] }));
    assert.deepEqual(notReg.TargetHealthDescriptions?.[0]?.TargetHealth, { State: 'unused', Reason: 'Target.NotRegistered', Description: 'Target is not registered to the target group' });
    await elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] }));
    const dr = await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn }));
    assert.equal(dr.TargetHealthDescriptions?.[0]?.TargetHealth?.State, 'draining');
    assert.equal(dr.TargetHealthDescriptions?.[0]?.TargetHealth?.Reason, 'Target.DeregistrationInProgress');
    await waitFor(async () => (await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn }))).TargetHealthDescriptions?.length === 0, { timeoutMs: 5000, what: 'drained' });
  });

  test('DescribeTargetGroups by ARN, name and load balancer; paginated with PageSize', async () => {
    await albWithTargetGroup(alb, { name: 'k8s-default-sdk2-012345678' });
    await albWithTargetGroup(alb, { name: 'k8s-default-sdk3-012345678' });
    const byArn = await elbv2.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [tgArn] }));
    assert.equal(byArn.TargetGroups?.length, 1);
    const tg = byArn.TargetGroups![0]!;
    assert.equal(tg.TargetType, 'ip');
    assert.equal(tg.HealthCheckPath, '/healthz');
    assert.equal(tg.HealthCheckIntervalSeconds, 15);
    assert.deepEqual(tg.Matcher, { HttpCode: '200' });
    assert.deepEqual(tg.LoadBalancerArns, [lbArn]);
    const byName = await elbv2.send(new DescribeTargetGroupsCommand({ Names: [tg.TargetGroupName!] }));
    assert.equal(byName.TargetGroups?.[0]?.TargetGroupArn, tgArn);
    const byLb = await elbv2.send(new DescribeTargetGroupsCommand({ LoadBalancerArn: lbArn }));
    assert.deepEqual(byLb.TargetGroups?.map((t) => t.TargetGroupArn), [tgArn]);
    const pages: number[] = [];
    const names: string[] = [];
    // The SDK's paginator follows NextMarker (its pageSize is not wired to PageSize), so pass PageSize in the input.
    for await (const p of paginateDescribeTargetGroups({ client: elbv2 }, { PageSize: 2 })) {
      pages.push(p.TargetGroups?.length ?? 0);
      names.push(...(p.TargetGroups ?? []).map((t) => t.TargetGroupName!));
    }
    assert.ok(pages.length >= 2, `several pages: ${pages.join(',')}`);
    assert.ok(pages.every((n) => n <= 2));
    assert.equal(new Set(names).size, names.length);
    await assert.rejects(elbv2.send(new DescribeTargetGroupsCommand({ Names: ['nope'] })), (e: unknown) => e instanceof TargetGroupNotFoundException && (e as { Code?: string }).Code === 'TargetGroupNotFound');
  });

  test('DescribeLoadBalancers, DescribeListeners, DescribeRules, DescribeTags', async () => {
    const lbs = await elbv2.send(new DescribeLoadBalancersCommand({ Names: ['k8s-default-sdk-0123456789'] }));
    const lb = lbs.LoadBalancers![0]!;
    assert.equal(lb.LoadBalancerArn, lbArn);
    assert.ok(lb.CreatedTime instanceof Date);
    assert.equal(lb.State?.Code, 'active');
    assert.equal(lb.Type, 'application');
    const page1 = await elbv2.send(new DescribeLoadBalancersCommand({ PageSize: 1 }));
    assert.equal(page1.LoadBalancers?.length, 1);
    assert.ok(page1.NextMarker);
    const ls = await elbv2.send(new DescribeListenersCommand({ LoadBalancerArn: lbArn }));
    assert.equal(ls.Listeners?.[0]?.Port, 80);
    assert.equal(ls.Listeners?.[0]?.Protocol, 'HTTP');
    const rules = await elbv2.send(new DescribeRulesCommand({ ListenerArn: ls.Listeners![0]!.ListenerArn! }));
    assert.equal(rules.Rules?.length, 2);
    assert.equal(rules.Rules?.[0]?.Priority, '1');
    assert.deepEqual(rules.Rules?.[0]?.Conditions?.[0]?.PathPatternConfig?.Values, ['/*']);
    assert.equal(rules.Rules?.[0]?.Actions?.[0]?.TargetGroupArn, tgArn);
    assert.equal(rules.Rules?.[1]?.IsDefault, true);
    const tags = await elbv2.send(new DescribeTagsCommand({ ResourceArns: [tgArn] }));
    assert.equal(tags.TagDescriptions?.[0]?.ResourceArn, tgArn);
  });

  test('ModifyTargetGroupAttributes shows in DescribeTargetGroupAttributes; ranges are validated', async () => {
    const out = await elbv2.send(
      new ModifyTargetGroupAttributesCommand({
        TargetGroupArn: tgArn,
        Attributes: [
          { Key: 'deregistration_delay.timeout_seconds', Value: '30' },
          { Key: 'slow_start.duration_seconds', Value: '30' },
        ],
      }),
    );
    assert.ok(out.Attributes?.some((a) => a.Key === 'slow_start.duration_seconds' && a.Value === '30'));
    const attrs = await elbv2.send(new DescribeTargetGroupAttributesCommand({ TargetGroupArn: tgArn }));
    const map = Object.fromEntries((attrs.Attributes ?? []).map((a) => [a.Key, a.Value]));
    assert.equal(map['deregistration_delay.timeout_seconds'], '30');
    assert.equal(map['stickiness.enabled'], 'false');
    await assert.rejects(
      elbv2.send(new ModifyTargetGroupAttributesCommand({ TargetGroupArn: tgArn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '3601' }] })),
      (e: unknown) => (e as Error).name === 'ValidationError' && /between 0 and 3600/.test((e as Error).message),
    );
  });

  test('unknown Action → 400 InvalidAction; errors carry x-amzn-requestid', async () => {
    const res = await fetch(apis.elbv2Url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=LaunchRockets&Version=2015-12-01' });
    assert.equal(res.status, 400);
    assert.ok(res.headers.get('x-amzn-requestid'));
    const xml = await res.text();
    assert.match(xml, /<Code>InvalidAction<\/Code>/);
    assert.match(xml, /<Type>Sender<\/Type>/);
  });

  test('throttling fault: the SDK sees Throttling and retries; persistent throttling surfaces; calls are counted', async () => {
    const before = apis.calls.elbv2.DescribeTargetGroups ?? 0;
    apis.setFaults({ elbv2: { throttleNext: 2, actions: ['DescribeTargetGroups'] } });
    const ok = await elbv2.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [tgArn] }));
    assert.equal(ok.$metadata.attempts, 3);
    assert.equal(apis.calls.elbv2.DescribeTargetGroups, before + 3);
    assert.equal(apis.calls.throttled['elbv2:DescribeTargetGroups'], 2);
    apis.setFaults({ elbv2: { throttleRate: 1, actions: ['DescribeTargetGroups'] } });
    await assert.rejects(elbv2.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [tgArn] })), (e: unknown) => {
      const err = e as { name: string; message: string; $metadata: { attempts?: number; httpStatusCode?: number } };
      return err.name === 'Throttling' && err.message === 'Rate exceeded' && err.$metadata.httpStatusCode === 400 && err.$metadata.attempts === 3;
    });
    apis.setFaults({ elbv2: { errorNext: 1 } });
    const after500 = await elbv2.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [tgArn] }));
    assert.equal(after500.$metadata.attempts, 2, '500 is retried as transient');
    apis.setFaults({});
  });

  test('GetMetricData: ELB 5xx by LoadBalancer, RequestCount/Target 2XX by TargetGroup+LoadBalancer, per simulated minute', async () => {
    const { lbArn: lb2, tgArn: tg2 } = await albWithTargetGroup(alb, { name: 'k8s-default-cw-0123456789' });
    const url = alb.dataPlaneUrl(lb2);
    const t0 = alb.simulatedNow();
    for (let i = 0; i < 3; i++) assert.equal((await httpGet(`${url}/`)).status, 503);
    const pod = await podServer(network, '127.0.200.71');
    servers.push(pod);
    await elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: tg2, Targets: [{ Id: pod.ip, Port: pod.port }] }));
    await waitFor(async () => (await httpGet(`${url}/`)).status === 200, { timeoutMs: 5000, what: 'serving' });
    for (let i = 0; i < 4; i++) assert.equal((await httpGet(`${url}/`)).status, 200);
    const counters = alb.stats(lb2);
    const t1 = alb.simulatedNow();
    const lbDim = [{ Name: 'LoadBalancer', Value: loadBalancerDimension(lb2) }];
    const tgDims = [{ Name: 'TargetGroup', Value: targetGroupDimension(tg2) }, ...lbDim];
    const q = (Id: string, MetricName: string, Dimensions: Array<{ Name: string; Value: string }>): MetricDataQuery => ({
      Id,
      MetricStat: { Metric: { Namespace: 'AWS/ApplicationELB', MetricName, Dimensions }, Period: 60, Stat: 'Sum' },
      ReturnData: true,
    });
    const res = await cw.send(
      new GetMetricDataCommand({
        StartTime: new Date(t0 - 60_000),
        EndTime: new Date(t1 + 60_000),
        ScanBy: 'TimestampAscending',
        MetricDataQueries: [
          q('elb5xx', 'HTTPCode_ELB_5XX_Count', lbDim),
          q('elb503', 'HTTPCode_ELB_503_Count', lbDim),
          q('req', 'RequestCount', tgDims),
          q('tgt2xx', 'HTTPCode_Target_2XX_Count', tgDims),
          q('reqlb', 'RequestCount', lbDim),
          q('elb5xxtg', 'HTTPCode_ELB_5XX_Count', tgDims),
          q('tgonly', 'RequestCount', [tgDims[0]!]),
          { Id: 'rate', Expression: '100*(elb5xx/reqlb)', Label: 'ErrorRate', ReturnData: true },
        ],
      }),
    );
    const byId = Object.fromEntries((res.MetricDataResults ?? []).map((r) => [r.Id, r]));
    const sum = (id: string): number => (byId[id]?.Values ?? []).reduce((a: number, b: number) => a + b, 0);
    assert.ok(counters.elb5xx >= 3);
    assert.equal(sum('elb5xx'), counters.elb5xx);
    assert.equal(sum('elb503'), counters.byStatus['503']);
    assert.equal(sum('req'), counters.requests);
    assert.equal(sum('tgt2xx'), counters.target2xx);
    assert.equal(sum('reqlb'), counters.requests);
    assert.deepEqual(byId.elb5xxtg?.Values, [], 'ELB codes are not published with a TargetGroup dimension');
    assert.deepEqual(byId.tgonly?.Values, [], 'TargetGroup alone has no data');
    assert.equal(byId.req?.Label, 'RequestCount');
    assert.equal(byId.rate?.Label, 'ErrorRate');
    assert.ok(byId.rate?.Values?.length);
    for (const t of byId.req?.Timestamps ?? []) {
      assert.ok(t instanceof Date);
      assert.equal(t.getTime() % 60_000, 0, 'minute-aligned simulated timestamps');
    }
    // with timeScale 100 the requests above span several simulated minutes: only minutes with traffic have points
    assert.ok((byId.req?.Timestamps?.length ?? 0) >= 1);
    const bad = await cw.send(new GetMetricDataCommand({ StartTime: new Date(t0 - 60_000), EndTime: new Date(t1 + 60_000), MetricDataQueries: [{ Id: 'x', Expression: 'ANOMALY_DETECTION_BAND(elb5xx)' }] }));
    assert.equal(bad.MetricDataResults?.[0]?.StatusCode, 'InternalError');
  });

  test('an unmodified client finds the servers through AWS_ENDPOINT_URL_* environment variables', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, apis.env);
    try {
      const c = new ElasticLoadBalancingV2Client({ retryStrategy: new ConfiguredRetryStrategy(2, 5) });
      const out = await c.send(new DescribeLoadBalancersCommand({ LoadBalancerArns: [lbArn] }));
      assert.equal(out.LoadBalancers?.[0]?.LoadBalancerArn, lbArn);
      c.destroy();
      const w = new CloudWatchClient({ retryStrategy: new ConfiguredRetryStrategy(2, 5) });
      const now = alb.simulatedNow();
      const m = await w.send(new GetMetricDataCommand({ StartTime: new Date(now - 120_000), EndTime: new Date(now), MetricDataQueries: [{ Id: 'one', Expression: '1' }] }));
      assert.equal(m.MetricDataResults?.[0]?.StatusCode, 'Complete');
      w.destroy();
    } finally {
      for (const k of Object.keys(apis.env)) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  test('GetMetricData errors: invalid parameters and throttling with x-amzn-query-error', async () => {
    const now = alb.simulatedNow();
    await assert.rejects(cw.send(new GetMetricDataCommand({ StartTime: new Date(now), EndTime: new Date(now - 60_000), MetricDataQueries: [{ Id: 'a', Expression: '1' }] })), (e: unknown) => (e as { Code?: string }).Code === 'InvalidParameterValue');
    apis.setFaults({ cloudwatch: { throttleRate: 1 } });
    await assert.rejects(cw.send(new GetMetricDataCommand({ StartTime: new Date(now - 60_000), EndTime: new Date(now), MetricDataQueries: [{ Id: 'a', Expression: '1' }] })), (e: unknown) => (e as Error).name === 'Throttling');
    apis.setFaults({});
    assert.ok((apis.calls.cloudwatch.GetMetricData ?? 0) >= 5);
  });
});
