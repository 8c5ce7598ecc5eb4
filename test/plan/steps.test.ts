import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { join } from 'node:path';
import { loadManifests } from '../../src/manifests/load.js';
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
      ['preflight', 'cluster-routes', 'apply', 'namespace-labels', 'deferred-dry-run', 'apply', 'routing', 'apply-workloads', 'guard', 'workload', 'attributes', 'bake'],
    );
    const workload = plan.steps.find((s) => s.type === 'workload');
    assert.ok(workload?.type === 'workload');
    assert.deepEqual(workload.checks, ['rollout-complete', 'readiness-gates', 'targets-healthy', 'targets-drained']);
    // The phases are the steps grouped: every wait the plan prints comes from a step.
    const waits = plan.phases.flatMap((p) => p.waitFor.map((w) => w.description));
    assert.deepEqual(waits, plan.steps.filter((s) => s.phase !== 'preflight').flatMap((s) => describeStep(s).map((w) => w.description)));
  });

  it('for a workload with no route in the set, looks in the cluster and promises the guard only if a route is found', () => {
    const files = app();
    delete files['ing.yaml'];
    const plan = planOf(files);
    const types = plan.steps.map((s) => s.type);
    assert.ok(types.includes('cluster-routes'), types.join(','));
    const workload = plan.steps.find((s) => s.type === 'workload');
    assert.ok(workload?.type === 'workload');
    assert.deepEqual(workload.checks, ['rollout-complete']);
    assert.match(describeStep(workload).map((w) => w.description).join('\n'), /no load balancer routes to it in the set; each target group found in the cluster .*with none, only the rollout is checked/);
    const guard = plan.steps.find((s) => s.type === 'guard');
    assert.ok(guard);
    assert.match(describeStep(guard)[0]?.description ?? '', /^when a load balancer routes to them .*with none, no guard runs/);
  });

  it('waits on an Argo Rollout through its own status, with the gate/target rules, and says what it does not do', () => {
    const files = app();
    files['deploy.yaml'] = (files['deploy.yaml'] as string).replace('apiVersion: apps/v1\nkind: Deployment', 'apiVersion: argoproj.io/v1alpha1\nkind: Rollout');
    const plan = planOf(files);
    const step = plan.steps.find((s) => s.type === 'argo-rollout');
    assert.ok(step?.type === 'argo-rollout', plan.steps.map((s) => s.type).join(','));
    assert.equal(step.workload.kind, 'Rollout');
    assert.deepEqual(step.checks, ['rollout-complete', 'readiness-gates', 'targets-healthy', 'targets-drained']);
    const text = describeStep(step).map((w) => w.description).join('\n');
    assert.match(text, /waits on Argo's own status: Healthy once status\.observedGeneration equals metadata\.generation/);
    assert.match(text, /ends deploy with result paused, naming the step and `kubectl argo rollouts promote` \(--argo-pauses wait waits through it\)/);
    assert.match(text, /never writes its template back \(no rollback\) and runs no 5xx guard or bake for it/);
    assert.match(text, /aborts the Rollout as `kubectl argo rollouts abort` does/);
    // Argo judges its own canary: no guard or bake step for a set of only a Rollout, and no not-waited note.
    assert.ok(!plan.steps.some((s) => s.type === 'guard' || s.type === 'bake' || s.type === 'not-waited' || s.type === 'workload'));
    const apply = plan.steps.find((s) => s.type === 'apply-workloads');
    assert.ok(apply?.type === 'apply-workloads');
    assert.deepEqual(apply.workloads, []);
    assert.deepEqual(apply.rollouts.map((r) => r.name), [step.workload.name]);
  });

  it('an Argo canary with ALB traffic routing: the canary and stable Services are waited on though the set has no route to them', async () => {
    const set = await loadManifests({ paths: ['examples/argo-rollouts/rollout.yaml'], defaultNamespace: 'default', baseDir: join(import.meta.dirname, '..', '..') });
    const tune = tuneManifests(set, { mode: 'off', shutdownSeconds: 5, addPreStop: true });
    const plan = buildPlan(set, buildModel(set), tune, { readinessGates: 'inject' });
    const step = plan.steps.find((s) => s.type === 'argo-rollout');
    assert.ok(step?.type === 'argo-rollout');
    assert.deepEqual(step.canarySteps, ['setWeight: 20', 'analysis', 'setWeight: 100']);
    const text = describeStep(step).map((w) => w.description).join('\n');
    assert.match(text, /canary steps setWeight: 20 → analysis → setWeight: 100, ALB traffic routing on Ingress web \(canary web-canary, stable web-stable\)/);
    assert.match(text, /target group\(s\) of Service\(s\) web-canary, web-stable/);
    // The Ingress has ip targets: its namespace needs the gate label although the set holds no route to the Rollout.
    assert.deepEqual(plan.gateNamespaces, ['shop']);
    assert.equal(plan.estimates[0]?.argo?.analysisSteps, 1);
  });

  it('waits on a StatefulSet and a DaemonSet behind a target group with the same checks, and names OnDelete as not waited on', () => {
    const asKind = (kind: string, strategy: string): Record<string, string> => {
      const files = app({ strategy });
      files['deploy.yaml'] = (files['deploy.yaml'] as string).replace('kind: Deployment', `kind: ${kind}`);
      return files;
    };
    for (const kind of ['StatefulSet', 'DaemonSet']) {
      const plan = planOf(asKind(kind, 'updateStrategy:\n  type: RollingUpdate'));
      const workload = plan.steps.find((s) => s.type === 'workload');
      assert.ok(workload?.type === 'workload', plan.steps.map((s) => s.type).join(','));
      assert.equal(workload.workload.kind, kind);
      assert.deepEqual(workload.checks, ['rollout-complete', 'readiness-gates', 'targets-healthy', 'targets-drained']);
      assert.ok(plan.steps.some((s) => s.type === 'guard') && plan.steps.some((s) => s.type === 'bake'));
      assert.match(describeStep(workload)[0]?.description ?? '', kind === 'StatefulSet' ? /partition up at the update revision/ : /on every node it schedules to/);
      const onDelete = planOf(asKind(kind, 'updateStrategy:\n  type: OnDelete'));
      const note = onDelete.steps.find((s) => s.type === 'not-waited');
      assert.ok(note?.type === 'not-waited', onDelete.steps.map((s) => s.type).join(','));
      assert.match(note.reason, /updateStrategy is OnDelete: the controller replaces a pod only when someone deletes it/);
      assert.ok(!onDelete.steps.some((s) => s.type === 'workload' || s.type === 'bake'));
    }
  });

  it('with --readiness-gates off drops the gate check and the namespace label step', () => {
    const plan = planOf(app(), 'off');
    assert.ok(!plan.steps.some((s) => s.type === 'namespace-labels'));
    const workload = plan.steps.find((s) => s.type === 'workload');
    assert.ok(workload?.type === 'workload');
    assert.ok(!workload.checks.includes('readiness-gates'));
  });
});

describe('routesWithCluster', () => {
  it('finds the live Service and Ingress of a Deployment-only set, and a user TargetGroupBinding, marked as from the cluster', async () => {
    const { routesWithCluster } = await import('../../src/plan/cluster-routes.js');
    const files = app();
    const set = setOf({ 'deploy.yaml': files['deploy.yaml'] as string });
    const full = setOf(files);
    const live = (kind: string) => full.objects.filter((o) => o.ref.kind === kind).map((o) => o.object);
    const userTgb = { apiVersion: 'elbv2.k8s.aws/v1beta1', kind: 'TargetGroupBinding', metadata: { name: 'from-terraform', namespace: 'shop' }, spec: { serviceRef: { name: 'web', port: 80 }, targetGroupARN: 'arn:tf', targetType: 'ip' } };
    const controllerTgb = { ...userTgb, metadata: { name: 'k8s-shop-web-1', namespace: 'shop', labels: { 'ingress.k8s.aws/stack-namespace': 'shop', 'ingress.k8s.aws/stack-name': 'web' } } };
    const found = routesWithCluster(set, [{ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web' }], {
      services: live('Service'),
      ingresses: live('Ingress'),
      ingressClasses: [],
      bindings: [userTgb, controllerTgb],
    });
    const routes = found.get('shop/web') ?? [];
    assert.deepEqual(
      routes.map((r) => [r.ingress?.name ?? `tgb:${r.binding?.name ?? ''}`, r.service.name, r.port, r.from]),
      [
        ['web', 'web', 80, 'cluster'],
        ['tgb:from-terraform', 'web', 80, 'cluster'],
      ],
    );
    // With the Service and Ingress in the set, the same route is the set's.
    const again = routesWithCluster(full, [{ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web' }], { services: live('Service'), ingresses: live('Ingress'), ingressClasses: [], bindings: [] });
    assert.deepEqual(again.get('shop/web')?.map((r) => r.from), ['set']);
  });
});
