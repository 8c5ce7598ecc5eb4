import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { describeTiers, e2eLab, labArgs, traffic, variant, type E2eLab } from './helpers.js';
import { GUARD, hostedEdit } from './guard-helpers.js';

/**
 * Issue 8, item 2 against the lab, with traffic: the probe goes to the ALB as the Ingress defines it — the rule's
 * host as Host header (the ALB's default action answers 404 to any other host, which is not the app), the scheme
 * and port from listen-ports, HTTPS with the rule's host as SNI.
 */

describeTiers('the probe goes to the ALB as the Ingress defines it (issue 8)', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it("the rule's host as Host header: a release answering 500 behind a host rule is rolled back by the probe", { timeout: 200_000 }, async () => {
    const v1 = await variant('2048/safe', l.dir, 'hosted-v1', hostedEdit('hosted', 'game.example.com'));
    const first = await l.cli(['deploy', '-f', v1, ...labArgs(l), ...GUARD]);
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
    assert.match(first.stderr, /probe target http:\/\/k8s-hosted-[^ ]+\/ \(http:\/\/127\.[\d.]+:\d+\/\): HTTP:80 from the default listener, Host game\.example\.com from the rule, path \/ from the rule/);
    const alb = l.lab.albs().find((a) => a.ingress === 'hosted/ingress-2048');
    assert.ok(alb);
    const load = traffic(alb.url, 20);
    try {
      const bad = await variant('2048/safe', l.dir, 'hosted-bad', hostedEdit('hosted', 'game.example.com', '', 'error-500'));
      const file = join(l.dir, 'hosted.json');
      // CloudWatch only reports: the lab's compressed minutes (3 s) could otherwise judge before the probe.
      const r = await l.cli(['deploy', '-f', bad, '--report', file, '--cloudwatch', 'report', ...labArgs(l, '10s'), ...GUARD]);
      assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
      const rep = JSON.parse(await readFile(file, 'utf8')) as { result: string; guard?: { decision: { decidingKind?: string; reason: string } } };
      assert.equal(rep.result, 'rolled-back');
      assert.equal(rep.guard?.decision.decidingKind, 'probe', rep.guard?.decision.reason);
      assert.match(rep.guard?.decision.reason ?? '', /×500/);
      await waitFor(() => load.records.length > 0 || undefined, { timeoutMs: 5000, what: 'traffic' });
    } finally {
      await load.stop();
    }
  });

  it('a set of only the Deployment: the probe is aimed and baselined through the Ingress found live in the cluster, before anything is applied', { timeout: 200_000 }, async () => {
    const v1 = await variant('2048/safe', l.dir, 'only-v1', hostedEdit('only', 'only.example.com'));
    const first = await l.cli(['deploy', '-f', v1, ...labArgs(l), ...GUARD]);
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
    const v2 = await variant('2048/safe', l.dir, 'only-v2', hostedEdit('only', 'only.example.com'));
    const r = await l.cli(['deploy', '-f', join(v2, '4-deployment.yaml'), ...labArgs(l), ...GUARD]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /route\(s\) found in the cluster/);
    assert.match(r.stderr, /probe target http:\/\/k8s-only-[^ ]+\/ \(http:\/\/127\.[\d.]+:\d+\/\): HTTP:80 from the default listener, Host only\.example\.com from the rule/);
    assert.match(r.stderr, /probe baseline of the live version at http:\/\/127\.[\d.]+:\d+\/: \d+ request\(s\) in [\d.]+s: \d+×200/);
    assert.ok(r.stderr.indexOf('probe baseline') < r.stderr.indexOf('applied Deployment only/deployment-2048'), 'baselined before the apply');
  });

  it('HTTPS from listen-ports with the rule\'s host as SNI; a TLS failure is said, and with --probe require it stops before the workloads (exit 2)', { timeout: 120_000 }, async () => {
    const dir = await variant(
      '2048/safe',
      l.dir,
      'tls-v1',
      hostedEdit('tls', 'game.example.com', "    alb.ingress.kubernetes.io/listen-ports: '[{\"HTTPS\": 443}]'\n    alb.ingress.kubernetes.io/certificate-arn: arn:aws:acm:us-east-1:123456789012:certificate/lab\n"),
    );
    const r = await l.cli(['deploy', '-f', dir, '--probe', 'require', ...labArgs(l), ...GUARD]);
    assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /probe target https:\/\/k8s-tls-[^ ]+\/ \(https:\/\/127\.[\d.]+:\d+\/\): HTTPS:443 from listen-ports, Host game\.example\.com from the rule/);
    assert.match(r.stdout, /--probe require: the probe cannot reach the load balancer[\s\S]*the TLS handshake with 127\.[\d.]+:\d+ failed \([A-Z_]+\)[\s\S]*SNI game\.example\.com/);
    assert.doesNotMatch(r.stdout, /nothing was applied/, 'routing was applied on this first install, and the message says so');
    assert.match(r.stdout, /applied before the failure: Namespace tls, Service tls\/service-2048, Ingress tls\/ingress-2048/);
    assert.equal(l.lab.store.list('Deployment', 'tls').items.length, 0, 'no workload applied');
  });
});
