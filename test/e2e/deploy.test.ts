import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { describeTiers, albUrl, e2eLab, labArgs, traffic, variant, type E2eLab } from './helpers.js';

interface Report {
  result: string;
  revision: string;
  previousRevision: string;
  durationSeconds: number;
  phases: Array<{ name: string; startedAt: string; endedAt: string }>;
  timeline: Array<{ kind: string; message: string }>;
  apiCalls: { kubernetes: Record<string, number>; elbv2: Record<string, number> };
}

for (const example of ['2048/safe', '2048/naive'] as const) {
  describeTiers(`deploy ${example} with --tune auto`, (tier) => {
    let l: E2eLab;
    before(async () => {
      l = await e2eLab({}, tier);
    });
    after(async () => {
      await l.stop();
    });

    it('installs, then rolls a new image under traffic with zero non-2xx responses', async () => {
      const reportFile = join(l.dir, 'install.json');
      const install = await l.cli(['deploy', '-f', `examples/${example}`, '--tune', 'auto', '--report', reportFile, ...labArgs(l)]);
      assert.equal(install.code, 0, `install failed:\n${install.stdout}\n${install.stderr}`);
      const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
      assert.equal(report.result, 'succeeded');
      assert.equal(report.revision, '1');
      assert.deepEqual(report.phases.map((p) => p.name), ['preflight', 'namespaces', 'routing', 'workloads', 'bake']);
      assert.ok((report.apiCalls.elbv2.DescribeTargetHealth ?? 0) > 0);
      assert.ok(report.timeline.some((e) => e.kind === 'target-state' && /healthy/.test(e.message)));

      // Deploy reported success: from this moment the ALB must serve every request.
      const load = traffic(albUrl(l.lab), 40);
      await waitFor(() => load.records.length >= 40 || undefined, { timeoutMs: 10_000, what: 'traffic to start' });
      const v2 = await variant(example, l.dir, 'v2');
      const updateReport = join(l.dir, 'update.json');
      const update = await l.cli(['deploy', '-f', v2, '--tune', 'auto', '--report', updateReport, ...labArgs(l)]);
      assert.equal(update.code, 0, `update failed:\n${update.stdout}\n${update.stderr}`);
      await waitFor(() => load.records.length >= 400 || undefined, { timeoutMs: 30_000, what: '400 requests' });
      const summary = await load.stop();
      const updated = JSON.parse(await readFile(updateReport, 'utf8')) as Report;
      assert.equal(updated.revision, '2');
      assert.equal(updated.previousRevision, '1');
      assert.equal(summary.non2xx, 0, `non-2xx responses during the update: ${JSON.stringify(summary.responses)}`);
      const seconds = (Math.max(...load.records.map((r) => r.at)) - Math.min(...load.records.map((r) => r.at))) / 1000;
      assert.ok(summary.requests / seconds >= 20, `traffic ran at ${(summary.requests / seconds).toFixed(1)} requests/s`);
      assert.ok(Object.keys(summary.versions).some((v) => v.endsWith(':v2')), 'the new version answered');

      // Idempotent: the same manifests again is a quick no-op that still verifies.
      const again = await l.cli(['deploy', '-f', v2, '--tune', 'auto', ...labArgs(l)]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /revision 2 → 2/);
    });
  });
}

describeTiers('the same update through plain kubectl apply (no tool)', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('serves 5xx while the naive manifests roll', async () => {
    const first = await l.kubectl(['apply', '--server-side', '-f', 'examples/2048/naive']);
    assert.equal(first.code, 0, first.stderr);
    await waitFor(async () => (await fetch(albUrl(l.lab)).then((r) => r.status, () => 0)) === 200 || undefined, {
      timeoutMs: 60_000,
      what: 'the naive app to serve through the ALB',
    });
    const rolled = await l.kubectl(['rollout', 'status', 'deployment/deployment-2048', '-n', 'game-2048', '--timeout=60s']);
    assert.equal(rolled.code, 0, rolled.stderr);
    const load = traffic(albUrl(l.lab), 40);
    await waitFor(() => load.records.length >= 40 || undefined, { timeoutMs: 10_000, what: 'traffic to start' });
    const v2 = await variant('2048/naive', l.dir, 'v2');
    const update = await l.kubectl(['apply', '--server-side', '-f', v2]);
    assert.equal(update.code, 0, update.stderr);
    const status = await l.kubectl(['rollout', 'status', 'deployment/deployment-2048', '-n', 'game-2048', '--timeout=90s'], 100_000);
    assert.equal(status.code, 0, status.stderr);
    await waitFor(() => load.records.length >= 600 || undefined, { timeoutMs: 60_000, what: '600 requests' });
    const summary = await load.stop();
    const fivexx = Object.entries(summary.responses).filter(([code]) => code.startsWith('5')).reduce((a, [, n]) => a + n, 0);
    assert.ok(fivexx > 0, `expected 5xx from the naive rollout, saw ${JSON.stringify(summary.responses)}`);
  });
});
