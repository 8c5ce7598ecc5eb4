import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UnreachableError } from '../../src/errors.js';
import { kubeconfigSource, loadKubeConfig } from '../../src/kube/client.js';

const TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

function config(cluster: string, server: string, current?: string): string {
  return `apiVersion: v1
kind: Config
clusters:
  - name: ${cluster}
    cluster: { server: ${server} }
users:
  - name: ${cluster}-user
    user: { token: t-${cluster} }
contexts:
  - name: ${cluster}
    context: { cluster: ${cluster}, user: ${cluster}-user }
${current ? `current-context: ${current}\n` : ''}`;
}

describe('kubeconfig as kubectl finds it', () => {
  const exists = (present: string[]) => (p: string) => present.includes(p);

  it('--kubeconfig first, then KUBECONFIG, then ~/.kube/config, then the in-cluster service account', () => {
    const env = { KUBECONFIG: '/a:/b', HOME: '/home/u', KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };
    const all = exists(['/a', '/b', '/home/u/.kube/config', TOKEN]);
    assert.deepEqual(kubeconfigSource({ kubeconfigPath: '/flag' }, env, all, ':'), { kind: 'flag', files: ['/flag'] });
    assert.deepEqual(kubeconfigSource({}, env, all, ':'), { kind: 'env', files: ['/a', '/b'] });
    // A self-hosted runner in EKS: in-cluster variables are set, but a kubeconfig in HOME still wins (as with kubectl).
    assert.deepEqual(kubeconfigSource({}, { ...env, KUBECONFIG: '' }, all, ':'), { kind: 'home', files: ['/home/u/.kube/config'] });
    assert.deepEqual(kubeconfigSource({}, { ...env, KUBECONFIG: '' }, exists([TOKEN]), ':'), { kind: 'in-cluster', root: '' });
  });

  it('ALB_ROLLOUT_IN_CLUSTER_ROOT: the service-account files under another root (the lab kubelet\'s analysis pods)', () => {
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '6443', ALB_ROLLOUT_IN_CLUSTER_ROOT: '/lab/pods/u1' };
    assert.deepEqual(kubeconfigSource({}, env, exists([`/lab/pods/u1${TOKEN}`]), ':'), { kind: 'in-cluster', root: '/lab/pods/u1' });
    assert.equal(kubeconfigSource({}, env, exists([TOKEN]), ':').kind, 'none', 'the root replaces /, it is no fallback');
  });

  it('skips missing files of a KUBECONFIG list, and does not fall back to HOME when the list names none that exist', () => {
    const env = { KUBECONFIG: '/gone:/b', HOME: '/home/u' };
    assert.deepEqual(kubeconfigSource({}, env, exists(['/b', '/home/u/.kube/config']), ':'), { kind: 'env', files: ['/b'] });
    const none = kubeconfigSource({}, { KUBECONFIG: '/gone' }, exists(['/home/u/.kube/config']), ':');
    assert.equal(none.kind, 'none');
  });

  describe('loading', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'alb-kubeconfig-'));
      await writeFile(join(dir, 'a'), config('alpha', 'https://127.0.0.1:6443', 'alpha'));
      await writeFile(join(dir, 'b'), config('beta', 'https://127.0.0.2:6443', 'beta'));
      await writeFile(join(dir, 'bad'), 'clusters: [: not yaml');
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('merges a KUBECONFIG list like kubectl: every file contributes, the first current-context wins', () => {
      const kc = loadKubeConfig({}, { KUBECONFIG: `${join(dir, 'a')}:${join(dir, 'b')}` });
      assert.equal(kc.getCurrentContext(), 'alpha');
      assert.deepEqual(kc.getContexts().map((c) => c.name), ['alpha', 'beta']);
      const beta = loadKubeConfig({ context: 'beta' }, { KUBECONFIG: `${join(dir, 'a')}:${join(dir, 'b')}` });
      assert.equal(beta.getCurrentCluster()?.server, 'https://127.0.0.2:6443');
    });

    it('fails with the file, the reason and the fix (no stack trace) on a bad file, an unknown context, or no kubeconfig', () => {
      assert.throws(() => loadKubeConfig({ kubeconfigPath: join(dir, 'bad') }, {}), (e: unknown) => e instanceof UnreachableError && e.message.includes(`cannot load kubeconfig ${join(dir, 'bad')} (--kubeconfig)`) && /Fix: pass --kubeconfig PATH/.test(e.message));
      assert.throws(() => loadKubeConfig({ kubeconfigPath: join(dir, 'a'), context: 'nope' }, {}), /has no context "nope" \(contexts: alpha\)/);
      assert.throws(() => loadKubeConfig({}, { HOME: dir }, () => false), /expected a kubeconfig, but found none: tried .*\.kube\/config, the in-cluster service account/);
    });
  });
});
