import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { KubeObject } from '../../src/manifests/types.js';
import { ContainerStartError, Kubelet, analysisImage, matchesImage, type ProcessImages, type TokenRequest } from '../../src/lab/kubelet/index.js';
import { expandVars } from '../../src/lab/kubelet/process.js';
import { ObjectStore } from '../../src/lab/store.js';
import { LabClock, FAST_TIMINGS } from '../../src/lab/timing.js';
import { waitFor } from '../helpers/wait.js';

type Obj = Record<string, any>;

const kubelets: Kubelet[] = [];
const dirs: string[] = [];
after(async () => {
  for (const k of kubelets) await k.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Runs `node -e SCRIPT` for containers of image `lab/script`: the kubelet's process support, without the CLI. */
const scriptImages: ProcessImages = {
  matches: (image) => image.startsWith('lab/script'),
  prepare: async (_pod, container) => {
    const script = String((container.args as string[] | undefined)?.[0] ?? '');
    if (script === 'unrunnable') throw new ContainerStartError('no such command in the image', 128, 'StartError');
    return { file: process.execPath, args: ['-e', script], env: { PATH: process.env.PATH ?? '' }, cwd: tmpdir(), logPath: join(tmpdir(), `kubelet-process-test-${process.pid}.log`) };
  },
};

function start(): { store: ObjectStore; kubelet: Kubelet } {
  const store = new ObjectStore();
  const clock = new LabClock({ ...FAST_TIMINGS, timeScale: 50, containerStartSeconds: 1 });
  const kubelet = new Kubelet(store, clock, { processImages: scriptImages });
  kubelet.start();
  kubelets.push(kubelet);
  return { store, kubelet };
}

function jobPod(name: string, script: string, restartPolicy = 'Never'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { restartPolicy, containers: [{ name: 'run', image: 'lab/script:1', args: [script] }] },
  };
}

const st = (o: KubeObject | undefined): Obj => (o?.status ?? {}) as Obj;

describe('kubelet: containers that run to completion as real processes', () => {
  it('exit 0 → phase Succeeded, terminated Completed; the pod stays, its IP is released', async () => {
    const { store } = start();
    store.create('Pod', jobPod('ok', 'process.exit(0)'));
    const done = await waitFor(() => (st(store.get('Pod', 'default', 'ok')).phase === 'Succeeded' ? store.get('Pod', 'default', 'ok') : undefined), { timeoutMs: 10_000, what: 'Succeeded' });
    const cs = st(done).containerStatuses[0];
    assert.equal(cs.state.terminated.exitCode, 0);
    assert.equal(cs.state.terminated.reason, 'Completed');
    assert.equal(cs.restartCount, 0);
    assert.deepEqual(cs.lastState, {});
    assert.equal(st(done).conditions.find((c: Obj) => c.type === 'Ready').reason, 'PodCompleted');
  });

  it('a non-zero exit → phase Failed with that exit code, no restart (restartPolicy Never)', async () => {
    const { store } = start();
    store.create('Pod', jobPod('fail', 'console.error("verdict: FAIL"); process.exit(1)'));
    const done = await waitFor(() => (st(store.get('Pod', 'default', 'fail')).phase === 'Failed' ? store.get('Pod', 'default', 'fail') : undefined), { timeoutMs: 10_000, what: 'Failed' });
    const t = st(done).containerStatuses[0].state.terminated;
    assert.equal(t.exitCode, 1);
    assert.equal(t.reason, 'Error');
    assert.match(t.message, /verdict: FAIL/);
  });

  it('OnFailure restarts a failing process; a container the lab cannot start fails with its reason', async () => {
    const { store } = start();
    store.create('Pod', jobPod('again', 'process.exit(2)', 'OnFailure'));
    await waitFor(() => (st(store.get('Pod', 'default', 'again')).containerStatuses?.[0]?.restartCount ?? 0) >= 1, { timeoutMs: 10_000, what: 'restarted' });
    assert.equal(st(store.get('Pod', 'default', 'again')).phase, 'Running');
    store.create('Pod', jobPod('cannot', 'unrunnable'));
    const failed = await waitFor(() => (st(store.get('Pod', 'default', 'cannot')).phase === 'Failed' ? store.get('Pod', 'default', 'cannot') : undefined), { timeoutMs: 10_000, what: 'Failed' });
    const t = st(failed).containerStatuses[0].state.terminated;
    assert.equal(t.reason, 'StartError');
    assert.equal(t.exitCode, 128);
  });

  it('deleting a running process pod sends SIGTERM; the pod goes', async () => {
    const { store } = start();
    store.create('Pod', jobPod('long', 'setInterval(() => {}, 1000)'));
    await waitFor(() => st(store.get('Pod', 'default', 'long')).containerStatuses?.[0]?.state?.running, { timeoutMs: 10_000, what: 'running' });
    store.delete('Pod', 'default', 'long');
    await waitFor(() => store.get('Pod', 'default', 'long') === undefined, { timeoutMs: 10_000, what: 'removed' });
  });
});

describe('the analysis image', () => {
  it('matches the repository name with any registry, tag or digest', () => {
    assert.ok(matchesImage('alb-rollout', 'alb-rollout'));
    assert.ok(matchesImage('alb-rollout:0.1.0', 'alb-rollout'));
    assert.ok(matchesImage('ghcr.io/example/alb-rollout:0.1.0', 'alb-rollout'));
    assert.ok(matchesImage('localhost:5000/alb-rollout@sha256:abc', 'alb-rollout'));
    assert.ok(!matchesImage('ghcr.io/example/alb-rollout-web:1', 'alb-rollout'));
    assert.ok(!matchesImage('nginx:1.27', 'alb-rollout'));
  });

  it('$(VAR) expansion as Kubernetes does it', () => {
    assert.equal(expandVars('--namespace=$(NS) $$(NS) $(MISSING)', { NS: 'shop' }), '--namespace=shop $(NS) $(MISSING)');
  });

  it('runs dist/cli.js with the args, the env, KUBERNETES_SERVICE_*, and the projected token under ALB_ROLLOUT_IN_CLUSTER_ROOT', async () => {
    const root = await mkdtemp(join(tmpdir(), 'analysis-image-'));
    dirs.push(root);
    const asked: TokenRequest[] = [];
    const image = analysisImage({
      cliPath: '/repo/dist/cli.js',
      rootDir: root,
      apiServer: { host: '127.0.0.1', port: 6443 },
      caPem: 'CA PEM',
      requestToken: async (r) => {
        asked.push(r);
        return 'TOKEN';
      },
      env: { AWS_REGION: 'eu-west-1', ALB_ROLLOUT_LAB: '/lab' },
    });
    const pod: KubeObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'job-x', namespace: 'shop', uid: 'u-1' },
      spec: {
        serviceAccountName: 'alb-rollout-analysis',
        volumes: [{ name: 'kube-api-access-abc', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }, { configMap: { name: 'kube-root-ca.crt' } }] } }],
      },
    };
    const container = {
      name: 'analyze',
      image: 'ghcr.io/example/alb-rollout:0.1.0',
      args: ['analyze', '--namespace', '$(NS)'],
      env: [{ name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }],
      volumeMounts: [{ name: 'kube-api-access-abc', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
    };
    const spec = await image.prepare(pod, container);
    assert.equal(spec.file, process.execPath);
    assert.deepEqual(spec.args, ['/repo/dist/cli.js', 'analyze', '--namespace', 'shop']);
    assert.equal(spec.env.KUBERNETES_SERVICE_HOST, '127.0.0.1');
    assert.equal(spec.env.KUBERNETES_SERVICE_PORT, '6443');
    assert.equal(spec.env.AWS_REGION, 'eu-west-1');
    assert.equal(spec.env.NS, 'shop');
    assert.equal(spec.env.ALB_ROLLOUT_IN_CLUSTER_ROOT, join(root, 'u-1'));
    assert.deepEqual(asked, [{ namespace: 'shop', serviceAccount: 'alb-rollout-analysis', podName: 'job-x', podUid: 'u-1', expirationSeconds: 3607 }]);
    const sa = join(root, 'u-1', 'var/run/secrets/kubernetes.io/serviceaccount');
    assert.equal(await readFile(join(sa, 'token'), 'utf8'), 'TOKEN');
    assert.equal(await readFile(join(sa, 'ca.crt'), 'utf8'), 'CA PEM');
    assert.equal(await readFile(join(sa, 'namespace'), 'utf8'), 'shop');

    // without the projected volume (automountServiceAccountToken: false) there is no token: no in-cluster root
    const bare = await image.prepare({ ...pod, metadata: { ...pod.metadata, uid: 'u-2' }, spec: {} }, { ...container, volumeMounts: [] });
    assert.equal(bare.env.ALB_ROLLOUT_IN_CLUSTER_ROOT, undefined);
    await assert.rejects(image.prepare(pod, { ...container, command: ['sh', '-c', 'echo'] }), /only through its entrypoint `node \/app\/dist\/cli.js`/);
    await assert.rejects(image.prepare(pod, { ...container, env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] }), /resolves only value and fieldRef/);
    await image.cleanup?.('u-1');
    await assert.rejects(readFile(join(sa, 'token')), /ENOENT/);
  });
});
