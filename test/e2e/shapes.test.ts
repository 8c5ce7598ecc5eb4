import assert from 'node:assert/strict';
import { mkdir, readFile, copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { albUrl, describeTiers, e2eLab, labArgs, traffic, variant, type E2eLab } from './helpers.js';

/** The shapes of issue 10 the lab already models, each under traffic where a load balancer serves it. */

interface Report {
  result: string;
  revision: string;
  previousRevision: string;
  timeline: Array<{ kind: string; message: string }>;
  targetGroupArns: string[];
  guard?: { decision: { verdict: string } };
}

describeTiers('shapes: a set that holds only the Deployment (its Service and Ingress live in the cluster)', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('finds the live routes and rolls out with gates, healthy targets, drain and the guard, zero non-2xx', async () => {
    const install = await l.cli(['deploy', '-f', 'examples/2048/safe', ...labArgs(l)]);
    assert.equal(install.code, 0, `install failed:\n${install.stdout}\n${install.stderr}`);

    const load = traffic(albUrl(l.lab), 40);
    await waitFor(() => load.records.length >= 40 || undefined, { timeoutMs: 10_000, what: 'traffic to start' });
    const v2 = await variant('2048/safe', l.dir, 'v2');
    const only = join(l.dir, 'deployment-only');
    await mkdir(only, { recursive: true });
    await copyFile(join(v2, '4-deployment.yaml'), join(only, 'deployment.yaml'));
    const reportFile = join(l.dir, 'only.json');
    const plan = await l.cli(['plan', '-f', only]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /find the routes to Deployment game-2048\/deployment-2048 in the cluster too/);

    const update = await l.cli(['deploy', '-f', only, '--report', reportFile, ...labArgs(l, '3s')]);
    const slow = load.records.filter((r) => r.latencyMs > 1000).map((r) => `${new Date(r.at).toISOString()} ${r.latencyMs}ms`);
    assert.equal(update.code, 0, `update failed:\n${update.stdout}\n${update.stderr}\nslow traffic: ${slow.slice(0, 20).join(', ')}`);
    assert.match(update.stderr + update.stdout, /1 route\(s\) found in the cluster: Ingress game-2048\/ingress-2048 → Service service-2048:80 \(ip\)/);
    await waitFor(() => load.records.length >= 300 || undefined, { timeoutMs: 30_000, what: '300 requests' });
    const summary = await load.stop();
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
    assert.equal(report.result, 'succeeded');
    assert.equal(report.previousRevision, '1');
    assert.equal(report.revision, '2');
    assert.equal(report.targetGroupArns.length, 1, 'the live target group was checked');
    assert.ok(report.timeline.some((e) => e.kind === 'target-state' && /draining/.test(e.message)), 'old targets were seen draining');
    assert.equal(report.guard?.decision.verdict, 'pass', 'the guard watched the rollout and the bake');
    assert.equal(summary.non2xx, 0, `non-2xx responses during the update: ${JSON.stringify(summary.responses)}`);
    assert.ok(Object.keys(summary.versions).some((v) => v.endsWith(':v2')), 'the new version answered');
  });

  it('says so when no load balancer routes to the workload, and runs no guard', async () => {
    const dir = join(l.dir, 'no-lb');
    await mkdir(dir, { recursive: true });
    const text = (await readFile(join(l.dir, 'deployment-only', 'deployment.yaml'), 'utf8')).replace(/name: deployment-2048/, 'name: worker').replace(/app\.kubernetes\.io\/name: app-2048/g, 'app.kubernetes.io/name: worker');
    await writeFile(join(dir, 'worker.yaml'), text);
    const reportFile = join(l.dir, 'no-lb.json');
    const r = await l.cli(['deploy', '-f', dir, '--report', reportFile, ...labArgs(l)]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout + r.stderr, /Deployment game-2048\/worker: no load balancer routes to it .*only its rollout is checked; no readiness-gate, target-health or drain check and no 5xx guard/);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
    assert.equal(report.result, 'succeeded');
    assert.equal(report.guard, undefined);
    assert.deepEqual(report.targetGroupArns, []);
  });
});

describeTiers('shapes: an HPA-managed Deployment (no spec.replicas) with its HPA in the set', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('lints and estimates with minReplicas, applies the HPA and rolls out under traffic with zero non-2xx', async () => {
    const withHpa = async (tag: string): Promise<string> => {
      const dir = await variant('2048/safe', l.dir, tag, (file, text) => (file.endsWith('4-deployment.yaml') ? text.replace(/^  replicas: \d+\n/m, '') : text));
      await writeFile(
        join(dir, '5-hpa.yaml'),
        'apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: deployment-2048\n  namespace: game-2048\nspec:\n  scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: deployment-2048 }\n  minReplicas: 3\n  maxReplicas: 6\n  metrics:\n    - type: Resource\n      resource: { name: cpu, target: { type: Utilization, averageUtilization: 70 } }\n',
      );
      return dir;
    };
    const v1 = await withHpa('v1');
    assert.doesNotMatch(await readFile(join(v1, '4-deployment.yaml'), 'utf8'), /^  replicas:/m);
    const plan = await l.cli(['plan', '-f', v1]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /game-2048\/deployment-2048: ~\d+s for 3 replicas/);
    const install = await l.cli(['deploy', '-f', v1, ...labArgs(l)]);
    assert.equal(install.code, 0, `install failed:\n${install.stdout}\n${install.stderr}`);
    assert.match(install.stdout + install.stderr, /applied HorizontalPodAutoscaler game-2048\/deployment-2048/);
    // The lab runs no HPA controller: scale as the HPA would (to its minReplicas); the manifest without spec.replicas
    // must leave that count alone on the next apply.
    const scaled = await l.kubectl(['scale', 'deployment/deployment-2048', '-n', 'game-2048', '--replicas=3']);
    assert.equal(scaled.code, 0, scaled.stderr);
    const ready = await l.kubectl(['rollout', 'status', 'deployment/deployment-2048', '-n', 'game-2048', '--timeout=90s'], 100_000);
    assert.equal(ready.code, 0, ready.stderr);

    const load = traffic(albUrl(l.lab), 40);
    await waitFor(() => load.records.length >= 40 || undefined, { timeoutMs: 10_000, what: 'traffic to start' });
    const v2 = await withHpa('v2');
    const reportFile = join(l.dir, 'hpa.json');
    const update = await l.cli(['deploy', '-f', v2, '--report', reportFile, ...labArgs(l)]);
    assert.equal(update.code, 0, `update failed:\n${update.stdout}\n${update.stderr}`);
    await waitFor(() => load.records.length >= 300 || undefined, { timeoutMs: 30_000, what: '300 requests' });
    const summary = await load.stop();
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
    assert.equal(report.result, 'succeeded');
    assert.equal(report.revision, '2');
    assert.equal((l.lab.store.get('Deployment', 'game-2048', 'deployment-2048')?.spec as { replicas?: number } | undefined)?.replicas, 3, 'the apply kept the HPA\'s replica count');
    assert.equal(summary.non2xx, 0, `non-2xx responses during the update: ${JSON.stringify(summary.responses)}`);
  });
});
