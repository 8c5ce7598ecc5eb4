import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { albUrl, describeTiers, e2eLab, labArgs, traffic, variant, type E2eLab } from './helpers.js';

/** The shapes of issue 10 through deploy, under traffic: a StatefulSet and a DaemonSet behind the ALB. */

interface Report {
  result: string;
  revision: string;
  previousRevision: string;
  timeline: Array<{ kind: string; message: string }>;
  targetGroupArns: string[];
  guard?: { decision: { verdict: string } };
}

/** The 2048 example with its Deployment turned into a StatefulSet or a DaemonSet (same labels, Service and Ingress). */
function asKind(kind: 'StatefulSet' | 'DaemonSet'): (file: string, text: string) => string {
  return (file, text) => {
    if (!file.endsWith('4-deployment.yaml')) return text;
    let out = text.replace('kind: Deployment', `kind: ${kind}`).replace('name: deployment-2048', 'name: web-2048').replace(/^  progressDeadlineSeconds: \d+\n/m, '');
    out = out.replace(/^  strategy:\n(    .*\n)+/m, kind === 'StatefulSet' ? '  serviceName: service-2048\n  updateStrategy:\n    type: RollingUpdate\n' : '  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 0\n');
    if (kind === 'StatefulSet') out = out.replace(/^  replicas: \d+\n/m, '  replicas: 3\n');
    else out = out.replace(/^  replicas: \d+\n/m, '');
    return out;
  };
}

for (const kind of ['StatefulSet', 'DaemonSet'] as const) {
  describeTiers(`shapes: a ${kind} behind the ALB`, (tier) => {
    let l: E2eLab;
    before(async () => {
      l = await e2eLab({}, tier);
    });
    after(async () => {
      await l.stop();
    });

    it(`plans and rolls out a ${kind} update with kubectl's rule, gates, healthy targets, drain and the guard, zero non-2xx`, async () => {
      const v1 = await variant('2048/safe', l.dir, 'v1', asKind(kind));
      const plan = await l.cli(['plan', '-f', v1]);
      assert.equal(plan.code, 0, `${plan.stdout}\n${plan.stderr}`);
      assert.match(plan.stdout, new RegExp(`${kind} game-2048/web-2048: rollout complete \\(${kind === 'StatefulSet' ? 'every replica ready' : 'on every node'}`));
      assert.match(plan.stdout, new RegExp(`${kind} game-2048/web-2048: every new pod IP:port is healthy|${kind} game-2048/web-2048: in the target group`));
      const install = await l.cli(['deploy', '-f', v1, ...labArgs(l)], { timeoutMs: 180_000 });
      assert.equal(install.code, 0, `install failed:\n${install.stdout}\n${install.stderr}`);

      const load = traffic(albUrl(l.lab), 40);
      await waitFor(() => load.records.length >= 40 || undefined, { timeoutMs: 10_000, what: 'traffic to start' });
      const v2 = await variant('2048/safe', l.dir, 'v2', asKind(kind));
      const reportFile = join(l.dir, `${kind}.json`);
      const started = Date.now();
      const update = await l.cli(['deploy', '-f', v2, '--report', reportFile, ...labArgs(l, '3s')], { timeoutMs: 240_000 });
      const ended = Date.now();
      assert.equal(update.code, 0, `update failed:\n${update.stdout}\n${update.stderr}`);
      assert.match(update.stdout + update.stderr, new RegExp(`${kind} game-2048/web-2048 rolled out: revision 2`));
      await waitFor(() => load.records.length >= 300 || undefined, { timeoutMs: 30_000, what: '300 requests' });
      const summary = await load.stop();
      const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
      assert.equal(report.result, 'succeeded');
      assert.equal(report.previousRevision, '1');
      assert.equal(report.revision, '2');
      assert.ok(report.timeline.some((e) => e.kind === 'target-state' && /draining/.test(e.message)), 'old targets were seen draining');
      assert.equal(report.guard?.decision.verdict, 'pass', 'the guard watched the rollout and the bake');
      const bad = load.records.filter((r) => r.status < 200 || r.status > 299);
      // The report's timeline runs on the lab's clock; the deploy's own output says what it was waiting for then.
      assert.equal(
        summary.non2xx,
        0,
        `non-2xx responses during the update: ${JSON.stringify(summary.responses)} from ${new Date(bad[0]?.at ?? 0).toISOString()} to ${new Date(bad.at(-1)?.at ?? 0).toISOString()} (deploy ran ${new Date(started).toISOString()} – ${new Date(ended).toISOString()}); its output:\n${update.stdout.slice(-3000)}`,
      );
      assert.ok(Object.keys(summary.versions).some((v) => v.endsWith(':v2')), 'the new version answered');
      const pods = (await l.kubectl(['get', 'pods', '-n', 'game-2048', '-o', 'name'])).stdout;
      if (kind === 'StatefulSet') assert.deepEqual(pods.trim().split('\n').sort(), ['pod/web-2048-0', 'pod/web-2048-1', 'pod/web-2048-2']);
      else assert.equal(pods.trim().split('\n').length, 1, `one pod on the lab's one Node: ${pods}`);
    });
  });
}

