import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { JsonObject } from '../../src/manifests/types.js';
import { waitFor } from '../helpers/wait.js';
import { describeTiers, e2eLab, labArgs, traffic, type E2eLab } from './helpers.js';
import { GUARD, IMAGE, albOf, deployment, images, release, report } from './guard-helpers.js';

/**
 * Issue 8 against the lab, with traffic: the guard never passes blind (a probe that cannot reach the ALB is said so
 * and CloudWatch judges instead; nothing measured is `unverified`), never rolls back a healthy release for the
 * probe's own connection errors, rolls back only what the run changed, leaves field ownership clean, and stops at
 * someone else's change. Every case in its own namespace (its own ALB).
 */

describeTiers('the guard measures before it judges (issue 8)', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('probe URL not resolvable: said why, CloudWatch judges a longer bake and rolls back a release answering 500; --probe require stops before applying; after the rollback the next deploy needs no --force-conflicts', { timeout: 240_000 }, async () => {
    const ns = 'blind';
    const v1 = await release(l, ns, 'v1');
    const first = await l.cli(['deploy', '-f', v1, ...labArgs(l), ...GUARD]);
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
    const load = traffic(albOf(l, ns), 40);
    try {
      await waitFor(() => load.records.length >= 40 || undefined, { timeoutMs: 10_000, what: 'traffic to start' });
      const bad = await release(l, ns, 'bad', 'error-500');
      const file = join(l.dir, 'blind.json');
      // Target health only reports here, so that what decides is CloudWatch (on a loaded machine slow health checks could beat it).
      const r = await l.cli(['deploy', '-f', bad, '--report', file, '--probe-url', 'http://app.invalid/', ...labArgs(l), ...GUARD, '--target-health', 'report']);
      assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
      const rep = await report(file);
      assert.equal(rep.result, 'rolled-back', rep.error);
      assert.equal(rep.guard?.decision.decidingKind, 'cloudwatch', rep.guard?.decision.reason);
      // This ALB serves only this release: the load balancer's own 5xx count too, and the report says so.
      assert.match(rep.guard?.cloudwatchMetrics ?? '', /HTTPCode_Target_5XX_Count and RequestCount of this release's target groups \+ the load balancer's HTTPCode_ELB_5XX_Count \(it serves only this release\)/);
      assert.match(r.stderr, /probe cannot reach the load balancer[\s\S]*cannot resolve app\.invalid/);
      assert.match(r.stderr, /the bake is at least \d+s so that CloudWatch can judge 1 settled period/);
      assert.ok(rep.guard?.skipped.some((s) => /probe: cannot reach the ALB/.test(s)), JSON.stringify(rep.guard?.skipped));
      assert.deepEqual(images(l, ns), [`${IMAGE}:${ns}-v1`]);

      // --probe require: the same unreachable URL is a preflight error; nothing is applied.
      const generation = deployment(l, ns).metadata.generation;
      const requireFile = join(l.dir, 'blind-require.json');
      const req = await l.cli(['deploy', '-f', bad, '--report', requireFile, '--probe', 'require', '--probe-url', 'http://app.invalid/', ...labArgs(l), ...GUARD]);
      assert.equal(req.code, 2, `${req.stdout}\n${req.stderr}`);
      assert.match(req.stdout, /--probe require: the probe cannot reach the load balancer[\s\S]*nothing was applied/);
      assert.match(req.stdout, /applied before the failure: nothing/);
      assert.deepEqual((await report(requireFile)).applied, []);
      assert.equal(deployment(l, ns).metadata.generation, generation);

      // The rollback applied the previous template as alb-rollout: the next deploy applies without --force-conflicts.
      const managers = (deployment(l, ns).metadata.managedFields as JsonObject[]).map((e) => `${String(e.manager)}/${String(e.operation)}`);
      assert.ok(!managers.includes('alb-rollout/Update'), `no Update entry of alb-rollout: ${managers.join(', ')}`);
      const v3 = await release(l, ns, 'v3');
      const next = await l.cli(['deploy', '-f', v3, ...labArgs(l), ...GUARD]);
      assert.equal(next.code, 0, `${next.stdout}\n${next.stderr}`);
      assert.deepEqual(images(l, ns), [`${IMAGE}:${ns}-v3`]);
    } finally {
      await load.stop();
    }
  });

  it('probe URL refusing connections: a good release is not rolled back; with nothing else measuring the result is unverified (exit 1, or 0 with --on-inconclusive pass)', { timeout: 240_000 }, async () => {
    const ns = 'refused';
    const first = await l.cli(['deploy', '-f', await release(l, ns, 'v1'), ...labArgs(l), ...GUARD]);
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
    const load = traffic(albOf(l, ns), 40);
    try {
      const file = join(l.dir, 'refused.json');
      const r = await l.cli(['deploy', '-f', await release(l, ns, 'v2'), '--report', file, '--probe-url', 'http://127.0.0.1:9/', ...labArgs(l), ...GUARD]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /127\.0\.0\.1:9 refuses connections \(ECONNREFUSED\)/);
      const rep = await report(file);
      assert.equal(rep.result, 'succeeded');
      assert.equal(rep.guard?.decision.verdict, 'pass');
      assert.match(rep.guard?.decision.reason ?? '', /measured by (cloudwatch|target-health)/);
      assert.deepEqual(images(l, ns), [`${IMAGE}:${ns}-v2`]);

      const blindFile = join(l.dir, 'unverified.json');
      const blind = ['--probe-url', 'http://127.0.0.1:9/', '--cloudwatch', 'off', '--target-health', 'off'];
      const u = await l.cli(['deploy', '-f', await release(l, ns, 'v3'), '--report', blindFile, ...blind, ...labArgs(l), ...GUARD]);
      assert.equal(u.code, 1, `${u.stdout}\n${u.stderr}`);
      assert.match(u.stdout, /result: unverified/);
      assert.match(u.stdout, /could not measure enough to call the release healthy/);
      assert.match(u.stdout, /Fix: make a signal measure/);
      const ur = await report(blindFile);
      assert.equal(ur.result, 'unverified');
      assert.equal(ur.guard?.decision.verdict, 'inconclusive');
      assert.equal(ur.rollbacks, undefined, 'not measured is no reason to roll back');
      assert.deepEqual(images(l, ns), [`${IMAGE}:${ns}-v3`]);
      const ok = await l.cli(['deploy', '-f', await release(l, ns, 'v4'), '--on-inconclusive', 'pass', ...blind, ...labArgs(l), ...GUARD]);
      assert.equal(ok.code, 0, `${ok.stdout}\n${ok.stderr}`);
      assert.match(ok.stdout, /result: unverified/);
    } finally {
      await load.stop();
    }
  });

});
