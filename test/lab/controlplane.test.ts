import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { binaryPath, cacheRoot, findSourceDir, ldflags, readSource } from '../../src/lab/controlplane/build.js';
import { issueCert, newCa, newSigningKey } from '../../src/lab/controlplane/certs.js';
import { urlWebhookConfiguration } from '../../src/lab/controlplane/lbc-parts.js';
import { IpAllocator, realTierIpRange } from '../../src/lab/kubelet/ip.js';
import { testTiers } from '../e2e/helpers.js';

const root = join(import.meta.dirname, '..', '..');

describe('real control plane: certificates from node:crypto', () => {
  it('a CA and a server certificate it signs, with DNS and IP subject alternative names and serverAuth', () => {
    const ca = newCa('test-ca');
    const caCert = new X509Certificate(ca.certPem);
    assert.equal(caCert.ca, true);
    assert.ok(caCert.checkIssued(caCert), 'self-signed');
    const srv = issueCert(ca, { commonName: 'kube-apiserver', hosts: ['localhost', '127.0.0.1'], usage: 'server' });
    const cert = new X509Certificate(srv.certPem);
    assert.equal(cert.ca, false);
    assert.ok(cert.checkIssued(caCert));
    assert.ok(cert.verify(caCert.publicKey), 'signed by the CA key');
    assert.equal(cert.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1');
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  });

  it('a client certificate carries CN and O (user and group for the API server)', () => {
    const ca = newCa('test-ca');
    const c = new X509Certificate(issueCert(ca, { commonName: 'admin', organizations: ['system:masters'], usage: 'client' }).certPem);
    assert.match(c.subject, /O=system:masters/);
    assert.match(c.subject, /CN=admin/);
    assert.deepEqual(c.keyUsage, ['1.3.6.1.5.5.7.3.2']);
  });

  it('service-account signing keys are PEM (PKCS#8 private, SPKI public)', () => {
    const k = newSigningKey();
    assert.match(k.privatePem, /^-----BEGIN PRIVATE KEY-----/);
    assert.match(k.publicPem, /^-----BEGIN PUBLIC KEY-----/);
  });
});

describe('real control plane: build cache and version', () => {
  it('reads the pinned Kubernetes and etcd versions from go.mod; the cache path names version and source hash', async () => {
    const source = await readSource(findSourceDir(root));
    assert.match(source.kubernetesVersion, /^v1\.(3[4-9]|[4-9]\d)\.\d+$/);
    assert.match(source.etcdVersion, /^v3\.\d+\.\d+$/);
    assert.match(source.hash, /^[0-9a-f]{12}$/);
    const env = { HOME: '/home/x', XDG_CACHE_HOME: '/c' };
    assert.equal(cacheRoot(env), '/c/alb-rollout/controlplane');
    assert.equal(cacheRoot({ HOME: '/home/x' }), '/home/x/.cache/alb-rollout/controlplane');
    assert.equal(binaryPath(source, env), `/c/alb-rollout/controlplane/${source.kubernetesVersion}-${source.hash}/controlplane`);
  });

  it('stamps the version into the servers', () => {
    assert.match(ldflags('v1.35.4'), /-X k8s\.io\/component-base\/version\.gitVersion=v1\.35\.4/);
    assert.match(ldflags('v1.35.4'), /gitMajor=1 .*gitMinor=35/);
    assert.match(ldflags('v1.35.4'), /^-s -w /);
  });

  it('lab build without Go on PATH: exit 2, says what is missing and what to do', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alb-nogo-'));
    try {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'lab', 'build', '--control-plane', 'real'], {
        cwd: root,
        encoding: 'utf8',
        env: { PATH: '/nonexistent', HOME: dir, XDG_CACHE_HOME: dir, NODE_NO_WARNINGS: '1' },
        timeout: 60_000,
      });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /error: Go is not installed: `go` is not on PATH\n {2}fix: install Go/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lab up --control-plane real when it is not built: exit 2 naming `lab build`, nothing started', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alb-notbuilt-'));
    try {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'lab', 'up', '--control-plane', 'real', '--state-dir', join(dir, 'state')], {
        cwd: root,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', HOME: dir, XDG_CACHE_HOME: dir, NODE_NO_WARNINGS: '1' },
        timeout: 60_000,
      });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /is not built: .* does not exist\n {2}fix: run `npx alb-rollout lab build --control-plane real` first/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('real control plane: lab parts', () => {
  it('pod IPs on the real tier come from 198.18.0.0/15 (a real API server rejects loopback endpoints); other ranges are refused', () => {
    const ips = new IpAllocator(realTierIpRange());
    assert.equal(ips.allocate(), '198.18.0.2');
    assert.equal(ips.allocate(), '198.18.0.3');
    assert.doesNotThrow(() => new IpAllocator({ start: '198.19.0.2', end: '198.19.0.9' }));
    assert.throws(() => new IpAllocator({ start: '10.0.0.2', end: '10.0.0.9' }), /must lie in 127\.0\.0\.0\/8 or 198\.18\.0\.0\/15/);
    assert.throws(() => new IpAllocator({ start: '127.0.0.2', end: '198.18.0.9' }), /must lie in/);
  });

  it('the LBC webhook configuration points at a URL with the CA bundle (admission.k8s.io/v1)', () => {
    const mwc = urlWebhookConfiguration('https://127.0.0.1:9443', 'PEM');
    const hooks = mwc.webhooks as Array<{ clientConfig: { url: string; caBundle: string; service?: unknown }; admissionReviewVersions: string[] }>;
    assert.deepEqual(hooks.map((h) => h.clientConfig.url), ['https://127.0.0.1:9443/mutate-v1-pod', 'https://127.0.0.1:9443/mutate-elbv2-k8s-aws-v1beta1-targetgroupbinding']);
    for (const h of hooks) {
      assert.equal(h.clientConfig.caBundle, Buffer.from('PEM').toString('base64'));
      assert.equal(h.clientConfig.service, undefined);
      assert.deepEqual(h.admissionReviewVersions, ['v1']);
    }
  });

  it('the test tier comes from ALB_ROLLOUT_TEST_TIER (default embedded)', () => {
    assert.deepEqual(testTiers({}), ['embedded']);
    assert.deepEqual(testTiers({ ALB_ROLLOUT_TEST_TIER: 'real' }), ['real']);
    assert.deepEqual(testTiers({ ALB_ROLLOUT_TEST_TIER: 'both' }), ['embedded', 'real']);
    assert.throws(() => testTiers({ ALB_ROLLOUT_TEST_TIER: 'kind' }), /is not embedded, real or both/);
  });
});
