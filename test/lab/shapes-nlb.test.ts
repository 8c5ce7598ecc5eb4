/**
 * NLB Services in the lab (LBC's Service path), through the real clients: `aws-load-balancer-type: external` +
 * `nlb-target-type: ip` (and `loadBalancerClass: service.k8s.aws/nlb`) → an NLB, a TCP listener and target group and
 * a TargetGroupBinding per Service port, the hostname in the Service status, TCP (or annotated HTTP) health checks,
 * readiness gates, draining, and a TCP data plane on loopback that resets the client when the target refuses.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  DescribeListenersCommand,
  DescribeLoadBalancersCommand,
  DescribeTargetGroupsCommand,
  RegisterTargetsCommand,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { TrafficGenerator } from '../../src/lab/traffic/index.js';
import { waitFor } from '../helpers/wait.js';
import { deployment, namespace, service, shapesLab, type ShapesLab } from './shapes-helpers.js';

const NS = 'nlb-app';
const NLB_ANN = { 'service.beta.kubernetes.io/aws-load-balancer-type': 'external', 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip', 'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internet-facing' };

/** One HTTP/1.1 request over a fresh TCP connection to host:port (what a client of an NLB sends). */
function tcpGet(address: string, path = '/'): Promise<{ status: number; pod: string }> {
  const [host, port] = address.split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, pod: String(res.headers['x-lab-pod'] ?? '') }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${address}${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function svcHost(l: ShapesLab, ns: string, name: string): string | undefined {
  const svc = l.lab.store.get('Service', ns, name);
  return ((svc?.status as { loadBalancer?: { ingress?: Array<{ hostname?: string }> } } | undefined)?.loadBalancer?.ingress ?? [])[0]?.hostname;
}

function readyPods(l: ShapesLab, ns: string, app: string): number {
  return l.lab.store
    .list('Pod', ns)
    .items.filter((p) => p.metadata.labels?.app === app && !p.metadata.deletionTimestamp)
    .filter((p) => ((p.status as { conditions?: Array<{ type: string; status: string }> }).conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')).length;
}

describe('NLB Service: the LBC Service path and a TCP data plane', () => {
  let l: ShapesLab;
  let address = '';
  before(async () => {
    l = await shapesLab();
    await l.apply(namespace(NS), service(NS, 'echo', { type: 'LoadBalancer', annotations: NLB_ANN }));
    await waitFor(() => l.lab.store.list('TargetGroupBinding', NS).items.length === 1, { timeoutMs: 15_000, what: 'the TGB of the NLB Service' });
    await l.apply(deployment(NS, 'echo', { replicas: 2 }));
  });
  after(() => l.stop());

  test('one NLB, a TCP listener and target group per port with LBC defaults, a TGB named like the TG; hostname and finalizer on the Service', async () => {
    const host = await waitFor(() => svcHost(l, NS, 'echo'), { timeoutMs: 15_000, what: 'the Service status hostname' });
    assert.match(host, /^k8s-nlbapp-echo-[0-9a-f]{10}-[0-9a-f]{16}\.elb\.us-east-1\.amazonaws\.com$/);
    const svc = l.lab.store.get('Service', NS, 'echo')!;
    assert.deepEqual((svc.status as { loadBalancer: unknown }).loadBalancer, { ingress: [{ hostname: host, ports: [{ port: 80, protocol: 'TCP' }] }] });
    assert.deepEqual(svc.metadata.finalizers, ['service.k8s.aws/resources']);
    const lb = ((await l.elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers ?? []).find((x) => x.DNSName === host)!;
    assert.equal(lb.Type, 'network');
    assert.equal(lb.Scheme, 'internet-facing');
    assert.match(lb.LoadBalancerArn!, /:loadbalancer\/net\/k8s-nlbapp-echo-/);
    const listeners = (await l.elbv2.send(new DescribeListenersCommand({ LoadBalancerArn: lb.LoadBalancerArn! }))).Listeners ?? [];
    assert.deepEqual(listeners.map((x) => [x.Port, x.Protocol]), [[80, 'TCP']]);
    const tg = (await l.elbv2.send(new DescribeTargetGroupsCommand({ LoadBalancerArn: lb.LoadBalancerArn! }))).TargetGroups![0]!;
    assert.deepEqual(
      [tg.Protocol, tg.Port, tg.TargetType, tg.HealthCheckProtocol, tg.HealthCheckPort, tg.HealthCheckIntervalSeconds, tg.HealthCheckTimeoutSeconds, tg.HealthyThresholdCount, tg.UnhealthyThresholdCount, tg.HealthCheckPath],
      ['TCP', 8080, 'ip', 'TCP', 'traffic-port', 10, 10, 3, 3, undefined],
    );
    const [tgb] = l.lab.store.list('TargetGroupBinding', NS).items;
    assert.equal(tgb!.metadata.name, tg.TargetGroupName);
    assert.deepEqual(tgb!.metadata.labels, { 'service.k8s.aws/stack-namespace': NS, 'service.k8s.aws/stack-name': 'echo' });
    assert.deepEqual((tgb!.spec as { serviceRef: unknown }).serviceRef, { name: 'echo', port: 80 });
  });

  test('pods get the gate, targets turn healthy on TCP checks, the gate goes True', async () => {
    await waitFor(() => readyPods(l, NS, 'echo') === 2, { timeoutMs: 30_000, what: 'two Ready echo pods' });
    const [tgb] = l.lab.store.list('TargetGroupBinding', NS).items;
    for (const p of l.lab.store.list('Pod', NS).items) {
      const gates = ((p.spec as { readinessGates?: Array<{ conditionType: string }> }).readinessGates ?? []).map((g) => g.conditionType);
      assert.deepEqual(gates, [`target-health.elbv2.k8s.aws/${tgb!.metadata.name}`]);
    }
    const health = await l.targetHealth(String((tgb!.spec as { targetGroupARN: string }).targetGroupARN));
    assert.deepEqual(health.map((h) => h.TargetHealth?.State), ['healthy', 'healthy']);
  });

  test('lab.json lists the NLB with its TCP address; a bounded loop of TCP connections all reach a pod (both pods serve)', async () => {
    const s = await l.labJson();
    const nlb = s.loadBalancers.find((x) => x.type === 'network')!;
    assert.equal(nlb.createdBy, 'service');
    assert.deepEqual(nlb.services, [`${NS}/echo`]);
    assert.equal(nlb.url, undefined);
    assert.equal(nlb.listeners.length, 1);
    assert.match(nlb.listeners[0]!.address, /^127\.0\.0\.1:\d+$/);
    address = nlb.listeners[0]!.address;
    const pods = new Set<string>();
    const statuses: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const r = await tcpGet(address, `/req/${i}`);
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      pods.add(r.pod);
    }
    assert.deepEqual(statuses, { 200: 40 });
    assert.equal(pods.size, 2, [...pods].join());
    // A paced, bounded loop (40/s, 80 requests) through the NLB: zero failures.
    const t = new TrafficGenerator({ url: `http://${address}/loop`, ratePerSecond: 40, maxRequests: 80, maxDurationMs: 15_000, timeoutMs: 5_000 });
    t.start();
    const r = await t.finished();
    assert.equal(r.requests, 80);
    assert.equal(r.non2xx, 0, JSON.stringify(r.responses));
    const after = await l.labJson();
    assert.ok((after.loadBalancers.find((x) => x.type === 'network')!.responses.forwarded ?? 0) >= 120);
  });

  test('scale-down: the removed pod\'s target drains (Target.DeregistrationInProgress); connections keep reaching the remaining pod', async () => {
    const [tgb] = l.lab.store.list('TargetGroupBinding', NS).items;
    const arn = String((tgb!.spec as { targetGroupARN: string }).targetGroupARN);
    await l.apply(deployment(NS, 'echo', { replicas: 1 }));
    const h = await waitFor(
      async () => {
        const x = await l.targetHealth(arn);
        return x.some((d) => d.TargetHealth?.State === 'draining') ? x : undefined;
      },
      { timeoutMs: 20_000, what: 'a draining target' },
    );
    assert.equal(h.find((d) => d.TargetHealth?.State === 'draining')!.TargetHealth?.Reason, 'Target.DeregistrationInProgress');
    // Once the deregistration has reached the data plane, every connection goes to the healthy pod.
    await waitFor(async () => (await l.lab.alb.targetRecord(arn, h.find((d) => d.TargetHealth?.State === 'draining')!.Target!.Id!, 8080))?.routable === false, {
      timeoutMs: 10_000,
      what: 'the draining target out of the routing table',
    });
    for (let i = 0; i < 10; i++) assert.equal((await tcpGet(address)).status, 200);
  });

  test('an HTTP health check when annotated; loadBalancerClass service.k8s.aws/nlb is managed too', async () => {
    await l.apply(
      service(NS, 'classy', {
        type: 'LoadBalancer',
        loadBalancerClass: 'service.k8s.aws/nlb',
        annotations: {
          'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip',
          'service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol': 'HTTP',
          'service.beta.kubernetes.io/aws-load-balancer-healthcheck-path': '/healthz',
        },
      }),
    );
    const host = await waitFor(() => svcHost(l, NS, 'classy'), { timeoutMs: 15_000, what: 'the classy Service hostname' });
    const lb = ((await l.elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers ?? []).find((x) => x.DNSName === host)!;
    assert.equal(lb.Scheme, 'internal');
    const tg = (await l.elbv2.send(new DescribeTargetGroupsCommand({ LoadBalancerArn: lb.LoadBalancerArn! }))).TargetGroups![0]!;
    assert.deepEqual([tg.HealthCheckProtocol, tg.HealthCheckPath, tg.Matcher?.HttpCode], ['HTTP', '/healthz', '200-399']);
  });

  test('instance targets: FailedBuildModel (ClusterIP: LBC\'s own text; LoadBalancer: the lab has no nodes); a plain Service is left alone', async () => {
    await l.apply(
      service(NS, 'inst', { annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'external', 'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'instance' } }),
      service(NS, 'plain', { type: 'LoadBalancer' }),
    );
    const msgs = (): string[] =>
      l.lab.store
        .list('Event', NS)
        .items.filter((e) => e.reason === 'FailedBuildModel' && (e.involvedObject as { name?: string }).name === 'inst')
        .map((e) => String(e.message));
    await waitFor(() => msgs().length > 0, { timeoutMs: 10_000, what: 'a FailedBuildModel event on inst' });
    assert.deepEqual(msgs(), ['Failed build model due to unsupported service type "ClusterIP" for load balancer target type "instance"']);
    await new Promise((r) => setTimeout(r, l.lab.clock.ms(l.lab.clock.delay('lbcIngressReconcileSeconds')) * 2));
    assert.equal(svcHost(l, NS, 'plain'), undefined);
    assert.equal(l.lab.store.get('Service', NS, 'plain')!.metadata.finalizers, undefined);
  });

  test('deleting the Service: TGB, NLB and target group go, then the Service', async () => {
    const host = svcHost(l, NS, 'echo')!;
    await l.objects.delete({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: NS } });
    await waitFor(() => !l.lab.store.get('Service', NS, 'echo'), { timeoutMs: 20_000, what: 'the echo Service gone' });
    const lbs = (await l.elbv2.send(new DescribeLoadBalancersCommand({}))).LoadBalancers ?? [];
    assert.equal(lbs.find((x) => x.DNSName === host), undefined);
    assert.deepEqual(
      l.lab.store.list('TargetGroupBinding', NS).items.map((t) => t.metadata.labels?.['service.k8s.aws/stack-name']),
      ['classy'],
    );
  });
});

describe('NLB made through the ELBv2 API: the TCP data plane resets the client when the target refuses', () => {
  let l: ShapesLab;
  before(async () => {
    l = await shapesLab();
  });
  after(() => l.stop());

  test('no target → reset; a target that refuses (fail-open to the unhealthy target) → reset', async () => {
    const lb = (await l.elbv2.send(new CreateLoadBalancerCommand({ Name: 'tf-nlb', Type: 'network', Scheme: 'internal' }))).LoadBalancers![0]!;
    assert.match(lb.DNSName!, /^tf-nlb-[0-9a-f]{16}\.elb\.us-east-1\.amazonaws\.com$/);
    const tg = (
      await l.elbv2.send(new CreateTargetGroupCommand({ Name: 'tf-nlb-tg', Protocol: 'TCP', Port: 9, TargetType: 'ip', VpcId: 'vpc-0a1b2c3d4e5f60718', HealthCheckIntervalSeconds: 10, HealthCheckTimeoutSeconds: 10, UnhealthyThresholdCount: 2 }))
    ).TargetGroups![0]!;
    assert.equal(tg.HealthCheckProtocol, 'TCP');
    await l.elbv2.send(new CreateListenerCommand({ LoadBalancerArn: lb.LoadBalancerArn!, Port: 7000, Protocol: 'TCP', DefaultActions: [{ Type: 'forward', TargetGroupArn: tg.TargetGroupArn! }] }));
    const nlb = (await l.labJson()).loadBalancers.find((x) => x.name === 'tf-nlb')!;
    assert.equal(nlb.createdBy, 'api');
    const address = nlb.listeners[0]!.address;
    const outcome = (): Promise<string> =>
      new Promise((resolve) => {
        const [host, port] = address.split(':') as [string, string];
        const s = connect({ host, port: Number(port) });
        s.on('data', () => resolve('data'));
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        s.on('close', () => resolve('closed'));
        s.setTimeout(5000, () => {
          s.destroy();
          resolve('timeout');
        });
      });
    assert.equal(await outcome(), 'ECONNRESET');
    // A live pod's address on a port where nothing listens: the health checks fail, the NLB fails open to it, the
    // connect is refused.
    await l.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'raw' } }, deployment('raw', 'raw', { replicas: 1 }));
    const podIp = await waitFor(() => (l.lab.store.list('Pod', 'raw').items[0]?.status as { podIP?: string } | undefined)?.podIP, { timeoutMs: 15_000, what: 'the raw pod IP' });
    await l.elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: tg.TargetGroupArn!, Targets: [{ Id: podIp, Port: 9 }] }));
    await waitFor(async () => (await l.targetHealth(tg.TargetGroupArn!))[0]?.TargetHealth?.State === 'unhealthy', { timeoutMs: 20_000, what: 'the target unhealthy' });
    const h = (await l.targetHealth(tg.TargetGroupArn!))[0]!.TargetHealth!;
    assert.deepEqual([h.Reason, h.Description], ['Target.FailedHealthChecks', 'Health checks failed']);
    await waitFor(async () => l.lab.alb.targetRecord(tg.TargetGroupArn!, podIp, 9)?.routable, { timeoutMs: 10_000, what: 'the target in the routing table' });
    let seen = '';
    await waitFor(async () => (seen = await outcome()) === 'ECONNRESET' && (l.lab.alb.connectionStats(lb.LoadBalancerArn!)['reset-refused'] ?? 0) > 0, {
      describe: () => `${seen} ${JSON.stringify(l.lab.alb.connectionStats(lb.LoadBalancerArn!))}`,
      timeoutMs: 10_000,
      what: 'a reset after the refused target connection',
    });
  });
});
