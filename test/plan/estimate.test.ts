import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildModel } from '../../src/manifests/model.js';
import { estimateRollouts } from '../../src/plan/estimate.js';
import { app, loadExample, setOf, type AppKnobs } from '../fixtures/manifests.js';

function estimate(knobs: AppKnobs) {
  const [e] = estimateRollouts(buildModel(setOf(app(knobs))), {});
  assert.ok(e);
  return e;
}

describe('estimateRollouts', () => {
  it('the naive 2048 example: 5 replicas at 25%/25% → surge 2, unavailable 1, two batches, and AWS’s 300 s drain', async () => {
    const [e] = estimateRollouts(buildModel(await loadExample('naive')), {});
    assert.deepEqual(e, {
      deployment: { namespace: 'game-2048', name: 'deployment-2048' },
      replicas: 5,
      batches: 2,
      batchSize: 3,
      maxSurge: 2,
      maxUnavailable: 1,
      // start 10 + probe period 2; register 10 + 15 × 2; tail max(preStop 0, drain 300)
      seconds: 2 * (12 + 40) + 300,
      batchSeconds: 52,
      breakdown: { containerStartSeconds: 12, registrationSeconds: 40, terminationSeconds: 0, drainSeconds: 300 },
    });
  });

  it('the safe example fits well inside its progress deadline', async () => {
    const [e] = estimateRollouts(buildModel(await loadExample('safe')), {});
    assert.equal(e?.seconds, 2 * 52 + 40);
    assert.ok((e?.seconds ?? Infinity) < 600);
  });

  it('one pod at a time with maxSurge 1 / maxUnavailable 0', () => {
    const e = estimate({});
    assert.deepEqual([e.batches, e.batchSize, e.breakdown.containerStartSeconds, e.breakdown.drainSeconds, e.breakdown.terminationSeconds], [4, 1, 15, 20, 30]);
    assert.equal(e.seconds, 4 * (15 + 40) + 30);
  });

  it('uses the slowest health check and the options’ allowances', () => {
    const e = estimate({ ingressAnnotations: 'alb.ingress.kubernetes.io/target-type: ip\nalb.ingress.kubernetes.io/healthcheck-interval-seconds: "30"\nalb.ingress.kubernetes.io/healthy-threshold-count: "5"' });
    assert.equal(e.breakdown.registrationSeconds, 10 + 150);
    const [fast] = estimateRollouts(buildModel(setOf(app({}))), { containerStartSeconds: 0, propagationSeconds: 0 });
    assert.deepEqual([fast?.breakdown.containerStartSeconds, fast?.breakdown.registrationSeconds], [5, 30]);
  });

  it('Recreate is one batch that first waits for the old pods to stop', () => {
    const e = estimate({ strategy: 'strategy:\n  type: Recreate' });
    assert.deepEqual([e.batches, e.seconds], [1, 30 + 55 + 30]);
  });

  it('zero replicas take no time; an unrouted Deployment has no registration or drain', () => {
    assert.deepEqual([estimate({ replicas: 0 }).batches, estimate({ replicas: 0 }).seconds], [0, 0]);
    const e = estimate({ serviceSelector: 'app: other' });
    assert.deepEqual([e.breakdown.registrationSeconds, e.breakdown.drainSeconds], [0, 0]);
  });

  it('rounds maxSurge up and maxUnavailable down like Kubernetes', () => {
    const e = estimate({ replicas: 10, strategy: 'strategy:\n  rollingUpdate:\n    maxSurge: 15%\n    maxUnavailable: 15%' });
    assert.deepEqual([e.maxSurge, e.maxUnavailable, e.batchSize, e.batches], [2, 1, 3, 4]);
  });
});
