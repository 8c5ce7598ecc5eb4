import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildModel,
  formatStringMap,
  parsePreStop,
  parseStringMap,
  resolveIntOrPercent,
  resolveRollingUpdate,
  routedDeployments,
} from '../../src/manifests/model.js';
import { app, loadExample, setOf } from '../fixtures/manifests.js';

describe('parseStringMap / formatStringMap', () => {
  it('splits on commas, the first "=", trims, and honours \\,', () => {
    assert.deepEqual(parseStringMap(' a = 1 ,b=x=y, c=one\\,two'), { a: '1', b: 'x=y', c: 'one,two' });
    assert.deepEqual(parseStringMap(''), {});
    assert.deepEqual(parseStringMap('k='), { k: '' });
  });
  it('rejects a pair without "=" or with an empty key, like the controller', () => {
    assert.throws(() => parseStringMap('a=1,b'), /not key=value/);
    assert.throws(() => parseStringMap('=1'), /not key=value/);
  });
  it('formats back in key order, escaping commas', () => {
    const raw = 'stickiness.enabled=true,deregistration_delay.timeout_seconds=30,x=a\\,b';
    const map = parseStringMap(raw);
    assert.deepEqual(Object.keys(map), ['stickiness.enabled', 'deregistration_delay.timeout_seconds', 'x']);
    assert.equal(formatStringMap(map), raw);
    assert.deepEqual(parseStringMap(formatStringMap({ ...map, x: 'c,d' })), { ...map, x: 'c,d' });
  });
});

describe('parsePreStop', () => {
  it('reads the sleep action and exec sleeps', () => {
    assert.deepEqual(parsePreStop({ lifecycle: { preStop: { sleep: { seconds: 20 } } } }), { kind: 'sleep', form: 'sleep-action', seconds: 20 });
    assert.deepEqual(parsePreStop({ lifecycle: { preStop: { exec: { command: ['/bin/sh', '-c', 'sleep 40'] } } } }), { kind: 'sleep', form: 'exec', seconds: 40 });
    assert.deepEqual(parsePreStop({ lifecycle: { preStop: { exec: { command: ['sleep', '40'] } } } }), { kind: 'sleep', form: 'exec', seconds: 40 });
    assert.deepEqual(parsePreStop({ lifecycle: { preStop: { exec: { command: ['sh', '-c', 'sleep 1m && nginx -s quit'] } } } }), { kind: 'sleep', form: 'exec', seconds: 60 });
  });
  it('reports none and unknown hooks', () => {
    assert.deepEqual(parsePreStop({ name: 'x' }), { kind: 'none' });
    assert.equal(parsePreStop({ lifecycle: { postStart: { exec: { command: ['true'] } } } }).kind, 'none');
    assert.equal(parsePreStop({ lifecycle: { preStop: { exec: { command: ['/drain.sh'] } } } }).kind, 'unknown');
    assert.equal(parsePreStop({ lifecycle: { preStop: { exec: { command: ['sh', '-c', 'nosleep 5'] } } } }).kind, 'unknown');
    assert.equal(parsePreStop({ lifecycle: { preStop: { httpGet: { path: '/stop', port: 80 } } } }).kind, 'unknown');
  });
});

describe('resolveIntOrPercent / resolveRollingUpdate', () => {
  it('rounds maxSurge up and maxUnavailable down', () => {
    assert.equal(resolveIntOrPercent('25%', 5, true), 2);
    assert.equal(resolveIntOrPercent('25%', 5, false), 1);
    assert.equal(resolveIntOrPercent(3, 5, false), 3);
    assert.equal(resolveIntOrPercent('100%', 3, false), 3);
  });
  it('makes maxUnavailable 1 when both resolve to 0', () => {
    assert.deepEqual(resolveRollingUpdate({ maxSurge: '10%', maxUnavailable: '10%' }, 1), { maxSurge: 1, maxUnavailable: 0 });
    assert.deepEqual(resolveRollingUpdate({ maxSurge: 0, maxUnavailable: '25%' }, 3), { maxSurge: 0, maxUnavailable: 1 });
  });
});

describe('buildModel', () => {
  it('links the naive 2048 example: namespace, Deployment, Service, Ingress, one ip target group with LBC defaults', async () => {
    const model = buildModel(await loadExample('naive'));
    assert.deepEqual(model.namespaces.map((n) => [n.name, n.gateLabel, n.loaded !== undefined]), [['game-2048', false, true]]);
    const [d] = model.deployments;
    assert.ok(d);
    assert.equal(d.replicas, 5);
    assert.equal(d.terminationGracePeriodSeconds, 30);
    assert.equal(d.gracePeriodExplicit, false);
    assert.equal(d.progressDeadlineSeconds, 600);
    assert.deepEqual(d.strategy, { type: 'RollingUpdate', maxSurge: '25%', maxUnavailable: '25%' });
    assert.deepEqual(d.containers[0]?.preStop, { kind: 'none' });
    assert.equal(d.containers[0]?.readinessProbe?.path, '/');
    assert.deepEqual(d.services, [{ namespace: 'game-2048', name: 'service-2048' }]);
    assert.equal(model.targetGroups.length, 1);
    const tg = model.targetGroups[0];
    assert.ok(tg);
    assert.equal(tg.key, 'game-2048/ingress-2048 → service-2048:80');
    assert.equal(tg.targetType, 'ip');
    assert.equal(tg.deregistrationDelaySeconds, undefined);
    assert.deepEqual(
      { ...tg.healthCheck },
      { path: '/', port: 'traffic-port', protocol: 'HTTP', intervalSeconds: 15, timeoutSeconds: 5, healthyThreshold: 2, unhealthyThreshold: 2, successCodes: '200' },
    );
    assert.deepEqual(tg.deployments.map((x) => x.name), ['deployment-2048']);
    assert.deepEqual(d.loaded.locate(d.containers[0]?.path ?? []), { file: 'examples/2048/naive/2-deployment.yaml', line: 22 });
  });

  it('reads the safe example exec preStop, grace period and explicit delay', async () => {
    const model = buildModel(await loadExample('safe'));
    assert.deepEqual(model.deployments[0]?.containers[0]?.preStop, { kind: 'sleep', form: 'exec', seconds: 40 });
    assert.equal(model.deployments[0]?.terminationGracePeriodSeconds, 70);
    assert.equal(model.targetGroups[0]?.deregistrationDelaySeconds, 30);
    assert.equal(model.namespaces[0]?.gateLabel, true);
  });

  it('lets Service annotations win over Ingress annotations, as whole values', () => {
    const model = buildModel(
      setOf(
        app({
          serviceAnnotations: 'alb.ingress.kubernetes.io/target-group-attributes: stickiness.enabled=true\nalb.ingress.kubernetes.io/healthcheck-path: /svc\nalb.ingress.kubernetes.io/target-type: instance\nalb.ingress.kubernetes.io/scheme: internal',
          ingressAnnotations: 'alb.ingress.kubernetes.io/target-type: ip\nalb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=20\nalb.ingress.kubernetes.io/healthcheck-interval-seconds: "7"',
        }),
      ),
    );
    const tg = model.targetGroups[0];
    assert.ok(tg);
    assert.deepEqual(tg.attributes, { 'stickiness.enabled': 'true' }, 'no per-key merge with the Ingress value');
    assert.equal(tg.deregistrationDelaySeconds, undefined);
    assert.equal(tg.attributesSource?.from.ref.kind, 'Service');
    assert.equal(tg.targetType, 'instance');
    assert.equal(tg.healthCheck.path, '/svc');
    assert.equal(tg.healthCheck.intervalSeconds, 7);
  });

  it('handles Argo Rollouts, named ports, default backends, forward actions, TargetGroupBindings and namespaces outside the manifests', () => {
    const model = buildModel(
      setOf({
        'all.yaml': `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: api, namespace: team}
spec:
  replicas: 3
  strategy:
    canary: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          ports: [{name: web, containerPort: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: team}
spec:
  selector: {app: api}
  ports: [{name: web, port: 8080, targetPort: web}]
---
apiVersion: v1
kind: Service
metadata: {name: canary, namespace: team}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: 9000}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: edge
  namespace: team
  annotations:
    kubernetes.io/ingress.class: alb
    alb.ingress.kubernetes.io/actions.split: '{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"canary","servicePort":"80","weight":10}]}}'
spec:
  defaultBackend:
    service: {name: api, port: {name: web}}
  rules:
    - http:
        paths:
          - path: /split
            pathType: Prefix
            backend: {service: {name: split, port: {name: use-annotation}}}
---
apiVersion: elbv2.k8s.aws/v1beta1
kind: TargetGroupBinding
metadata: {name: nlb, namespace: team}
spec:
  serviceRef: {name: api, port: 8080}
  targetType: ip
`,
      }),
    );
    const d = model.deployments[0];
    assert.ok(d);
    assert.equal(d.kind, 'Rollout');
    assert.deepEqual(d.strategy, { type: 'Canary', maxSurge: 1, maxUnavailable: 0 });
    assert.equal(model.ingresses[0]?.isAlb, true);
    assert.deepEqual(model.targetGroups.map((t) => [t.key, t.targetType]), [
      ['team/edge → api:web', 'instance'],
      ['team/edge → canary:80', 'instance'],
    ]);
    assert.equal(model.bindings[0]?.service?.name, 'api');
    assert.deepEqual(model.bindings[0]?.deployments.map((x) => x.name), ['api']);
    assert.deepEqual(model.namespaces.map((n) => [n.name, n.loaded === undefined]), [['team', true]]);
    const routed = routedDeployments(model);
    assert.equal(routed.length, 1);
    assert.deepEqual(routed[0]?.serving.map((c) => c.name), ['api']);
    assert.equal(routed[0]?.routes.length, 3);
  });

  it('does not route to pods a selector does not fully match, nor across namespaces', () => {
    const model = buildModel(setOf(app({ serviceSelector: 'app: web\ntier: back' })));
    assert.deepEqual(model.targetGroups[0]?.deployments, []);
    assert.deepEqual(model.deployments[0]?.services, []);
  });
});
