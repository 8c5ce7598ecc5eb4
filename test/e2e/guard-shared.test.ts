import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { describeTiers, e2eLab, labArgs, traffic, variant, type E2eLab } from './helpers.js';
import { GUARD, IMAGE, hostedEdit, images, report } from './guard-helpers.js';

/**
 * Issue 8, item 4 against the lab, with traffic: two apps in one IngressGroup (two namespaces, one ALB). The other
 * app fails — its pods answer 500 (its target group's 5xx) and then it has no pod at all (the ALB's own 503s, which
 * CloudWatch counts only per load balancer). A good release of this app, judged by CloudWatch (the probe cannot
 * reach the ALB here), passes: the guard judges only its own target groups and says the ELB-wide count was not
 * used because the load balancer is shared.
 */

const GROUP = 'shared-demo';

function member(ns: string, host: string, behavior?: string): (file: string, text: string) => string {
  return hostedEdit(ns, host, `    alb.ingress.kubernetes.io/group.name: ${GROUP}\n`, behavior);
}

describeTiers('a shared ALB (IngressGroup): the guard judges only this release (issue 8)', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it("the other app's target and ELB 5xx do not count: a good release passes on its own target groups, and the report says why the ELB-wide count was left out", { timeout: 240_000 }, async () => {
    const mine = await l.cli(['deploy', '-f', await variant('2048/safe', l.dir, 'mine-v1', member('mine', 'mine.example.com')), ...labArgs(l), ...GUARD]);
    assert.equal(mine.code, 0, `${mine.stdout}\n${mine.stderr}`);
    const other = await l.cli(['deploy', '-f', await variant('2048/safe', l.dir, 'other-v1', member('other', 'other.example.com', 'error-500')), ...labArgs(l), '--guard', 'off']);
    assert.equal(other.code, 0, `${other.stdout}\n${other.stderr}`);
    const albs = l.lab.albs().filter((a) => a.ingress === 'mine/ingress-2048' || a.ingress === 'other/ingress-2048');
    assert.equal(new Set(albs.map((a) => a.hostname)).size, 1, `one ALB for the group: ${JSON.stringify(albs)}`);
    const url = albs[0]!.url;

    const mineLoad = traffic(url, 40, 'mine.example.com');
    const otherLoad = traffic(url, 40, 'other.example.com');
    try {
      await waitFor(() => otherLoad.records.filter((r) => r.status === 500).length >= 20 || undefined, { timeoutMs: 20_000, what: "the other app's targets answering 500" });
      // CloudWatch alone judges this release (the probe cannot reach the ALB, target health is off): counting the
      // other app's 503s (40/s against this app's 40/s) would roll it back.
      // The other app loses every pod: the ALB answers 503 itself (HTTPCode_ELB_5XX_Count, per load balancer only).
      assert.equal((await l.kubectl(['scale', 'deployment/deployment-2048', '--replicas=0', '-n', 'other'])).code, 0);
      await waitFor(() => otherLoad.records.filter((r) => r.status === 503).length >= 20 || undefined, { timeoutMs: 60_000, what: 'the ALB answering 503 for the other app' });

      const file = join(l.dir, 'shared.json');
      const r = await l.cli(
        ['deploy', '-f', await variant('2048/safe', l.dir, 'mine-v2', member('mine', 'mine.example.com')), '--report', file, '--probe-url', 'http://app.invalid/', ...labArgs(l), ...GUARD, '--target-health', 'off', '--cloudwatch-min-requests', '20'],
        { timeoutMs: 200_000 },
      );
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      const rep = await report(file);
      assert.equal(rep.result, 'succeeded', rep.error);
      assert.equal(rep.guard?.decision.verdict, 'pass');
      assert.match(rep.guard?.decision.reason ?? '', /measured by cloudwatch/, `${JSON.stringify(rep.guard)}\n${r.stderr}`);
      assert.match(
        rep.guard?.cloudwatchMetrics ?? '',
        new RegExp(`HTTPCode_Target_5XX_Count and RequestCount of this release's target groups only: the load balancer is shared \\(IngressGroup ${GROUP}, Ingress other/ingress-2048[^)]*\\), so its HTTPCode_ELB_5XX_Count includes other applications`),
      );
      assert.match(r.stderr, /guard cloudwatch judges [^\n]*only: the load balancer is shared/);
      assert.deepEqual(images(l, 'mine'), [`${IMAGE}:mine-v2`]);
      assert.ok(otherLoad.records.filter((x) => x.status >= 500).length > 100, 'the other app kept failing during the release');
    } finally {
      await mineLoad.stop();
      await otherLoad.stop();
    }
  });
});
