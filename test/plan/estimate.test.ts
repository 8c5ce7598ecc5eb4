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
      // start 5 + probe period 2; register 15 + ⅔ × 15 + 7.5 (rounded). Last batch: 2 pods, unavailable 1, so the
      // last old pod goes when the first of them is ready (about 4 s before the mean), then its drain min(300, 15):
      // 11 s, later than the slower new pod (about 4 s after the mean).
      seconds: 2 * (7 + 33) + 11,
      batchSeconds: 40,
      breakdown: { containerStartSeconds: 7, registrationSeconds: 33, terminationSeconds: 0, drainSeconds: 300, drainTailSeconds: 15, lastBatchSeconds: 11 },
    });
  });

  it('the safe example fits well inside its progress deadline', async () => {
    const [e] = estimateRollouts(buildModel(await loadExample('safe')), {});
    assert.equal(e?.seconds, 2 * 40 + 11);
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
    assert.deepEqual([e.batches, e.breakdown.lastBatchSeconds, e.seconds], [1, 9 + 15, 30 + 43 + 9 + 15], 'the last of 4 pods plus its deregistration (9 s over the means), then the drain');
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
  it('one batch of 12 (maxSurge 100 %): the last of 12 old targets off the ALB, each going when a new pod is ready', () => {
    const e = estimate({ replicas: 12, strategy: 'strategy:\n  rollingUpdate:\n    maxSurge: 100%\n    maxUnavailable: 0' });
    assert.deepEqual([e.batches, e.batchSize, e.breakdown.lastBatchSeconds], [1, 12, 15 + 15], 'the last of 12 (pod + deregistration) is 15 s over the means');
    assert.equal(e.seconds, 43 + 15 + 15);
    const one = estimate({ replicas: 1 });
    assert.equal(one.breakdown.lastBatchSeconds, 15, 'one pod: its mean time, then the drain');
  });

  it('maxUnavailable covering the last batch: the old pods go as it starts and their drain overlaps it', () => {
    const e = estimate({ replicas: 3, strategy: 'strategy:\n  rollingUpdate:\n    maxSurge: 0\n    maxUnavailable: 1' });
    assert.deepEqual([e.batches, e.batchSize, e.breakdown.lastBatchSeconds, e.seconds], [3, 1, 0, 3 * 43]);
  });
});
