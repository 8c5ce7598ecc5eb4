import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { JsonObject } from '../../src/manifests/types.js';
import { waitFor } from '../helpers/wait.js';
import { labBehavior } from '../../src/lab/variants.js';
import { describeTiers, albUrl, e2eLab, labArgs, traffic, variant, type E2eLab } from './helpers.js';

/** The safe example with probes and the ALB health check on /healthz, so that LAB_BEHAVIOR=error-500 breaks users only. */
const release = labBehavior;

interface Report {
  result: string;
  exitCode: number;
  revision: string;
  error?: string;
  guard?: { decision: { verdict: string; reason: string; decidingSignal?: string }; signals: Array<{ signal: string; errors: number }> };
  rollbacks?: Array<{ outcome: string; fromRevision?: number; toRevision?: number }>;
  timeline: Array<{ kind: string; message: string; at: string }>;
}

const GUARD = ['--probe-rate', '20', '--cloudwatch-settle', '0', '--target-health-interval', '500ms'];

async function podImages(l: E2eLab, ns: string): Promise<string[]> {
  return l.lab.store
    .list('Pod', ns)
    .items.filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => String((((p.spec as JsonObject).containers as JsonObject[])[0] as JsonObject).image));
}

describeTiers('the 5xx guard and rollback', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
    const v1 = await variant('2048/safe', l.dir, 'v1', release());
    const r = await l.cli(['deploy', '-f', v1, ...labArgs(l), ...GUARD]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  });
  after(async () => {
    await l.stop();
  });

  it('rolls back a release that answers 500, and traffic is 2xx again on the previous version', { timeout: 120_000 }, async () => {
    const load = traffic(albUrl(l.lab), 40);
    await waitFor(() => load.records.length >= 40 || undefined, { timeoutMs: 10_000, what: 'traffic to start' });
    const bad = await variant('2048/safe', l.dir, 'bad500', release('error-500'));
    const reportFile = join(l.dir, 'bad500.json');
    const r = await l.cli(['deploy', '-f', bad, '--report', reportFile, ...labArgs(l, '10s'), ...GUARD]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
    assert.equal(report.result, 'rolled-back');
    assert.equal(report.guard?.decision.verdict, 'fail');
    assert.equal(report.rollbacks?.[0]?.outcome, 'rolled-back');
    assert.match(report.error ?? '', /the guard saw/);
    assert.match(report.error ?? '', /previous version is serving again/);
    assert.ok(report.timeline.some((e) => e.kind === 'rollback'), 'the rollback is on the timeline');
    // Afterwards every pod runs the previous version and the ALB answers 2xx.
    assert.deepEqual([...new Set(await podImages(l, 'game-2048'))], ['public.ecr.aws/l6m2t8p7/docker-2048:v1']);
    const from = load.records.length;
    await waitFor(() => load.records.length >= from + 80 || undefined, { timeoutMs: 10_000, what: '80 more requests' });
    await load.stop();
    const tail = load.records.slice(from);
    assert.ok(tail.every((x) => x.status === 200), `after the rollback: ${JSON.stringify(tail.filter((x) => x.status !== 200).slice(0, 3))}`);
  });

  it('rolls back a release that crashes on start', { timeout: 120_000 }, async () => {
    const crash = await variant('2048/safe', l.dir, 'crash', release('crash'));
    const reportFile = join(l.dir, 'crash.json');
    const r = await l.cli(['deploy', '-f', crash, '--report', reportFile, ...labArgs(l), ...GUARD]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
    assert.equal(report.result, 'rolled-back', report.error);
    assert.match(report.error ?? '', /crash-loop|ProgressDeadlineExceeded/);
    assert.deepEqual([...new Set(await podImages(l, 'game-2048'))], ['public.ecr.aws/l6m2t8p7/docker-2048:v1']);
  });

  it('does not roll back a good release with background noise on both versions', { timeout: 120_000 }, async () => {
    const noisyOld = await variant('2048/safe', l.dir, 'v1', release('error-rate=0.001'));
    assert.equal((await l.cli(['deploy', '-f', noisyOld, ...labArgs(l), ...GUARD])).code, 0);
    const load = traffic(albUrl(l.lab), 40);
    const noisyNew = await variant('2048/safe', l.dir, 'v3', release('error-rate=0.001'));
    const r = await l.cli(['deploy', '-f', noisyNew, ...labArgs(l, '5s'), ...GUARD]);
    await load.stop();
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /result: succeeded/);
    assert.deepEqual([...new Set(await podImages(l, 'game-2048'))], ['public.ecr.aws/l6m2t8p7/docker-2048:v3']);
  });

  it('with --rollback off only reports', { timeout: 120_000 }, async () => {
    const bad = await variant('2048/safe', l.dir, 'bad-v4', release('error-500'));
    const r = await l.cli(['deploy', '-f', bad, '--rollback', 'off', ...labArgs(l, '10s'), ...GUARD]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /result: failed/);
    assert.match(r.stdout, /Not rolled back \(--rollback off\)/);
    // Nothing is rolled back: the Deployment goes on to the bad version. The guard may fail before the rollout
    // ends (the real controller registers the first bad pods sooner than the emulation), so wait for it to end.
    let images: string[] = [];
    await waitFor(async () => (images = [...new Set(await podImages(l, 'game-2048'))]).join() === 'public.ecr.aws/l6m2t8p7/docker-2048:bad-v4', {
      timeoutMs: 60_000,
      what: 'every pod on the bad version (not rolled back)',
      describe: () => images.join(', '),
    });
  });

  it('`alb-rollout rollback` goes back to the previous revision with the same waits', { timeout: 120_000 }, async () => {
    const r = await l.cli(['rollback', '-n', 'game-2048', '--deployment', 'deployment-2048', '--lab', join(l.dir, 'state')]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /result: rolled-back/);
    assert.deepEqual([...new Set(await podImages(l, 'game-2048'))], ['public.ecr.aws/l6m2t8p7/docker-2048:v3']);
    const missing = await l.cli(['rollback', '-n', 'game-2048', '--deployment', 'deployment-2048', '--to-revision', '99', '--lab', join(l.dir, 'state')]);
    assert.equal(missing.code, 2, missing.stdout);
    assert.match(missing.stdout + missing.stderr, /revision/);
  });
});
