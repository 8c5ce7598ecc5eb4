import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { describeTiers, e2eLab, labArgs, type E2eLab } from './helpers.js';
import { deployment, ingress, namespace, service, updateUnderTraffic, writeSet } from './shapes-lb-helpers.js';

/** Issue 10 through deploy, under traffic, on both tiers: an IngressGroup across two namespaces (one ALB). */

describeTiers('shapes through deploy: an IngressGroup across two namespaces', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('one ALB for both namespaces; both Deployments roll out with their own target group checked, zero non-2xx on both paths', async () => {
    const set = (tag: string): Record<string, string> => ({
      '1-ns.yaml': `${namespace('team-a')}---\n${namespace('team-b')}`,
      '2-svc.yaml': `${service('team-a', 'api')}---\n${service('team-b', 'web')}`,
      '3-ing.yaml': `${ingress('team-a', 'api', '/api', 'shared', 10)}---\n${ingress('team-b', 'web', '/', 'shared', 20)}`,
      '4-deploy.yaml': `${deployment('team-a', 'api', tag)}---\n${deployment('team-b', 'web', tag)}`,
    });
    const install = await l.cli(['deploy', '-f', await writeSet(l, 'group-v1', set('v1')), ...labArgs(l)], { timeoutMs: 180_000 });
    assert.equal(install.code, 0, `install failed:\n${install.stdout}\n${install.stderr}`);
    const group = l.lab.loadBalancers().filter((lb) => lb.type === 'application');
    assert.equal(group.length, 1, `one ALB for the group: ${JSON.stringify(group)}`);
    assert.deepEqual([...(group[0]?.ingresses ?? [])].sort(), ['team-a/api', 'team-b/web']);
    const url = group[0]?.listeners.find((x) => x.port === 80)?.address;
    assert.ok(url, `the group ALB's HTTP:80 listener in lab.json: ${JSON.stringify(group)}`);
    const report = await updateUnderTraffic(l, [new URL('/api', url).href, new URL('/', url).href], await writeSet(l, 'group-v2', set('v2')), join(l.dir, 'group.json'));
    assert.equal(report.targetGroupArns.length, 2, 'each member\'s target group was checked');
  });
});
