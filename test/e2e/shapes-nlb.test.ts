import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { describeTiers, e2eLab, labArgs, type E2eLab } from './helpers.js';
import { deployment, namespace, service, updateUnderTraffic, writeSet } from './shapes-lb-helpers.js';

/** Issue 10 through deploy, under traffic, on both tiers: an NLB Service (the controller's Service path, TCP data plane). */

describeTiers('shapes through deploy: an NLB Service (aws-load-balancer-type external, nlb-target-type ip)', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('waits for the NLB\'s binding, then rolls out with gates, healthy TCP targets and drain, zero failed requests through the NLB', async () => {
    const nlb = {
      'service.beta.kubernetes.io/aws-load-balancer-type': 'external',
      'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip',
      'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internet-facing',
    };
    const set = (tag: string): Record<string, string> => ({ '1-ns.yaml': namespace('nlb-app'), '2-svc.yaml': service('nlb-app', 'echo', nlb, 'LoadBalancer'), '4-deploy.yaml': deployment('nlb-app', 'echo', tag) });
    const v1 = await writeSet(l, 'nlb-v1', set('v1'));
    const plan = await l.cli(['plan', '-f', v1]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /the NLB of Service nlb-app\/echo has the TargetGroupBinding for port 80 with targetType ip/);
    // A first install with no traffic yet: the guard cannot measure (no probe: an NLB has no HTTP hostname to probe).
    const install = await l.cli(['deploy', '-f', v1, '--on-inconclusive', 'pass', ...labArgs(l)], { timeoutMs: 180_000 });
    assert.equal(install.code, 0, `install failed:\n${install.stdout}\n${install.stderr}`);
    const lb = l.lab.loadBalancers().find((x) => x.type === 'network');
    const address = lb?.listeners.find((x) => x.port === 80)?.address;
    assert.ok(address, `the NLB and its TCP:80 listener in lab.json: ${JSON.stringify(l.lab.loadBalancers())}`);
    const report = await updateUnderTraffic(l, [`http://${address}/`], await writeSet(l, 'nlb-v2', set('v2')), join(l.dir, 'nlb.json'), ['--probe-url', `http://${address}/`]);
    assert.equal(report.targetGroupArns.length, 1);
  });
});
