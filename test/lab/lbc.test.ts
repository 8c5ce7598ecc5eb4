import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JsonObject, KubeObject } from '../../src/manifests/types.js';
import { AlbCloud } from '../../src/lab/alb/index.js';
import { awsAccount, startAwsApis, type AwsApis } from '../../src/lab/aws/index.js';
import { startLbc, type Lbc } from '../../src/lab/lbc/index.js';
import { ObjectStore } from '../../src/lab/store.js';
import { waitFor } from '../helpers/wait.js';
import { fastClock, httpGet, podServer, type PodServer } from './alb-helpers.js';
import { LabNetwork } from '../../src/lab/network.js';

/** Where the test pods' virtual addresses lead (the kubelet's job in a lab). */
const network = new LabNetwork();

const GATE = 'target-health.elbv2.k8s.aws';

function namespace(name: string, gated: boolean): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(gated ? { labels: { 'elbv2.k8s.aws/pod-readiness-gate-inject': 'enabled' } } : {}) } };
}

function service(ns: string, name: string, selector: Record<string, string>, extra: JsonObject = {}, annotations?: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
    spec: { selector, ports: [{ name: 'http', port: 80, targetPort: 18080, protocol: 'TCP' }], type: 'ClusterIP', ...extra },
  };
}

function tgb(ns: string, name: string, svc: string, targetType = 'ip'): KubeObject {
  return {
    apiVersion: 'elbv2.k8s.aws/v1beta1',
    kind: 'TargetGroupBinding',
    metadata: { name, namespace: ns },
    spec: { targetGroupARN: `arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/${name}/0123456789abcdef`, targetType, serviceRef: { name: svc, port: 80 } },
  };
}

function pod(ns: string, name: string, labels: Record<string, string>, ip?: string, gates: string[] = []): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels },
    spec: { containers: [{ name: 'app', image: 'lab/echo:1', ports: [{ containerPort: 18080 }] }], ...(gates.length ? { readinessGates: gates.map((conditionType) => ({ conditionType })) } : {}) },
    ...(ip
      ? {
          status: {
            phase: 'Running',
            podIP: ip,
            conditions: [
              { type: 'ContainersReady', status: 'True' },
              { type: 'Ready', status: 'False', reason: 'ReadinessGatesNotReady' },
            ],
          },
        }
      : {}),
  };
}

function gatesOf(p: KubeObject | undefined): string[] {
  const spec = (p?.spec ?? {}) as JsonObject;
  return ((spec.readinessGates as JsonObject[] | undefined) ?? []).map((g) => String(g.conditionType));
}

function condition(store: ObjectStore, ns: string, name: string, type: string): JsonObject | undefined {
  const p = store.get('Pod', ns, name);
  return (((p?.status as JsonObject | undefined)?.conditions as JsonObject[] | undefined) ?? []).find((c) => c.type === type);
}

function events(store: ObjectStore, ns: string, reason: string): string[] {
  return store
    .list('Event', ns)
    .items.filter((e) => e.reason === reason)
    .map((e) => String(e.message));
}

function endpointSlice(ns: string, svc: string, endpoints: Array<{ ip: string; pod: string; ready: boolean; terminating?: boolean }>, port = 18080): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${svc}-abcde`, namespace: ns, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    ports: [{ name: 'http', port, protocol: 'TCP' }],
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: { ready: e.ready, serving: e.ready || !!e.terminating, terminating: !!e.terminating },
      targetRef: { kind: 'Pod', namespace: ns, name: e.pod },
    })),
  };
}

describe('LBC readiness-gate webhook', () => {
  const clock = fastClock();
  let store: ObjectStore;
  let alb: AlbCloud;
  let lbc: Lbc;

  before(() => {
    store = new ObjectStore();
    alb = new AlbCloud({ clock, region: 'us-east-1', network });
    lbc = startLbc({ store, clock, alb, region: 'us-east-1', clusterName: 'lab', webhookEnabled: true });
    store.create('Namespace', namespace('gated', true));
    store.create('Namespace', namespace('plain', false));
    store.create('Service', service('gated', 'echo', { app: 'echo' }));
    store.create('Service', service('gated', 'nosel', {}));
    store.create('Service', service('plain', 'echo', { app: 'echo' }));
  });
  after(async () => {
    await lbc.stop();
    await alb.stop();
  });

  test('the MutatingWebhookConfiguration exists', () => {
    const mwc = store.get('MutatingWebhookConfiguration', '', 'aws-load-balancer-webhook');
    assert.ok(mwc);
    assert.equal(((mwc.webhooks as JsonObject[])[0] as JsonObject).name, 'mpod.elbv2.k8s.aws');
  });

  test('a gate is injected only with a labelled namespace, an existing ip TGB and a matching selector', () => {
    const before = store.create('Pod', pod('gated', 'early', { app: 'echo' }));
    assert.deepEqual(gatesOf(before), [], 'no TGB yet: no gate, and none is added later');
    store.create('TargetGroupBinding', tgb('gated', 'k8s-gated-echo-0123456789', 'echo'));
    store.create('TargetGroupBinding', tgb('gated', 'k8s-gated-nosel-0123456789', 'nosel'));
    store.create('TargetGroupBinding', tgb('gated', 'k8s-gated-inst-0123456789', 'echo', 'instance'));
    store.create('TargetGroupBinding', tgb('plain', 'k8s-plain-echo-0123456789', 'echo'));
    const p = store.create('Pod', pod('gated', 'p1', { app: 'echo' }, undefined, ['target-health.alb.ingress.k8s.aws/old']));
    assert.deepEqual(gatesOf(p), [`${GATE}/k8s-gated-echo-0123456789`], 'ip TGB with matching selector only; legacy gate removed');
    assert.deepEqual(gatesOf(store.create('Pod', pod('gated', 'other', { app: 'other' }))), []);
    assert.deepEqual(gatesOf(store.create('Pod', pod('plain', 'p2', { app: 'echo' }))), [], 'namespace not labelled');
    assert.deepEqual(gatesOf(store.get('Pod', 'gated', 'early')), []);
  });

  test('webhook down (failurePolicy Ignore): pods are admitted without gates', () => {
    lbc.setWebhookEnabled(false);
    try {
      assert.deepEqual(gatesOf(store.create('Pod', pod('gated', 'p3', { app: 'echo' }))), []);
    } finally {
      lbc.setWebhookEnabled(true);
    }
    assert.deepEqual(gatesOf(store.create('Pod', pod('gated', 'p4', { app: 'echo' }))), [`${GATE}/k8s-gated-echo-0123456789`]);
  });

  test('TGB immutable fields are enforced', () => {
    assert.throws(
      () =>
        store.mutate('TargetGroupBinding', 'gated', 'k8s-gated-echo-0123456789', (t) => {
          (t.spec as JsonObject).targetType = 'instance';
        }),
      /immutable fields: spec.targetType/,
    );
  });
});

describe('LBC Ingress and TargetGroupBinding reconcile', () => {
  const clock = fastClock();
  /** Moves the store's clock (creation timestamps) ahead of real time. */
  let clockOffsetMs = 0;
  let store: ObjectStore;
  let alb: AlbCloud;
  let apis: AwsApis;
  let lbc: Lbc;
  const servers: PodServer[] = [];

  before(async () => {
    store = new ObjectStore({ now: () => new Date(Date.now() + clockOffsetMs) });
    alb = new AlbCloud({ clock, region: 'us-east-1', network });
    apis = await startAwsApis({ alb, clock });
    lbc = startLbc({ store, clock, alb, region: 'us-east-1', clusterName: 'lab' });
  });
  after(async () => {
    await lbc.stop();
    await apis.stop();
    await alb.stop();
    await Promise.all(servers.map((s) => s.close()));
  });

  function ingress(ns: string, name: string, svc: string, annotations: Record<string, string>): KubeObject {
    return {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name, namespace: ns, annotations },
      spec: {
        ingressClassName: 'alb',
        rules: [{ http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: svc, port: { number: 80 } } } }] } }],
      },
    };
  }

  test('Ingress → ALB, TG, TGB, status; pods get gates, targets register, gate turns True; deletion cleans up', async () => {
    const server = await podServer(network, '127.0.200.81');
    servers.push(server);
    store.create('Namespace', namespace('shop', true));
    store.create('Service', service('shop', 'web', { app: 'web' }, { ports: [{ name: 'http', port: 80, targetPort: server.port, protocol: 'TCP' }] }));
    store.create(
      'Ingress',
      ingress('shop', 'web', 'web', {
        'alb.ingress.kubernetes.io/target-type': 'ip',
        'alb.ingress.kubernetes.io/healthcheck-path': '/healthz',
        'alb.ingress.kubernetes.io/target-group-attributes': 'deregistration_delay.timeout_seconds=30',
      }),
    );
    const binding = await waitFor(() => store.list('TargetGroupBinding', 'shop').items[0], { timeoutMs: 5000, what: 'TGB created' });
    assert.match(binding.metadata.name, /^k8s-shop-web-[0-9a-f]{10}$/);
    assert.deepEqual(binding.metadata.labels, { 'ingress.k8s.aws/stack-namespace': 'shop', 'ingress.k8s.aws/stack-name': 'web' });
    assert.ok((binding.metadata.finalizers as string[]).includes('elbv2.k8s.aws/resources'));
    const spec = binding.spec as JsonObject;
    assert.equal(spec.targetType, 'ip');
    assert.equal(spec.ipAddressType, 'ipv4');
    assert.deepEqual(spec.serviceRef, { name: 'web', port: 80 });
    const tgArn = String(spec.targetGroupARN);
    assert.match(tgArn, new RegExp(`:targetgroup/${binding.metadata.name}/[0-9a-f]{16}$`));

    const ing = await waitFor(() => {
      const i = store.get('Ingress', 'shop', 'web');
      const lb = ((i?.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress as JsonObject[] | undefined;
      return lb?.[0]?.hostname ? i : undefined;
    }, { timeoutMs: 5000, what: 'Ingress hostname' });
    const hostname = String((((ing.status as JsonObject).loadBalancer as JsonObject).ingress as JsonObject[])[0]!.hostname);
    assert.match(hostname, /^k8s-shop-web-[0-9a-f]{10}-\d{10}\.us-east-1\.elb\.amazonaws\.com$/);
    assert.ok((ing.metadata.finalizers as string[]).includes('ingress.k8s.aws/resources'));
    await waitFor(() => events(store, 'shop', 'SuccessfullyReconciled').includes('Successfully reconciled'), { timeoutMs: 5000, what: 'SuccessfullyReconciled event' });

    const account = awsAccount(alb);
    const tg = (await account.elbv2('DescribeTargetGroups', { TargetGroupArns: [tgArn] })).TargetGroups![0]!;
    assert.equal(tg.HealthCheckPath, '/healthz');
    assert.equal(tg.HealthCheckIntervalSeconds, 15);
    assert.equal(tg.HealthCheckTimeoutSeconds, 5);
    assert.equal(tg.HealthyThresholdCount, 2);
    assert.equal(tg.Port, server.port);
    const attrs = async (): Promise<Record<string, string>> =>
      Object.fromEntries(((await account.elbv2('DescribeTargetGroupAttributes', { TargetGroupArn: tgArn })).Attributes ?? []).map((x) => [x.Key!, x.Value!]));
    assert.equal((await attrs())['deregistration_delay.timeout_seconds'], '30');

    // a pod created now gets the gate; with containers ready it is registered while not Ready
    const created = store.create('Pod', pod('shop', 'web-1', { app: 'web' }, server.ip));
    const gate = `${GATE}/${binding.metadata.name}`;
    assert.deepEqual(gatesOf(created), [gate]);
    store.create('EndpointSlice', endpointSlice('shop', 'web', [{ ip: server.ip, pod: 'web-1', ready: false }], server.port));
    await waitFor(() => condition(store, 'shop', 'web-1', gate)?.status === 'False', { timeoutMs: 5000, what: 'gate False while registering' });
    const c0 = condition(store, 'shop', 'web-1', gate)!;
    assert.ok(['Elb.RegistrationInProgress', 'Elb.InitialHealthChecking'].includes(String(c0.reason)), `reason ${String(c0.reason)}`);
    await waitFor(() => condition(store, 'shop', 'web-1', gate)?.status === 'True', { timeoutMs: 5000, what: 'gate True once healthy' });
    const h = await account.elbv2('DescribeTargetHealth', { TargetGroupArn: tgArn });
    assert.deepEqual(h.TargetHealthDescriptions?.map((d) => [d.Target?.Id, d.TargetHealth?.State]), [[server.ip, 'healthy']]);
    const url = alb.dataPlaneUrlForHostname(hostname)!;
    await waitFor(async () => (await httpGet(`${url}/`)).status === 200, { timeoutMs: 5000, what: 'served through the ALB' });
    await waitFor(() => Number(((store.get('TargetGroupBinding', 'shop', binding.metadata.name)?.status ?? {}) as JsonObject).observedGeneration) === 1, {
      timeoutMs: 5000,
      what: 'observedGeneration',
    });

    assert.equal(apis.calls.elbv2.ModifyRule ?? 0, 0, 'steady state: rules are not rewritten');
    assert.equal(apis.calls.elbv2.ModifyListener ?? 0, 0, 'steady state: the listener is not rewritten');

    // removing the annotation key does not reset the attribute; the Service annotation wins as a whole value
    store.mutate('Ingress', 'shop', 'web', (i) => {
      i.metadata.annotations = { ...i.metadata.annotations, 'alb.ingress.kubernetes.io/target-group-attributes': 'slow_start.duration_seconds=30' };
    });
    await waitFor(async () => (await attrs())['slow_start.duration_seconds'] === '30', { timeoutMs: 5000, what: 'slow start applied' });
    assert.equal((await attrs())['deregistration_delay.timeout_seconds'], '30', 'not reset when removed from the annotation');
    store.mutate('Service', 'shop', 'web', (s) => {
      s.metadata.annotations = { 'alb.ingress.kubernetes.io/target-group-attributes': 'deregistration_delay.timeout_seconds=10' };
    });
    await waitFor(async () => (await attrs())['deregistration_delay.timeout_seconds'] === '10', { timeoutMs: 5000, what: 'Service annotation wins' });

    // a terminating endpoint is deregistered (draining)
    store.update('EndpointSlice', endpointSlice('shop', 'web', [{ ip: server.ip, pod: 'web-1', ready: false, terminating: true }], server.port));
    await waitFor(async () => (await account.elbv2('DescribeTargetHealth', { TargetGroupArn: tgArn })).TargetHealthDescriptions?.[0]?.TargetHealth?.State === 'draining', {
      timeoutMs: 5000,
      what: 'draining after the endpoint terminates',
    });
    assert.ok((apis.calls.byCaller.lbc?.['elbv2:DeregisterTargets'] ?? 0) >= 1);

    // deletion: TGB gone (gate released), ALB and TG gone, finalizer removed
    store.delete('Ingress', 'shop', 'web');
    await waitFor(() => !store.get('Ingress', 'shop', 'web'), { timeoutMs: 5000, what: 'Ingress removed after cleanup' });
    assert.equal(store.list('TargetGroupBinding', 'shop').items.length, 0);
    await assert.rejects(account.elbv2('DescribeTargetGroups', { TargetGroupArns: [tgArn] }), /not found/);
    assert.equal(alb.dataPlaneUrlForHostname(hostname), undefined);
    const released = condition(store, 'shop', 'web-1', gate);
    assert.equal(released?.status, 'True');
    assert.equal(released?.message, 'Target Group Binding is deleted');
  });

  test('a use-annotation backend forwards by the actions.<service> weights (Argo Rollouts\' ALB traffic routing): both Services get a TG and TGB, requests split by weight', async () => {
    const stable = await podServer(network, '127.0.200.91', (_req, res) => res.end('stable'));
    const canary = await podServer(network, '127.0.200.92', (_req, res) => res.end('canary'));
    servers.push(stable, canary);
    store.create('Namespace', namespace('argo', false));
    for (const [name, srv] of [['web-stable', stable], ['web-canary', canary], ['web-root', stable]] as const) {
      store.create('Service', service('argo', name, { app: name }, { ports: [{ name: 'http', port: 80, targetPort: srv.port, protocol: 'TCP' }] }));
    }
    const action = (canaryWeight: number): string =>
      // As Argo writes it: Go field names, ServicePort as a string.
      JSON.stringify({ Type: 'forward', ForwardConfig: { TargetGroups: [{ ServiceName: 'web-canary', ServicePort: '80', Weight: canaryWeight }, { ServiceName: 'web-stable', ServicePort: '80', Weight: 100 - canaryWeight }] } });
    store.create('Ingress', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'web', namespace: 'argo', annotations: { 'alb.ingress.kubernetes.io/target-type': 'ip', 'alb.ingress.kubernetes.io/actions.web-root': action(20) } },
      spec: { ingressClassName: 'alb', rules: [{ http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web-root', port: { name: 'use-annotation' } } } }] } }] },
    });
    const tgbs = await waitFor(() => {
      const items = store.list('TargetGroupBinding', 'argo').items;
      return items.length === 2 ? items : undefined;
    }, { timeoutMs: 5000, what: 'a TGB per Service of the action' });
    assert.deepEqual(tgbs.map((t) => ((t.spec as JsonObject).serviceRef as JsonObject).name).sort(), ['web-canary', 'web-stable'], 'none for the root Service');
    for (const [name, srv] of [['web-stable', stable], ['web-canary', canary]] as const) {
      store.create('Pod', pod('argo', name, { app: name }, srv.ip));
      store.create('EndpointSlice', endpointSlice('argo', name, [{ ip: srv.ip, pod: name, ready: true }], srv.port));
    }
    const account = awsAccount(alb);
    const arnOf = (svc: string): string => String((tgbs.find((t) => ((t.spec as JsonObject).serviceRef as JsonObject).name === svc)!.spec as JsonObject).targetGroupARN);
    for (const svc of ['web-stable', 'web-canary']) {
      await waitFor(async () => (await account.elbv2('DescribeTargetHealth', { TargetGroupArn: arnOf(svc) })).TargetHealthDescriptions?.[0]?.TargetHealth?.State === 'healthy', { timeoutMs: 5000, what: `${svc} target healthy` });
    }
    const hostname = await waitFor(() => {
      const lb = ((store.get('Ingress', 'argo', 'web')?.status as JsonObject | undefined)?.loadBalancer as JsonObject | undefined)?.ingress as JsonObject[] | undefined;
      return lb?.[0]?.hostname as string | undefined;
    }, { timeoutMs: 5000, what: 'Ingress hostname' });
    const url = alb.dataPlaneUrlForHostname(hostname)!;
    const lbArn = alb.loadBalancerArnForHostname(hostname)!;
    const listener = (await account.elbv2('DescribeListeners', { LoadBalancerArn: lbArn })).Listeners![0]!;
    const forwardOf = async (): Promise<Array<[string, number]>> => {
      const rule = (await account.elbv2('DescribeRules', { ListenerArn: listener.ListenerArn! })).Rules!.find((r) => !r.IsDefault)!;
      return (rule.Actions![0]!.ForwardConfig?.TargetGroups ?? []).map((t) => [t.TargetGroupArn!, Number(t.Weight)]);
    };
    assert.deepEqual(await forwardOf(), [[arnOf('web-canary'), 20], [arnOf('web-stable'), 80]]);
    const split = async (n: number): Promise<Record<string, number>> => {
      const seen: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        const r = await httpGet(`${url}/`);
        seen[r.body] = (seen[r.body] ?? 0) + 1;
      }
      return seen;
    };
    // Registration reaches the ALB's nodes with the propagation delay: wait until every node serves both.
    await waitFor(async () => {
      const seen = await split(30);
      return seen.canary !== undefined && seen.stable !== undefined && seen.canary + seen.stable === 30;
    }, { timeoutMs: 10000, what: 'both target groups serving' });
    const at20 = await split(200);
    assert.equal((at20.canary ?? 0) + (at20.stable ?? 0), 200, JSON.stringify(at20));
    assert.ok((at20.canary ?? 0) >= 20 && (at20.canary ?? 0) <= 60, `about 20% to the canary: ${JSON.stringify(at20)}`);
    // Argo's abort: all traffic back to stable
    store.mutate('Ingress', 'argo', 'web', (i) => {
      i.metadata.annotations = { ...i.metadata.annotations, 'alb.ingress.kubernetes.io/actions.web-root': action(0) };
    });
    await waitFor(async () => JSON.stringify(await forwardOf()) === JSON.stringify([[arnOf('web-canary'), 0], [arnOf('web-stable'), 100]]), { timeoutMs: 5000, what: 'weights 0/100' });
    assert.deepEqual(await split(50), { stable: 50 });
    // Argo's setHeaderRoute: a path first in the rule list for the route's action, with an http-header condition.
    store.mutate('Ingress', 'argo', 'web', (i) => {
      i.metadata.annotations = {
        ...i.metadata.annotations,
        'alb.ingress.kubernetes.io/actions.canary-probe': JSON.stringify({ Type: 'forward', ForwardConfig: { TargetGroups: [{ ServiceName: 'web-canary', ServicePort: '80', Weight: 100 }] } }),
        'alb.ingress.kubernetes.io/conditions.canary-probe': JSON.stringify([{ field: 'http-header', httpHeaderConfig: { httpHeaderName: 'X-Canary', values: ['1'] } }]),
      };
      const rules = (i.spec as JsonObject).rules as JsonObject[];
      const http = rules[0]!.http as JsonObject;
      http.paths = [{ path: '/*', pathType: 'ImplementationSpecific', backend: { service: { name: 'canary-probe', port: { name: 'use-annotation' } } } }, ...(http.paths as JsonObject[])];
    });
    // The route's rule and the moved root rule reach the ALB's nodes with the propagation delay: wait until every node has both.
    await waitFor(async () => {
      for (let i = 0; i < 10; i++) {
        if ((await httpGet(`${url}/`, 5000, { 'x-canary': '1' })).body !== 'canary' || (await httpGet(`${url}/`)).body !== 'stable') return false;
      }
      return true;
    }, { timeoutMs: 10000, what: 'the header route serving the canary, the root rule the stable' });
    const withHeader: Record<string, number> = {};
    const without: Record<string, number> = {};
    for (let i = 0; i < 30; i++) {
      const h = (await httpGet(`${url}/`, 5000, { 'X-Canary': '1' })).body;
      withHeader[h] = (withHeader[h] ?? 0) + 1;
      const n = (await httpGet(`${url}/`)).body;
      without[n] = (without[n] ?? 0) + 1;
    }
    assert.deepEqual(withHeader, { canary: 30 }, 'the header reaches the canary alone');
    assert.deepEqual(without, { stable: 30 }, 'without it, the weights (0/100) decide');
  });

  test('a use-annotation backend without its actions annotation, or with a broken one, is a build-model error (LBC\'s messages)', async () => {
    store.create('Namespace', namespace('noact', false));
    store.create('Service', service('noact', 'root', { app: 'x' }));
    const ing = (name: string, annotations: Record<string, string>): KubeObject => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name, namespace: 'noact', annotations: { 'alb.ingress.kubernetes.io/target-type': 'ip', ...annotations } },
      spec: { ingressClassName: 'alb', rules: [{ http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'root', port: { name: 'use-annotation' } } } }] } }] },
    });
    store.create('Ingress', ing('missing', {}));
    store.create('Ingress', ing('broken', { 'alb.ingress.kubernetes.io/actions.root': '{"type":' }));
    await waitFor(
      () => {
        const ev = events(store, 'noact', 'FailedBuildModel');
        return ev.includes('Failed build model due to missing actions.root configuration') && ev.some((m) => m.startsWith('Failed build model due to failed to parse json annotation, alb.ingress.kubernetes.io/actions.root: {"type":'));
      },
      { timeoutMs: 5000, what: 'FailedBuildModel events', describe: () => JSON.stringify(events(store, 'noact', 'FailedBuildModel')) },
    );
  });

  test('build-model errors are Warning events with LBC messages', async () => {
    store.create('Namespace', namespace('bad', false));
    store.create('Service', service('bad', 'svc', { app: 'x' }));
    store.create('Ingress', ingress('bad', 'tt', 'svc', { 'alb.ingress.kubernetes.io/target-type': 'pod' }));
    store.create('Ingress', ingress('bad', 'inst', 'svc', { 'alb.ingress.kubernetes.io/target-type': 'instance' }));
    store.create('Ingress', ingress('bad', 'nosvc', 'missing', { 'alb.ingress.kubernetes.io/target-type': 'ip' }));
    store.create('Ingress', ingress('bad', 'attrs', 'svc', { 'alb.ingress.kubernetes.io/target-type': 'ip', 'alb.ingress.kubernetes.io/target-group-attributes': 'deregistration_delay.timeout_seconds' }));
    const expected = [
      'Failed build model due to unknown targetType: pod',
      "Failed build model due to ingress: bad/inst: TargetGroup port is empty. When using Instance targets, your service be must of type 'NodePort' or 'LoadBalancer'",
      'Failed build model due to services "missing" not found',
      'Failed build model due to failed to parse stringMap annotation, alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds',
    ];
    await waitFor(() => expected.every((m) => events(store, 'bad', 'FailedBuildModel').includes(m)), {
      timeoutMs: 5000,
      what: 'FailedBuildModel events',
      describe: () => JSON.stringify(events(store, 'bad', 'FailedBuildModel')),
    });
    const ev = store.list('Event', 'bad').items.find((e) => e.reason === 'FailedBuildModel')!;
    assert.equal(ev.type, 'Warning');
    assert.equal(store.list('TargetGroupBinding', 'bad').items.length, 0);
  });

  /**
   * IP reuse (the VPC CNI gives a released pod IP to a new pod after its cooldown): when the controller sees the old
   * pod go and the new pod arrive on the same IP:port in one reconcile, the endpoint set's IP:ports are unchanged.
   * The real controller's checkpoint therefore hashes each endpoint with its pod's creation time
   * (`PodEndpoint.GetIdentifier(includeTimestamp)`), so the new pod is reconciled and its gate written; a checkpoint of
   * IP:ports alone skips the reconcile, the new pod's gate is never written and the rollout stalls.
   */
  test('the old pod gone and the new one on its IP:port in one reconcile: the new pod is reconciled and its gate turns True', async () => {
    const server = await podServer(network, '127.0.200.97');
    servers.push(server);
    store.create('Namespace', namespace('reuse', true));
    store.create('Service', service('reuse', 'web', { app: 'web' }, { ports: [{ name: 'http', port: 80, targetPort: server.port, protocol: 'TCP' }] }));
    store.create('Ingress', ingress('reuse', 'web', 'web', { 'alb.ingress.kubernetes.io/target-type': 'ip', 'alb.ingress.kubernetes.io/healthcheck-path': '/healthz' }));
    const binding = await waitFor(() => store.list('TargetGroupBinding', 'reuse').items[0], { timeoutMs: 5000, what: 'TGB created' });
    const gate = `${GATE}/${binding.metadata.name}`;
    store.create('Pod', pod('reuse', 'web-old', { app: 'web' }, server.ip));
    store.create('EndpointSlice', endpointSlice('reuse', 'web', [{ ip: server.ip, pod: 'web-old', ready: false }], server.port));
    await waitFor(() => condition(store, 'reuse', 'web-old', gate)?.status === 'True', { timeoutMs: 5000, what: 'the old pod gate True' });

    // A minute later (preStop, teardown, the CNI's 30 s cooldown) the old pod is gone and a new one has its IP, all
    // before the controller's next reconcile (a controller behind its queue, or a stalled process).
    clockOffsetMs += 60_000;
    store.removeNow('Pod', 'reuse', 'web-old');
    const created = store.create('Pod', pod('reuse', 'web-new', { app: 'web' }, server.ip));
    assert.deepEqual(gatesOf(created), [gate]);
    store.update('EndpointSlice', endpointSlice('reuse', 'web', [{ ip: server.ip, pod: 'web-new', ready: false }], server.port));

    await waitFor(() => condition(store, 'reuse', 'web-new', gate)?.status === 'True', {
      timeoutMs: 5000,
      what: "the new pod's gate True (never written when the reconcile is skipped as unchanged)",
    });
    const account = awsAccount(alb);
    const h = await account.elbv2('DescribeTargetHealth', { TargetGroupArn: String((binding.spec as JsonObject).targetGroupARN) });
    assert.deepEqual(h.TargetHealthDescriptions?.map((d) => [d.Target?.Id, d.Target?.Port, d.TargetHealth?.State]), [[server.ip, server.port, 'healthy']]);
  });

  test('throttling on the AWS API slows the controller, which retries until it converges', async () => {
    apis.setFaults({ elbv2: { throttleNext: 8, callers: ['lbc'] } });
    try {
      store.create('Namespace', namespace('slow', true));
      store.create('Service', service('slow', 'api', { app: 'api' }));
      store.create('Ingress', ingress('slow', 'api', 'api', { 'alb.ingress.kubernetes.io/target-type': 'ip' }));
      await waitFor(() => store.list('TargetGroupBinding', 'slow').items[0], { timeoutMs: 10000, what: 'TGB despite throttling' });
      assert.equal(apis.account.getFaults().elbv2?.throttleNext, 0);
      const throttled = Object.values(apis.calls.throttled).reduce((x, y) => x + y, 0);
      assert.ok(throttled >= 8, `throttled ${throttled}`);
    } finally {
      apis.setFaults({});
    }
  });
});

