import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ingressListeners, ingressProbeTarget } from '../../src/guard/ingress-probe.js';
import type { KubeObject } from '../../src/manifests/types.js';

const ALB = 'k8s-shop-web-0123456789.us-east-1.elb.amazonaws.com';

function ingress(annotations: Record<string, string>, rules: unknown[] = [{ http: { paths: [{ path: '/', pathType: 'Prefix' }] } }]): KubeObject {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'web', namespace: 'shop', annotations }, spec: { rules } } as KubeObject;
}

describe('the probe goes to the ALB as the Ingress defines it', () => {
  test('no annotations: HTTP:80, the ALB hostname, path from the rule', () => {
    const t = ingressProbeTarget(ingress({}), ALB);
    assert.equal(t.url, `http://${ALB}/`);
    assert.equal(t.host, undefined);
    assert.match(t.chosen, /HTTP:80 from the default listener, path \/ from the rule/);
  });

  test('listen-ports with HTTPS and ssl-redirect: HTTPS on its port with SNI and Host of the rule, the rule\'s path', () => {
    const t = ingressProbeTarget(
      ingress({ 'alb.ingress.kubernetes.io/listen-ports': '[{"HTTP": 80}, {"HTTPS": 8443}]', 'alb.ingress.kubernetes.io/ssl-redirect': '8443' }, [
        { host: 'shop.example.com', http: { paths: [{ path: '/api/*', pathType: 'ImplementationSpecific' }] } },
      ]),
      ALB,
    );
    assert.equal(t.url, `https://${ALB}:8443/api/`);
    assert.equal(t.host, 'shop.example.com');
    assert.equal(t.servername, 'shop.example.com');
    assert.match(t.chosen, /HTTPS:8443 from listen-ports, HTTP:80 redirects to it \(ssl-redirect\), Host shop\.example\.com from the rule, path \/api\/ from the rule/);
  });

  test('a certificate without listen-ports means HTTPS:443; a wildcard host is not a Host header; a given path wins', () => {
    const t = ingressProbeTarget(ingress({ 'alb.ingress.kubernetes.io/certificate-arn': 'arn:aws:acm:us-east-1:1:certificate/x' }, [{ host: '*.example.com', http: { paths: [{ path: '/x' }] } }]), ALB, '/healthz');
    assert.equal(t.url, `https://${ALB}/healthz`);
    assert.equal(t.host, undefined);
  });

  test('listen-ports that do not parse fall back to the default', () => {
    assert.deepEqual(ingressListeners({ 'alb.ingress.kubernetes.io/listen-ports': 'nonsense' }), [{ protocol: 'HTTP', port: 80 }]);
    assert.deepEqual(ingressListeners({ 'alb.ingress.kubernetes.io/listen-ports': '[{"HTTP": 8080}]' }), [{ protocol: 'HTTP', port: 8080 }]);
  });
});
