import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { JsonObject } from '../../src/manifests/types.js';
import { waitFor } from '../helpers/wait.js';
import { describeTiers, e2eLab, labArgs, traffic, type E2eLab } from './helpers.js';
import { GUARD, IMAGE, albOf, deployment, images, release, report, worker } from './guard-helpers.js';

/**
 * (Part 2 of guard-measured.test.ts, one lab per file to stay within the per-file time limit.)
 * Issue 8 against the lab, with traffic: the guard never passes blind (a probe that cannot reach the ALB is said so
 * and CloudWatch judges instead; nothing measured is `unverified`), never rolls back a healthy release for the
 * probe's own connection errors, rolls back only what the run changed, leaves field ownership clean, and stops at
 * someone else's change. Every case in its own namespace (its own ALB).
 */

describeTiers("the guard rolls back only what this run changed, never over someone else's change (issue 8)", (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('a set of two Deployments, only one changed and bad: only that one is rolled back, the other is named untouched', { timeout: 240_000 }, async () => {
    const ns = 'pair';
    for (const [tag, w] of [['v1', 'w1'], ['v2', 'w2']] as const) {
      const r = await l.cli(['deploy', '-f', await release(l, ns, tag, undefined, { '5-worker.yaml': worker(ns, w) }), ...labArgs(l), ...GUARD]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    }
    const workerGeneration = deployment(l, ns, 'worker').metadata.generation;
    const load = traffic(albOf(l, ns), 40);
    try {
      const file = join(l.dir, 'pair.json');
      const r = await l.cli(['deploy', '-f', await release(l, ns, 'bad', 'error-500', { '5-worker.yaml': worker(ns, 'w2') }), '--report', file, ...labArgs(l, '10s'), ...GUARD]);
      assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
      const rep = await report(file);
      assert.equal(rep.result, 'rolled-back', rep.error);
      assert.deepEqual(rep.rollbacks?.map((x) => `${x.name}:${x.outcome}`), ['deployment-2048:rolled-back'], JSON.stringify(rep.timeline.filter((e) => e.kind === 'revision' || e.kind === 'rollback')));
      assert.match(rep.error ?? '', /Not rolled back, unchanged by this run: pair\/worker/);
      assert.deepEqual(images(l, ns), [`${IMAGE}:${ns}-v2`]);
      assert.deepEqual(images(l, ns, 'worker'), ['example.com/worker:w2'], 'the unchanged worker stays at its current revision');
      assert.equal(deployment(l, ns, 'worker').metadata.generation, workerGeneration);
    } finally {
      await load.stop();
    }
  });

  it("someone else's change: a paused Deployment and a rollout in progress stop the run before applying; a newer revision written mid-run is reported and not rolled back over", { timeout: 240_000 }, async () => {
    const ns = 'others';
    const first = await l.cli(['deploy', '-f', await release(l, ns, 'v1'), ...labArgs(l), ...GUARD]);
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);

    assert.equal((await l.kubectl(['rollout', 'pause', 'deployment/deployment-2048', '-n', ns])).code, 0);
    const pausedFile = join(l.dir, 'paused.json');
    const p = await l.cli(['deploy', '-f', await release(l, ns, 'v2'), '--report', pausedFile, ...labArgs(l), ...GUARD], { timeoutMs: 60_000 });
    assert.equal(p.code, 1, `${p.stdout}\n${p.stderr}`);
    assert.match(p.stdout, /nothing was applied: .*Deployment others\/deployment-2048 to roll out, but it is paused \(spec\.paused: true, written by kubectl/);
    assert.match(p.stdout, /kubectl rollout resume deployment\/deployment-2048 -n others/);
    assert.deepEqual((await report(pausedFile)).applied, []);
    assert.equal((await l.kubectl(['rollout', 'resume', 'deployment/deployment-2048', '-n', ns])).code, 0);

    // A slow release by this run; mid-run another deployer sets a newer image.
    const midFile = join(l.dir, 'mid-run.json');
    const before = Number(deployment(l, ns).metadata.generation);
    const run = l.cli(['deploy', '-f', await release(l, ns, 'slow', 'slow-start=400'), '--report', midFile, ...labArgs(l), ...GUARD], { timeoutMs: 120_000 });
    await waitFor(() => Number(deployment(l, ns).metadata.generation) > before || undefined, { timeoutMs: 30_000, what: 'the run to apply the slow release' });
    const set = await l.kubectl(['set', 'image', 'deployment/deployment-2048', `app-2048=${IMAGE}:theirs`, '-n', ns]);
    assert.equal(set.code, 0, set.stderr);
    const r = await run;
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /kubectl-set \(Update[^)]*\) changed it during the run/);
    assert.match(r.stdout, /does not roll back over their change/);
    const rep = await report(midFile);
    assert.equal(rep.result, 'failed');
    assert.equal(rep.rollbacks, undefined);
    const template = ((deployment(l, ns).spec as JsonObject).template as JsonObject).spec as JsonObject;
    assert.equal((template.containers as JsonObject[])[0]?.image, `${IMAGE}:theirs`, 'their revision stays');

    // Their slow rollout is still in progress: the next run does not roll out over it (even when it may take their fields).
    const busy = await l.cli(['deploy', '-f', await release(l, ns, 'v4'), '--force-conflicts', ...labArgs(l), ...GUARD], { timeoutMs: 60_000 });
    assert.equal(busy.code, 1, `${busy.stdout}\n${busy.stderr}`);
    assert.match(busy.stdout, /a rollout is in progress[\s\S]*kubectl rollout status deployment\/deployment-2048 -n others/);
    assert.match(busy.stdout, /applied before the failure: nothing/);
  });
});
