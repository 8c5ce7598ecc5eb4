import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { describeTiers, e2eLab, labArgs, traffic, type E2eLab } from './helpers.js';
import { GUARD, IMAGE, albOf, images, release, report } from './guard-helpers.js';

/**
 * Issue 8 against the lab, with traffic: the probe measures the old version for a rate-sized baseline before
 * apply and judges the release against it with a confidence bound. An old version failing 8% of requests
 * (LAB_BEHAVIOR error-rate=0.08) and a new one just as noisy: not rolled back; a new one at 50%: rolled back by the probe.
 */

describeTiers('the probe judges the release against the old version it measured (issue 8)', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('old version at 8% errors: a release at 8% succeeds (probe and CloudWatch judge it against the baseline), one at 50% is rolled back by the probe', { timeout: 240_000 }, async () => {
    const ns = 'noisy';
    const first = await l.cli(['deploy', '-f', await release(l, ns, 'v1', 'error-rate=0.08'), ...labArgs(l), ...GUARD]);
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
    const load = traffic(albOf(l, ns), 40);
    try {
      await waitFor(() => load.records.length >= 40 || undefined, { timeoutMs: 10_000, what: 'traffic to start' });
      const file = join(l.dir, 'noisy-same.json');
      const same = await l.cli(['deploy', '-f', await release(l, ns, 'v2', 'error-rate=0.08'), '--report', file, ...labArgs(l, '10s'), ...GUARD]);
      assert.equal(same.code, 0, `${same.stdout}\n${same.stderr}`);
      const rep = await report(file);
      assert.equal(rep.result, 'succeeded', rep.guard?.decision.reason);
      assert.equal(rep.guard?.decision.verdict, 'pass');
      // The baseline: 200 requests (the default) to the old version before apply, its rate and bounds said.
      assert.match(same.stderr, /probe baseline of the live version at http:\/\/127\.[\d.]+:\d+\/: 200 request\(s\) in [\d.]+s: \d+×200, \d+×500; error rate \d+\.\d% \(95% bounds \d+\.\d%–\d+\.\d% from 200 request\(s\)\) — the release's probe windows are judged against it/);
      assert.ok(same.stderr.indexOf('probe baseline') < same.stderr.indexOf(`applied Deployment ${ns}/deployment-2048`), 'baselined before the apply');
      assert.ok(rep.guard?.baselines?.some((b) => /^probe: the old version's \d+\.\d% \(95% bounds .*\), the probe's 200 request\(s\) before apply$/.test(b)), JSON.stringify(rep.guard?.baselines));
      assert.ok(rep.guard?.baselines?.some((b) => /^cloudwatch: baseline of the old version: \d+ of the 5 period\(s\) of 60s before apply with datapoints — targetgroup\/[^:]+: RequestCount \d+, HTTPCode_Target_5XX_Count \d+/.test(b)), JSON.stringify(rep.guard?.baselines));
      const probe = rep.guard?.signals?.find((s) => s.signal === 'probe');
      assert.ok(probe && probe.errors > 0 && probe.windows >= 10, `the probe saw the release's own errors and judged them: ${JSON.stringify(rep.guard?.signals)}`);
      assert.equal(rep.guard?.signals?.find((s) => s.signal === 'cloudwatch')?.failingWindows ?? 0, 0, JSON.stringify(rep.guard?.signals));
      assert.deepEqual(images(l, ns), [`${IMAGE}:${ns}-v2`]);

      // CloudWatch only reports here, so that what decides is the probe.
      const badFile = join(l.dir, 'noisy-worse.json');
      const worse = await l.cli(['deploy', '-f', await release(l, ns, 'v3', 'error-rate=0.5'), '--report', badFile, '--cloudwatch', 'report', ...labArgs(l, '10s'), ...GUARD]);
      assert.equal(worse.code, 1, `${worse.stdout}\n${worse.stderr}`);
      const bad = await report(badFile);
      assert.equal(bad.result, 'rolled-back', bad.error);
      assert.equal(bad.guard?.decision.decidingKind, 'probe', bad.guard?.decision.reason);
      assert.match(bad.guard?.decision.reason ?? '', /: above the old version's \d+\.\d% \(\d+ of 200, the probe's 200 request\(s\) before apply; at most \d+\.\d% at 95%\) \+ 5\.0% \(p = /);
      assert.deepEqual(images(l, ns), [`${IMAGE}:${ns}-v2`]);
    } finally {
      await load.stop();
    }
  });
});
