import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildModel } from '../../src/manifests/model.js';
import { buildPlan } from '../../src/plan/index.js';
import { describeStep } from '../../src/plan/steps.js';
import { tuneManifests } from '../../src/tune/index.js';
import { app, loadExample, setOf } from '../fixtures/manifests.js';

function planOf(files: Record<string, string>, readinessGates: 'inject' | 'require' | 'off' = 'inject') {
  const set = setOf(files);
  const tune = tuneManifests(set, { mode: 'off', shutdownSeconds: 5, addPreStop: true });
  return buildPlan(set, buildModel(set), tune, { readinessGates });
}

describe('plan steps', () => {
  it('orders the 2048 example as preflight, namespaces, routing wait, record, guard, workload checks, attributes, bake', async () => {
    const set = await loadExample('safe');
    const tune = tuneManifests(set, { mode: 'off', shutdownSeconds: 5, addPreStop: true });
    const plan = buildPlan(set, buildModel(set), tune, { readinessGates: 'inject' });
    assert.deepEqual(
      plan.steps.map((s) => s.type),
      ['preflight', 'apply', 'namespace-labels', 'deferred-dry-run', 'apply', 'routing', 'apply-workloads', 'guard', 'workload', 'attributes', 'bake'],
    );
    const workload = plan.steps.find((s) => s.type === 'workload');
    assert.ok(workload?.type === 'workload');
    assert.deepEqual(workload.checks, ['rollout-complete', 'readiness-gates', 'targets-healthy', 'targets-drained']);
    // The phases are the steps grouped: every wait the plan prints comes from a step.
    const waits = plan.phases.flatMap((p) => p.waitFor.map((w) => w.description));
    assert.deepEqual(waits, plan.steps.filter((s) => s.type !== 'preflight').flatMap((s) => describeStep(s).map((w) => w.description)));
  });

  it('says a workload behind no load balancer has no target checks and promises no guard or bake', () => {
    const files = app();
    delete files['ing.yaml'];
    const plan = planOf(files);
    const types = plan.steps.map((s) => s.type);
    assert.ok(!types.includes('guard') && !types.includes('bake') && !types.includes('routing'), types.join(','));
    const workload = plan.steps.find((s) => s.type === 'workload');
    assert.ok(workload?.type === 'workload');
    assert.deepEqual(workload.checks, ['rollout-complete']);
    assert.match(describeStep(workload).map((w) => w.description).join('\n'), /no load balancer routes to it .*no 5xx guard/);
  });

  it('names an Argo Rollout as applied and not waited on, with what is not checked', () => {
    const files = app();
    files['deploy.yaml'] = (files['deploy.yaml'] as string).replace('apiVersion: apps/v1\nkind: Deployment', 'apiVersion: argoproj.io/v1alpha1\nkind: Rollout');
    const plan = planOf(files);
    const note = plan.steps.find((s) => s.type === 'not-waited');
    assert.ok(note?.type === 'not-waited', plan.steps.map((s) => s.type).join(','));
    assert.equal(note.workload.kind, 'Rollout');
    assert.match(note.reason, /does not wait for its rollout, readiness gates, target health or drain/);
    assert.ok(!plan.steps.some((s) => s.type === 'workload' || s.type === 'bake'));
  });

  it('with --readiness-gates off drops the gate check and the namespace label step', () => {
    const plan = planOf(app(), 'off');
    assert.ok(!plan.steps.some((s) => s.type === 'namespace-labels'));
    const workload = plan.steps.find((s) => s.type === 'workload');
    assert.ok(workload?.type === 'workload');
    assert.ok(!workload.checks.includes('readiness-gates'));
  });
});
