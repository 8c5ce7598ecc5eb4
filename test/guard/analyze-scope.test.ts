import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JsonObject, KubeObject } from '../../src/manifests/types.js';
import { backendServiceNames, forwardServiceNames, rolloutIngressNames, rolloutScope } from '../../src/guard/analyze.js';

const ingress = (annotations: Record<string, string>, backend: JsonObject, hostname?: string): KubeObject => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'Ingress',
  metadata: { name: 'web', namespace: 'shop', annotations },
  spec: { rules: [{ http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: backend } }] } }] },
  ...(hostname ? { status: { loadBalancer: { ingress: [{ hostname }] } } } : {}),
});

const argoAction = JSON.stringify({ Type: 'forward', ForwardConfig: { TargetGroups: [{ ServiceName: 'web-canary', ServicePort: '80', Weight: 20 }, { ServiceName: 'web-stable', ServicePort: '80', Weight: 80 }] } });

describe('analyze: what is judged', () => {
  it('an Ingress backend with use-annotation sends to the Services of its actions.<service> forward (Argo writes Go field names)', () => {
    assert.deepEqual(backendServiceNames(ingress({ 'alb.ingress.kubernetes.io/actions.web-root': argoAction }, { name: 'web-root', port: { name: 'use-annotation' } })), ['web-canary', 'web-stable']);
    assert.deepEqual(backendServiceNames(ingress({}, { name: 'web', port: { number: 80 } })), ['web']);
    assert.deepEqual(backendServiceNames(ingress({}, { name: 'web-root', port: { name: 'use-annotation' } })), [], 'no annotation: nothing to judge (LBC reports it)');
    assert.deepEqual(forwardServiceNames('{"type":"forward","forwardConfig":{"targetGroups":[{"serviceName":"a","servicePort":80}]}}'), ['a']);
    assert.deepEqual(forwardServiceNames('{not json'), []);
  });

  it('an Argo canary with ALB traffic routing: the canary Service is judged, stable is the baseline, the Ingress gives the hostname', () => {
    const ro: KubeObject = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Rollout',
      metadata: { name: 'web', namespace: 'shop' },
      spec: { strategy: { canary: { canaryService: 'web-canary', stableService: 'web-stable', trafficRouting: { alb: { ingress: 'web', rootService: 'web-root', servicePort: 80 } } } } },
    };
    assert.deepEqual(rolloutIngressNames(ro), ['web']);
    const scope = rolloutScope(ro, [ingress({}, { name: 'web-root', port: { name: 'use-annotation' } }, 'k8s-shop-web-1.elb.amazonaws.com')]);
    assert.deepEqual(scope.judged, ['web-canary']);
    assert.deepEqual(scope.baseline, ['web-stable']);
    assert.deepEqual(scope.hostnames, ['k8s-shop-web-1.elb.amazonaws.com']);
    assert.equal(scope.servicePort, 80);
    assert.equal(scope.describe, 'canary Service web-canary (baseline: stable Service web-stable)');
  });

  it('blue-green: preview judged, active the baseline; no canary/preview Service: the selecting Services (resolved by the caller)', () => {
    const bg: KubeObject = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'w' }, spec: { strategy: { blueGreen: { activeService: 'w-active', previewService: 'w-preview' } } } };
    const s = rolloutScope(bg, []);
    assert.deepEqual([s.judged, s.baseline], [['w-preview'], ['w-active']]);
    const plain: KubeObject = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'w' }, spec: { strategy: { canary: { steps: [] } } } };
    assert.equal(rolloutScope(plain, []).judged, undefined);
  });
});
