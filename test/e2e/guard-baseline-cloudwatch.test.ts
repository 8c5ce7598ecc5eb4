import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { describeTiers, e2eLab, labArgs, traffic, type E2eLab } from './helpers.js';
import { GUARD, IMAGE, albOf, images, release, report } from './guard-helpers.js';

/**
 * Issue 8 against the lab, with traffic: CloudWatch reads the settled minutes before apply (RequestCount and
 * HTTPCode_Target_5XX_Count of the release's target groups) as the old version's baseline and judges the bake's
 * settled minutes against it. The probe cannot reach the ALB here, so CloudWatch alone judges: an old version at 8%
 * and a release at 8% succeed, a release at 50% is rolled back.
 */

describeTiers('CloudWatch judges the release against the minutes before apply (issue 8)', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('old version at 8% errors: a release at 8% succeeds, one at 50% is rolled back by CloudWatch', { timeout: 240_000 }, async () => {
    const ns = 'noisy-cw';
    const first = await l.cli(['deploy', '-f', await release(l, ns, 'v1', 'error-rate=0.08'), ...labArgs(l), ...GUARD]);
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
    const load = traffic(albOf(l, ns), 40);
    // Target health only reports and the probe cannot resolve its URL: CloudWatch decides.
    const cwOnly = ['--probe-url', 'http://app.invalid/', '--target-health', 'report'];
    try {
      // A few of the lab's (compressed) minutes of the old version's traffic.
      await waitFor(() => load.records.length >= 400 || undefined, { timeoutMs: 30_000, what: '400 requests to the old version' });
      const file = join(l.dir, 'noisy-cw-same.json');
      const same = await l.cli(['deploy', '-f', await release(l, ns, 'v2', 'error-rate=0.08'), '--report', file, ...cwOnly, ...labArgs(l), ...GUARD]);
      assert.equal(same.code, 0, `${same.stdout}\n${same.stderr}`);
      const rep = await report(file);
      assert.equal(rep.result, 'succeeded', rep.guard?.decision.reason);
      assert.match(rep.guard?.decision.reason ?? '', /measured by cloudwatch/);
      const baseline = rep.guard?.baselines?.find((b) => b.startsWith('cloudwatch: '));
      assert.match(baseline ?? '', /^cloudwatch: baseline of the old version: [1-5] of the 5 period\(s\) of 60s before apply with datapoints — targetgroup\/[^:]+: RequestCount \d+, HTTPCode_Target_5XX_Count [1-9]\d*/, JSON.stringify(rep.guard?.baselines));
      assert.match(same.stderr, /guard cloudwatch baseline of the old version: /);
      const cw = rep.guard?.signals?.find((s) => s.signal === 'cloudwatch');
      assert.ok(cw && cw.errors > 0 && cw.failingWindows === 0, `CloudWatch saw the release's own 5xx and did not fail it: ${JSON.stringify(rep.guard?.signals)}`);
      assert.deepEqual(images(l, ns), [`${IMAGE}:${ns}-v2`]);

      const badFile = join(l.dir, 'noisy-cw-worse.json');
      const worse = await l.cli(['deploy', '-f', await release(l, ns, 'v3', 'error-rate=0.5'), '--report', badFile, ...cwOnly, ...labArgs(l), ...GUARD]);
      assert.equal(worse.code, 1, `${worse.stdout}\n${worse.stderr}`);
      const bad = await report(badFile);
      assert.equal(bad.result, 'rolled-back', bad.error);
      assert.equal(bad.guard?.decision.decidingKind, 'cloudwatch', bad.guard?.decision.reason);
      assert.match(bad.guard?.decision.reason ?? '', /: above the old version's \d+\.\d% \(\d+ of \d+, CloudWatch, \d of the 5 period\(s\) of 60s before apply with datapoints; at most \d+\.\d% at 95%\) \+ 2\.0%/);
      assert.deepEqual(images(l, ns), [`${IMAGE}:${ns}-v2`]);
    } finally {
      await load.stop();
    }
  });
});
