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
      // start 5 + probe period 2; register 15 + ⅔ × 15 + 7.5 (rounded); tail min(drain 300, 15)
      seconds: 2 * (7 + 33) + 15,
      batchSeconds: 40,
      breakdown: { containerStartSeconds: 7, registrationSeconds: 33, terminationSeconds: 0, drainSeconds: 300, drainTailSeconds: 15 },
    });
  });

  it('the safe example fits well inside its progress deadline', async () => {
    const [e] = estimateRollouts(buildModel(await loadExample('safe')), {});
    assert.equal(e?.seconds, 2 * 40 + 15);
    assert.ok((e?.seconds ?? Infinity) < 600);
  });

  it('one pod at a time with maxSurge 1 / maxUnavailable 0', () => {
    const e = estimate({});
    assert.deepEqual([e.batches, e.batchSize, e.breakdown.containerStartSeconds, e.breakdown.drainSeconds, e.breakdown.terminationSeconds, e.breakdown.drainTailSeconds], [4, 1, 10, 20, 30, 15]);
    assert.equal(e.seconds, 4 * (10 + 33) + 15, 'the preStop sleep overlaps the next batch: it does not add');
  });

  it('uses the slowest health check and the options’ allowances', () => {
    const e = estimate({ ingressAnnotations: 'alb.ingress.kubernetes.io/target-type: ip\nalb.ingress.kubernetes.io/healthcheck-interval-seconds: "30"\nalb.ingress.kubernetes.io/healthy-threshold-count: "5"' });
    assert.equal(e.breakdown.registrationSeconds, Math.round(15 + 30 * (2 / 3) + 7.5), 'one passing check per node: the threshold does not count for a new target');
    const [fast] = estimateRollouts(buildModel(setOf(app({}))), { containerStartSeconds: 0, propagationSeconds: 0, gateCheckSeconds: 0 });
    assert.deepEqual([fast?.breakdown.containerStartSeconds, fast?.breakdown.registrationSeconds], [5, 10]);
  });

  it('Recreate is one batch that first waits for the old pods to stop', () => {
    const e = estimate({ strategy: 'strategy:\n  type: Recreate' });
    assert.deepEqual([e.batches, e.seconds], [1, 30 + 43 + 15]);
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
