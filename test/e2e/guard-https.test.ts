import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { describeTiers, e2eLab, labArgs, variant, type E2eLab } from './helpers.js';
import { hostedEdit, report } from './guard-helpers.js';

/**
 * Issue 8, item 2 through TLS, against the lab with the probe's traffic: an Ingress whose listen-ports ask for
 * HTTPS (with a certificate-arn) gets an HTTPS listener on the lab ALB, served with a certificate of the lab CA for
 * the rule's host (SNI); `ssl-redirect` makes its HTTP listener answer 301 to HTTPS. The CLI trusts the lab CA as a
 * user would trust a private CA: NODE_EXTRA_CA_CERTS. The probe measures through TLS: a release answering 500 is
 * rolled back by the probe, a good one passes on the probe's measurements.
 */

const GUARD = ['--probe-rate', '20', '--probe-timeout', '5s', '--cloudwatch-settle', '0', '--target-health', 'report', '--target-health-interval', '500ms'];
const HOST = 'game.example.com';
const CERT = 'arn:aws:acm:us-east-1:123456789012:certificate/lab-game';

function tls(ns: string, annotations: string, behavior?: string): (file: string, text: string) => string {
  return hostedEdit(ns, HOST, `${annotations}    alb.ingress.kubernetes.io/certificate-arn: ${CERT}\n`, behavior);
}

const HTTPS_ONLY = `    alb.ingress.kubernetes.io/listen-ports: '[{"HTTPS": 443}]'\n`;
const REDIRECT = `    alb.ingress.kubernetes.io/listen-ports: '[{"HTTP": 80}, {"HTTPS": 443}]'\n    alb.ingress.kubernetes.io/ssl-redirect: '443'\n`;

function get(url: string, host: string): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host }, agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, ...(res.headers.location ? { location: res.headers.location } : {}) });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

describeTiers('the probe measures through TLS on the lab ALB (issue 8)', (tier) => {
  let l: E2eLab;
  let trusted: { env: Record<string, string> };
  before(async () => {
    l = await e2eLab({}, tier);
    assert.ok(l.lab.albCaFile, 'the lab writes its ALB CA next to lab.json');
    trusted = { env: { NODE_EXTRA_CA_CERTS: l.lab.albCaFile } };
  });
  after(async () => {
    await l.stop();
  });

  async function guardedReleases(ns: string, annotations: string, expectTarget: RegExp): Promise<void> {
    const v1 = await variant('2048/safe', l.dir, `${ns}-v1`, tls(ns, annotations));
    const first = await l.cli(['deploy', '-f', v1, ...labArgs(l), ...GUARD], trusted);
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);

    const badFile = join(l.dir, `${ns}-bad.json`);
    // CloudWatch only reports: the lab's compressed minutes (3 s) could otherwise judge before the probe.
    const bad = await l.cli(['deploy', '-f', await variant('2048/safe', l.dir, `${ns}-bad`, tls(ns, annotations, 'error-500')), '--report', badFile, '--cloudwatch', 'report', ...labArgs(l, '10s'), ...GUARD], trusted);
    assert.equal(bad.code, 1, `${bad.stdout}\n${bad.stderr}`);
    assert.match(bad.stderr, expectTarget);
    assert.match(bad.stderr, new RegExp(`probe baseline of the live version at https://127\\.[\\d.]+:\\d+/: \\d+ request\\(s\\) in [\\d.]+s: \\d+×200`));
    const rb = await report(badFile);
    assert.equal(rb.result, 'rolled-back', rb.error);
    assert.equal(rb.guard?.decision.decidingKind, 'probe', rb.guard?.decision.reason);
    assert.match(rb.guard?.decision.reason ?? '', /×500/);

    const goodFile = join(l.dir, `${ns}-good.json`);
    const good = await l.cli(['deploy', '-f', await variant('2048/safe', l.dir, `${ns}-v2`, tls(ns, annotations)), '--report', goodFile, ...labArgs(l, '5s'), ...GUARD], trusted);
    assert.equal(good.code, 0, `${good.stdout}\n${good.stderr}`);
    const rg = await report(goodFile);
    assert.equal(rg.result, 'succeeded');
    assert.equal(rg.guard?.decision.verdict, 'pass');
    assert.match(rg.guard?.decision.reason ?? '', /probe/);
  }

  it('HTTPS-only Ingress: the probe goes to the HTTPS listener with the rule host as SNI; a bad release is rolled back, a good one passes', { timeout: 240_000 }, async () => {
    await guardedReleases('tlsonly', HTTPS_ONLY, /probe target https:\/\/k8s-tlsonly-[^ ]+\/ \(https:\/\/127\.[\d.]+:\d+\/\): HTTPS:443 from listen-ports, Host game\.example\.com from the rule/);
    const alb = l.lab.albs().find((a) => a.ingress === 'tlsonly/ingress-2048');
    assert.ok(alb?.httpsUrl, JSON.stringify(alb));
    assert.deepEqual(alb.listeners.map((x) => `${x.protocol}:${x.port}`), ['HTTPS:443'], 'no HTTP listener: listen-ports asked for HTTPS only');
  });

  it('ssl-redirect: the HTTP listener answers 301 to HTTPS; the probe measures where the redirect leads, through TLS', { timeout: 240_000 }, async () => {
    await guardedReleases('redirect', REDIRECT, /probe target https:\/\/k8s-redirect-[^ ]+\/ \(https:\/\/127\.[\d.]+:\d+\/\): HTTPS:443 from listen-ports, HTTP:80 redirects to it \(ssl-redirect\), Host game\.example\.com from the rule/);
    const alb = l.lab.albs().find((a) => a.ingress === 'redirect/ingress-2048');
    assert.ok(alb, JSON.stringify(l.lab.albs()));
    assert.deepEqual(alb.listeners.map((x) => `${x.protocol}:${x.port}`), ['HTTP:80', 'HTTPS:443']);
    const r = await get(`${alb.url}/some/path`, HOST);
    assert.equal(r.status, 301);
    assert.equal(r.location, `https://${HOST}:443/some/path`);

    // Probing the HTTP listener itself measures the redirect, not the app: said so, and with require, exit 2.
    const v3 = await variant('2048/safe', l.dir, 'redirect-v3', tls('redirect', REDIRECT));
    const at = await l.cli(['deploy', '-f', v3, '--probe', 'require', '--probe-url', `${alb.url}/`, '--probe-header', `Host: ${HOST}`, ...labArgs(l), ...GUARD], trusted);
    assert.equal(at.code, 2, `${at.stdout}\n${at.stderr}`);
    assert.match(at.stdout, /answers only redirects or auth challenges \(\d+ request\(s\) in [\d.]+s: \d+×301[^)]*\): the ALB's rules answer, not the app/);
    assert.match(at.stdout, /nothing was applied/);
  });

  it('the lab CA not trusted: the TLS failure is said with the fix, and --probe require stops before the workloads (exit 2)', { timeout: 120_000 }, async () => {
    const dir = await variant('2048/safe', l.dir, 'untrusted-v1', tls('untrusted', HTTPS_ONLY));
    const r = await l.cli(['deploy', '-f', dir, '--probe', 'require', ...labArgs(l), ...GUARD]);
    assert.equal(r.code, 2, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /--probe require: the probe cannot reach the load balancer[\s\S]*the TLS handshake with 127\.[\d.]+:\d+ failed \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): [^\n]*trust its CA \(NODE_EXTRA_CA_CERTS\)/);
    assert.match(r.stdout, /TLS to 127\.[\d.]+:\d+ \(SNI game\.example\.com\): UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    assert.equal(l.lab.store.list('Deployment', 'untrusted').items.length, 0, 'no workload applied');
  });
});
