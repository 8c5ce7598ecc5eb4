import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from '../../src/manifests/types.js';
import { checkDeregistrationDelay } from '../../src/plan/checks/attributes.js';
import { checkCrdsEstablished } from '../../src/plan/checks/crd.js';
import { checkRouting } from '../../src/plan/checks/routing.js';
import { endpointPorts, targetOf } from '../../src/plan/checks/endpoints.js';
import { daemonSetRolloutStatus, statefulSetRolloutStatus } from '../../src/plan/checks/rollout-status.js';
import { checkDeployment, GATE_PREFIX, type WorkloadSnapshot, type WorkloadWatchView } from '../../src/plan/checks/workload.js';
import type { PlanRoute } from '../../src/plan/phases.js';

const k = (kind: string, name: string, namespace: string, rest: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): KubeObject =>
  ({ apiVersion: 'v1', kind, metadata: { name, namespace, ...meta }, ...rest }) as KubeObject;

const route: PlanRoute = { ingress: { namespace: 'shop', name: 'web' }, service: { namespace: 'shop', name: 'web' }, port: 80, targetType: 'ip', from: 'set' };
const ingress = (hostname?: string): KubeObject => k('Ingress', 'web', 'shop', hostname ? { status: { loadBalancer: { ingress: [{ hostname }] } } } : {});
const tgb = (targetType = 'ip', port: number | string = 80): KubeObject =>
  k('TargetGroupBinding', 'k8s-shop-web-1', 'shop', { spec: { serviceRef: { name: 'web', port }, targetType, targetGroupARN: 'arn:tg/1' } }, { labels: { 'ingress.k8s.aws/stack-namespace': 'shop', 'ingress.k8s.aws/stack-name': 'web' } });

describe('checkRouting', () => {
  const snap = (over: Partial<Parameters<typeof checkRouting>[1]> = {}) => ({ ingresses: [], bindings: [], events: [], services: new Map(), startedAt: 0, ...over });

  it('waits for the hostname and the binding, then reports both', () => {
    const pending = checkRouting([route], snap({ ingresses: [ingress()] }), 'inject');
    assert.equal(pending.result.done, false);
    assert.match(pending.result.message, /ALB hostname for Ingress shop\/web; TargetGroupBinding for Service shop\/web port 80/);
    const done = checkRouting([route], snap({ ingresses: [ingress('alb-1.example')], bindings: [tgb()] }), 'inject');
    assert.equal(done.result.done, true);
    assert.equal(done.hostnames.get('shop/web'), 'alb-1.example');
    assert.deepEqual(done.bindings.map((b) => [b.name, b.arn, b.targetType]), [['k8s-shop-web-1', 'arn:tg/1', 'ip']]);
  });

  it('tells two Ingresses on one Service port apart by the controller\'s stack labels, and finds a user binding by name', () => {
    const other: PlanRoute = { ...route, ingress: { namespace: 'shop', name: 'admin' } };
    const adminTgb = { ...tgb(), metadata: { name: 'k8s-shop-web-2', namespace: 'shop', labels: { 'ingress.k8s.aws/stack-namespace': 'shop', 'ingress.k8s.aws/stack-name': 'admin' } }, spec: { serviceRef: { name: 'web', port: 80 }, targetType: 'ip', targetGroupARN: 'arn:tg/2' } } as KubeObject;
    const admin = k('Ingress', 'admin', 'shop', { status: { loadBalancer: { ingress: [{ hostname: 'h2' }] } } });
    const both = checkRouting([route, other], snap({ ingresses: [ingress('h'), admin], bindings: [adminTgb, tgb()] }), 'inject');
    assert.deepEqual(both.bindings.map((b) => b.arn), ['arn:tg/1', 'arn:tg/2']);
    const mine = { ...tgb(), metadata: { name: 'from-terraform', namespace: 'shop' }, spec: { serviceRef: { name: 'web', port: 80 }, targetType: 'ip', targetGroupARN: 'arn:tg/tf' } } as KubeObject;
    const userRoute: PlanRoute = { binding: { namespace: 'shop', name: 'from-terraform' }, service: route.service, port: 80, targetType: 'ip', from: 'cluster' };
    const found = checkRouting([userRoute], snap({ bindings: [mine, tgb()] }), 'inject');
    assert.deepEqual(found.bindings.map((b) => b.arn), ['arn:tg/tf']);
    // The user's binding is not mistaken for the controller's one of an Ingress on the same port.
    assert.equal(checkRouting([route], snap({ ingresses: [ingress('h')], bindings: [mine] }), 'inject').result.done, false);
  });

  it('matches a binding that names the port the Ingress gives by number', () => {
    const services = new Map([['shop/web', k('Service', 'web', 'shop', { spec: { ports: [{ name: 'http', port: 80 }] } })]]);
    assert.equal(checkRouting([route], snap({ ingresses: [ingress('h')], bindings: [tgb('ip', 'http')], services }), 'inject').result.done, true);
  });

  it('fails at once on an instance binding when gates are used, and on a FailedBuildModel event', () => {
    const inst = checkRouting([route], snap({ ingresses: [ingress('h')], bindings: [tgb('instance')] }), 'inject');
    assert.equal(inst.result.failed, true);
    assert.match(inst.result.message, /readiness gates only work with ip targets/);
    assert.equal(checkRouting([route], snap({ ingresses: [ingress('h')], bindings: [tgb('instance')] }), 'off').result.done, true);
    const event = k('Event', 'e1', 'shop', { involvedObject: { kind: 'Ingress', name: 'web' }, reason: 'FailedBuildModel', message: 'bad annotation', lastTimestamp: new Date(1000).toISOString() });
    const rejected = checkRouting([route], snap({ events: [event], startedAt: 1000 }), 'inject');
    assert.equal(rejected.result.failed, true);
    assert.match(rejected.result.message, /FailedBuildModel — bad annotation/);
  });
});

describe('checkDeployment', () => {
  const gate = `${GATE_PREFIX}k8s-shop-web-1`;
  const binding = { route, name: 'k8s-shop-web-1', arn: 'arn:tg/1', targetType: 'ip' };
  const view: WorkloadWatchView = { namespace: 'shop', name: 'web', selector: 'app=web', bindings: [binding], oldPodUids: new Set(), oldPodIps: new Set(), expectedGates: [gate] };
  const deployment = (status: Record<string, unknown>): KubeObject =>
    k('Deployment', 'web', 'shop', { spec: { replicas: 1 }, status: { observedGeneration: 1, ...status } }, { uid: 'd1', generation: 1, annotations: { 'deployment.kubernetes.io/revision': '2' } });
  const rs = k('ReplicaSet', 'web-abc', 'shop', {}, { annotations: { 'deployment.kubernetes.io/revision': '2' }, labels: { 'pod-template-hash': 'abc' }, ownerReferences: [{ uid: 'd1' }] });
  const pod = (gates: string[], ready: boolean): KubeObject =>
    k(
      'Pod',
      'web-abc-1',
      'shop',
      {
        spec: { readinessGates: gates.map((g) => ({ conditionType: g })) },
        status: {
          podIP: '10.0.0.5',
          containerStatuses: [{ name: 'app', ready, state: { running: {} } }],
          conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }, ...gates.map((g) => ({ type: g, status: ready ? 'True' : 'False' }))],
        },
      },
      { uid: 'p1', labels: { 'pod-template-hash': 'abc' } },
    );
  const slice = k('EndpointSlice', 'web-x', 'shop', { endpoints: [{ addresses: ['10.0.0.5'], conditions: { ready: true } }] }, { labels: { 'kubernetes.io/service-name': 'web' } });
  const snap = (over: Partial<WorkloadSnapshot>): WorkloadSnapshot => ({ workload: undefined, replicaSets: [rs], pods: [], slices: [], health: new Map(), ...over });
  const complete = { replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 };

  it('is done when the rollout is complete, the gate True, the target healthy and equal to the ready endpoints', () => {
    const v = checkDeployment(view, snap({ workload: deployment(complete), pods: [pod([gate], true)], slices: [slice], health: new Map([['arn:tg/1', [{ id: '10.0.0.5', port: 8080, state: 'healthy' }]]]) }));
    assert.equal(v.result.done, true, v.result.message);
    assert.equal(v.revision, 2);
    assert.deepEqual(v.newPods.map((p) => p.metadata.name), ['web-abc-1']);
  });

  it('waits while a target is initial or an old target drains, saying which', () => {
    const health = new Map([['arn:tg/1', [{ id: '10.0.0.5', port: 8080, state: 'initial' }, { id: '10.0.0.4', port: 8080, state: 'draining' }]]]);
    const v = checkDeployment(view, snap({ workload: deployment(complete), pods: [pod([gate], true)], slices: [slice], health }));
    assert.equal(v.result.done, false);
    assert.match(v.result.message, /1 target\(s\) initial: 10\.0\.0\.5:8080/);
    assert.match(v.result.message, /draining .*10\.0\.0\.4:8080/);
  });

  it('a new pod on a reused IP: its own record, not the old pod\'s draining one on the same IP and port', () => {
    const health = new Map([['arn:tg/1', [{ id: '10.0.0.5', port: 8080, state: 'draining' }, { id: '10.0.0.5', port: 8080, state: 'initial' }]]]);
    const v = checkDeployment(view, snap({ workload: deployment(complete), pods: [pod([gate], true)], slices: [slice], health }));
    assert.equal(v.result.done, false);
    assert.match(v.result.message, /1 target\(s\) initial: 10\.0\.0\.5:8080/);
    assert.doesNotMatch(v.result.message, /target\(s\) draining: /, 'the old record is reported as an old target, not as the new pod\'s');
  });

  it('fails at once when a new pod lacks the readiness gate (the webhook did not run)', () => {
    const v = checkDeployment(view, snap({ workload: deployment(complete), pods: [pod([], true)] }));
    assert.equal(v.result.failed, true);
    assert.match(v.result.message, /was created without it/);
  });

  it('judges no pod until the controller observed the spec just written (a rollback over crash-looping pods)', () => {
    const crashing = k(
      'Pod',
      'web-abc-1',
      'shop',
      { spec: {}, status: { podIP: '10.0.0.5', containerStatuses: [{ name: 'app', ready: false, restartCount: 5, state: { waiting: { reason: 'CrashLoopBackOff' } } }] } },
      { uid: 'p1', labels: { 'pod-template-hash': 'abc' } },
    );
    // generation 2 written (the rollback), the controller has observed 1: revision 2 (the failed release) is still "new".
    const unobserved = k('Deployment', 'web', 'shop', { spec: { replicas: 1 }, status: { observedGeneration: 1, replicas: 1 } }, { uid: 'd1', generation: 2, annotations: { 'deployment.kubernetes.io/revision': '2' } });
    const v = checkDeployment({ ...view, bindings: [], expectedGates: [] }, snap({ workload: unobserved, pods: [crashing] }));
    assert.equal(v.result.done, false);
    assert.equal(v.result.failed, undefined, v.result.message);
    assert.match(v.result.message, /waiting for deployment "web" spec update to be observed/);
    assert.deepEqual(v.newPods, []);
    // Once observed at the same revision, the crash loop is the new pods' own: it fails at once.
    const observed = checkDeployment({ ...view, bindings: [], expectedGates: [] }, snap({ workload: deployment({ replicas: 1 }), pods: [crashing] }));
    assert.equal(observed.result.failed, true, observed.result.message);
    assert.match(observed.result.message, /crash-loop/);
  });

  it('waits for kubectl\'s rollout rule before anything else is done', () => {
    const v = checkDeployment({ ...view, bindings: [], expectedGates: [] }, snap({ workload: deployment({ replicas: 2, updatedReplicas: 1, availableReplicas: 1 }), pods: [pod([], true)] }));
    assert.equal(v.result.done, false);
    assert.match(v.result.message, /1 old replicas are pending termination/);
  });
});

describe('checkCrdsEstablished and checkDeregistrationDelay', () => {
  it('waits for Established, fails on names not accepted', () => {
    const crd = (conditions: unknown[]): KubeObject => k('CustomResourceDefinition', 'widgets.example.com', '', { status: { conditions } });
    assert.equal(checkCrdsEstablished(['widgets.example.com'], new Map()).done, false);
    assert.equal(checkCrdsEstablished(['widgets.example.com'], new Map([['widgets.example.com', crd([{ type: 'Established', status: 'True' }])]])).done, true);
    const clash = checkCrdsEstablished(['widgets.example.com'], new Map([['widgets.example.com', crd([{ type: 'NamesAccepted', status: 'False', reason: 'MultipleNamesNotAllowed' }])]]));
    assert.equal(clash.failed, true);
  });

  it('compares the deregistration delay AWS holds with the manifests', () => {
    assert.equal(checkDeregistrationDelay({ name: 'tg' }, 20, { 'deregistration_delay.timeout_seconds': '20' }).done, true);
    const off = checkDeregistrationDelay({ name: 'tg' }, 20, { 'deregistration_delay.timeout_seconds': '300' });
    assert.equal(off.failed, true);
    assert.match(off.message, /has deregistration_delay\.timeout_seconds=300 on AWS, expected 20/);
  });
});

describe('NLB Services (the controller\'s Service path)', () => {
  it('makes one route per Service port and finds the binding the controller labels with the Service', async () => {
    const { planRoutes } = await import('../../src/plan/index.js');
    const { buildModel } = await import('../../src/manifests/model.js');
    const { setOf } = await import('../fixtures/manifests.js');
    const set = setOf({
      'svc.yaml': `apiVersion: v1
kind: Service
metadata:
  name: tcp
  namespace: shop
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip
spec:
  type: LoadBalancer
  selector: { app: tcp }
  ports: [{ name: a, port: 5000 }, { name: b, port: 6000 }]
`,
    });
    const routes = planRoutes(buildModel(set));
    assert.deepEqual(routes.map((r) => [r.nlb, r.service.name, r.port, r.targetType]), [[true, 'tcp', 5000, 'ip'], [true, 'tcp', 6000, 'ip']]);
    const nlbTgb = (port: number): KubeObject =>
      k('TargetGroupBinding', `k8s-shop-tcp-${port}`, 'shop', { spec: { serviceRef: { name: 'tcp', port }, targetType: 'ip', targetGroupARN: `arn:nlb/${port}` } }, { labels: { 'service.k8s.aws/stack-namespace': 'shop', 'service.k8s.aws/stack-name': 'tcp' } });
    const snap = { ingresses: [], bindings: [nlbTgb(5000)], events: [], services: new Map(), startedAt: 0 };
    const half = checkRouting(routes, snap, 'inject');
    assert.equal(half.result.done, false);
    assert.match(half.result.message, /TargetGroupBinding for Service shop\/tcp port 6000 \(created by the controller with the NLB\)/);
    const done = checkRouting(routes, { ...snap, bindings: [nlbTgb(5000), nlbTgb(6000)] }, 'inject');
    assert.deepEqual(done.bindings.map((b) => b.arn), ['arn:nlb/5000', 'arn:nlb/6000']);
  });
});

describe('kubectl\'s rollout rules for StatefulSets and DaemonSets', () => {
  const sts = (spec: Record<string, unknown>, status: Record<string, unknown>, generation = 2): KubeObject => k('StatefulSet', 'db', 'shop', { spec, status }, { generation });
  it('StatefulSet: observed, every replica ready, then the pods from the partition up updated', () => {
    const rolling = { replicas: 3, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1 } } };
    assert.match(statefulSetRolloutStatus(sts(rolling, { observedGeneration: 1 })).message, /spec of statefulset "db" to be observed/);
    assert.match(statefulSetRolloutStatus(sts(rolling, { observedGeneration: 2, readyReplicas: 2 })).message, /1 pod\(s\) of statefulset "db" not ready/);
    const partial = statefulSetRolloutStatus(sts(rolling, { observedGeneration: 2, readyReplicas: 3, updatedReplicas: 1 }));
    assert.equal(partial.done, false);
    assert.match(partial.message, /1 of 2 new pod\(s\) updated/);
    // Pod 0 stays at the old revision below the partition: the rollout is complete at 2 updated.
    assert.equal(statefulSetRolloutStatus(sts(rolling, { observedGeneration: 2, readyReplicas: 3, updatedReplicas: 2, currentRevision: 'db-a', updateRevision: 'db-b' })).done, true);
    // Without a rollingUpdate block: the update revision must become the current one.
    const plain = { replicas: 2, updateStrategy: { type: 'RollingUpdate' } };
    assert.equal(statefulSetRolloutStatus(sts(plain, { observedGeneration: 2, readyReplicas: 2, updatedReplicas: 2, currentRevision: 'db-a', updateRevision: 'db-b' })).done, false);
    assert.equal(statefulSetRolloutStatus(sts(plain, { observedGeneration: 2, readyReplicas: 2, updatedReplicas: 2, currentReplicas: 2, currentRevision: 'db-b', updateRevision: 'db-b' })).done, true);
  });

  it('DaemonSet: observed, every scheduled pod updated, then available', () => {
    const ds = (status: Record<string, unknown>): KubeObject => k('DaemonSet', 'agent', 'shop', { spec: {}, status }, { generation: 3 });
    assert.match(daemonSetRolloutStatus(ds({ observedGeneration: 2 })).message, /to be observed/);
    assert.match(daemonSetRolloutStatus(ds({ observedGeneration: 3, desiredNumberScheduled: 2, updatedNumberScheduled: 1 })).message, /1 of 2 new pod\(s\) updated/);
    assert.match(daemonSetRolloutStatus(ds({ observedGeneration: 3, desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 1 })).message, /1 of 2 updated pod\(s\) available/);
    assert.equal(daemonSetRolloutStatus(ds({ observedGeneration: 3, desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 2 })).done, true);
  });

  it('checkDeployment on a StatefulSet: the new pods are those at the update revision, and each must be a healthy target', () => {
    const owner = { uid: 'sts-1' };
    const set = k('StatefulSet', 'db', 'shop', { spec: { replicas: 1, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } } }, status: { observedGeneration: 2, readyReplicas: 1, updatedReplicas: 1, currentRevision: 'db-b', updateRevision: 'db-b' } }, { generation: 2, ...owner });
    const cr = k('ControllerRevision', 'db-b', 'shop', { revision: 2 }, { ownerReferences: [{ uid: 'sts-1', controller: true }] });
    const p = k('Pod', 'db-0', 'shop', { spec: {}, status: { podIP: '10.0.0.9', containerStatuses: [{ name: 'app', ready: true, state: { running: {} } }], conditions: [{ type: 'Ready', status: 'True' }] } }, { labels: { 'controller-revision-hash': 'db-b' }, uid: 'p1' });
    const old = k('Pod', 'db-1', 'shop', { spec: {}, status: { podIP: '10.0.0.8' } }, { labels: { 'controller-revision-hash': 'db-a' }, uid: 'p0' });
    const view: WorkloadWatchView = { kind: 'StatefulSet', namespace: 'shop', name: 'db', selector: 'app=db', bindings: [{ route, name: 'tg', arn: 'arn:tg/1', targetType: 'ip' }], oldPodUids: new Set(), oldPodIps: new Set(), expectedGates: [] };
    const slice = k('EndpointSlice', 's', 'shop', { endpoints: [{ addresses: ['10.0.0.9'], conditions: { ready: true } }] }, { labels: { 'kubernetes.io/service-name': 'web' } });
    const base: WorkloadSnapshot = { workload: set, replicaSets: [], controllerRevisions: [cr], pods: [p, old], slices: [slice], health: new Map() };
    const pending = checkDeployment(view, { ...base, health: new Map([['arn:tg/1', [{ id: '10.0.0.9', port: 8080, state: 'initial' }]]]) });
    assert.equal(pending.revision, 2);
    assert.deepEqual(pending.newPods.map((x) => x.metadata.name), ['db-0']);
    assert.equal(pending.result.done, false);
    const done = checkDeployment(view, { ...base, health: new Map([['arn:tg/1', [{ id: '10.0.0.9', port: 8080, state: 'healthy' }]]]) });
    assert.equal(done.result.done, true, done.result.message);
  });
});

describe('targetOf (a target record for an endpoint)', () => {
  const slice = k('EndpointSlice', 'web-x', 'shop', { ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['10.0.0.5'] }, { addresses: ['10.0.0.6'], conditions: { ready: false } }] }, { labels: { 'kubernetes.io/service-name': 'web' } });

  it('matches IP and port, preferring the record that is not draining', () => {
    const ports = endpointPorts([slice], 'web');
    assert.deepEqual([...(ports.get('10.0.0.5') ?? [])], [8080]);
    assert.deepEqual([...(ports.get('10.0.0.6') ?? [])], [8080]);
    const targets = [
      { id: '10.0.0.5', port: 9090, state: 'healthy' },
      { id: '10.0.0.5', port: 8080, state: 'draining' },
      { id: '10.0.0.5', port: 8080, state: 'initial' },
    ];
    assert.deepEqual(targetOf(targets, '10.0.0.5', ports.get('10.0.0.5')), { id: '10.0.0.5', port: 8080, state: 'initial' });
    assert.deepEqual(targetOf(targets.slice(0, 2), '10.0.0.5', ports.get('10.0.0.5')), { id: '10.0.0.5', port: 8080, state: 'draining' }, 'only the draining one: it is reported');
    assert.equal(targetOf(targets, '10.0.0.7', new Set([8080])), undefined);
    assert.equal(targetOf(targets, undefined), undefined);
    assert.deepEqual(targetOf(targets, '10.0.0.5')?.state, 'healthy', 'no port known: the IP on any port, not draining first');
  });
});
