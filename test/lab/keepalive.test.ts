import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { AlbCloud } from '../../src/lab/alb/index.js';
import { awsAccount } from '../../src/lab/aws/index.js';
import { Kubelet } from '../../src/lab/kubelet/index.js';
import { LabNetwork, type PodNetwork } from '../../src/lab/network.js';
import { LabRandom } from '../../src/lab/random.js';
import { ObjectStore } from '../../src/lab/store.js';
import { FAST_TIMINGS, LabClock, type LabTimings } from '../../src/lab/timing.js';
import type { KubeObject } from '../../src/manifests/types.js';
import { waitFor } from '../helpers/wait.js';
import { albWithTargetGroup, httpGet, podServer, type PodServer } from './alb-helpers.js';

/**
 * The ALB's keep-alive pool to its targets (realistic profile): connections are reused; a target that closes an
 * idle pooled connection while the ALB reuses it gets that request a 502 (the app's keep-alive timeout shorter than
 * the ALB's idle timeout); the lab app's keepalive-timeout and latency behaviours; in-flight long requests.
 */

const pooled: LabTimings = { ...FAST_TIMINGS, timeScale: 20, albKeepAlive: true, albTargetCloseNoticeSeconds: 20, albPropagationSeconds: 0.2, albHealthRoutingSeconds: 0 };

const albs: AlbCloud[] = [];
const servers: PodServer[] = [];
const kubelets: Kubelet[] = [];
after(async () => {
  await Promise.all(albs.map((a) => a.stop()));
  await Promise.all(servers.map((s) => s.close()));
  for (const k of kubelets) await k.stop();
});

async function albTo(network: PodNetwork, timings: LabTimings, ip: string, port: number, name: string): Promise<{ alb: AlbCloud; url: string; tgArn: string; pooled: () => number }> {
  const alb = new AlbCloud({ clock: new LabClock(timings, new LabRandom(5)), region: 'us-east-1', network });
  albs.push(alb);
  const { lbArn, tgArn } = await albWithTargetGroup(alb, { name });
  const account = awsAccount(alb);
  await account.elbv2('ModifyTargetGroupAttributes', { TargetGroupArn: tgArn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '60' }] });
  await account.elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: ip, Port: port }] });
  // Healthy and in the data plane's routing table (the verdict reaches the table a moment after the state).
  await waitFor(() => alb.history.some((e) => e.tgArn === tgArn && e.id === ip && e.kind === 'data-plane' && e.state === 'routable'), { timeoutMs: 10_000, what: `${ip}:${port} routable` });
  return { alb, url: alb.dataPlaneUrl(lbArn), tgArn, pooled: () => alb.pooledConnections(lbArn)[`${ip}:${port}`] ?? 0 };
}

describe('ALB keep-alive connections to targets', () => {
  test('requests reuse one pooled connection to a target that keeps it open', async () => {
    const network = new LabNetwork();
    const pod = await podServer(network, '127.0.210.1');
    servers.push(pod);
    const conns: Socket[] = [];
    pod.server.on('connection', (s: Socket) => conns.push(s));
    const { url, pooled: idle } = await albTo(network, pooled, pod.ip, pod.port, 'k8s-default-kapool-0123456789');
    const before = conns.length; // health checks open their own
    for (let i = 0; i < 4; i++) {
      assert.equal((await httpGet(`${url}/x`)).status, 200);
      await waitFor(() => idle() === 1, { timeoutMs: 5000, what: 'the connection back in the pool' });
    }
    const data = conns.slice(before).filter((s) => !s.destroyed);
    assert.equal(data.length, 1, 'four requests, one data connection (health checks close theirs)');
  });

  test('a target closing an idle pooled connection while the ALB reuses it: that request gets a 502, the next a fresh connection', async () => {
    const network = new LabNetwork();
    const pod = await podServer(network, '127.0.210.2');
    servers.push(pod);
    const { url, pooled: idle } = await albTo(network, pooled, pod.ip, pod.port, 'k8s-default-karace-0123456789');
    assert.equal((await httpGet(`${url}/a`)).status, 200);
    await waitFor(() => idle() === 1, { timeoutMs: 5000, what: 'the connection back in the pool' });
    // The app's keep-alive timeout fires now: it closes every idle connection (the pooled one among them).
    pod.server.closeIdleConnections();
    // The close reaches the ALB's pool only after albTargetCloseNoticeSeconds (20 world s = 1 s here): reused → 502.
    const raced = await httpGet(`${url}/b`);
    assert.equal(raced.status, 502, raced.body);
    assert.equal(raced.headers.server, 'awselb/2.0');
    assert.equal(raced.headers['x-lab-target'], `${pod.ip}:${pod.port}`);
    assert.equal((await httpGet(`${url}/c`)).status, 200, 'the stale connection is gone: the next request opens a new one');
  });

  test('without keep-alive (the fast profile) each request has its own connection: the same close costs nothing', async () => {
    const network = new LabNetwork();
    const pod = await podServer(network, '127.0.210.3');
    servers.push(pod);
    const { url } = await albTo(network, { ...pooled, albKeepAlive: false }, pod.ip, pod.port, 'k8s-default-kafresh-0123456789');
    assert.equal((await httpGet(`${url}/a`)).status, 200);
    pod.server.closeIdleConnections();
    assert.equal((await httpGet(`${url}/b`)).status, 200);
  });
});

function labPod(name: string, behavior: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: 'web' } },
    spec: { containers: [{ name: 'web', image: 'example/app:v1', ports: [{ containerPort: 8080 }], env: [{ name: 'LAB_BEHAVIOR', value: behavior }] }] },
  };
}

async function kubeletPod(timings: LabTimings, name: string, behavior: string): Promise<{ kubelet: Kubelet; store: ObjectStore; ip: string; port: number }> {
  const store = new ObjectStore();
  const kubelet = new Kubelet(store, new LabClock({ ...timings, containerStartSeconds: 0.2 }), { network: new LabNetwork() });
  kubelets.push(kubelet);
  kubelet.start();
  store.create('Pod', labPod(name, behavior));
  await waitFor(() => kubelet.podAddress('default', name) !== undefined && kubelet.network.route(kubelet.podAddress('default', name)!.ip, 8080).kind === 'listener', {
    timeoutMs: 10_000,
    what: `pod ${name} listening`,
  });
  const addr = kubelet.podAddress('default', name)!;
  return { kubelet, store, ...addr };
}

/** Four requests, 7 world seconds apart: the statuses. */
async function everySevenSeconds(url: string, timings: LabTimings): Promise<number[]> {
  const clock = new LabClock(timings);
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    statuses.push((await httpGet(`${url}/r${i}`)).status);
    await clock.sleep(7);
  }
  return statuses;
}

describe('the lab app: keepalive-timeout and latency (LAB_BEHAVIOR)', () => {
  test('keepalive-timeout=5 shorter than the ALB idle timeout: the app closes idle pooled connections, and reuses race into 502s', async () => {
    const timings: LabTimings = { ...pooled, albTargetCloseNoticeSeconds: 4 };
    const { kubelet, ip, port } = await kubeletPod(timings, 'short-ka', 'keepalive-timeout=5');
    const { url } = await albTo(kubelet.network, timings, ip, port, 'k8s-default-kashort-0123456789');
    // Each request finds the previous connection closed by the app 2 s ago (5 s idle), inside the 4 s before the
    // ALB notices: every reuse is a 502, each followed by a fresh connection.
    const statuses = await everySevenSeconds(url, timings);
    assert.ok(statuses.includes(502), `some reuse raced the app's close: ${statuses.join(',')}`);
    assert.equal(statuses[0], 200);
  });

  test('keepalive-timeout=75 (the default, above the ALB idle timeout of 60): the same traffic has no 502', async () => {
    const timings: LabTimings = { ...pooled, albTargetCloseNoticeSeconds: 4 };
    const { kubelet, ip, port } = await kubeletPod(timings, 'long-ka', 'healthy');
    const { url } = await albTo(kubelet.network, timings, ip, port, 'k8s-default-kalong-0123456789');
    const statuses = await everySevenSeconds(url, timings);
    assert.deepEqual(statuses, [200, 200, 200, 200]);
  });

  test('latency=S: a request takes S world seconds; /healthz answers at once', async () => {
    const { kubelet, ip, port } = await kubeletPod(pooled, 'slow', 'latency=10');
    const { url } = await albTo(kubelet.network, pooled, ip, port, 'k8s-default-kaslow-0123456789');
    const t0 = Date.now();
    assert.equal((await httpGet(`${url}/slow`)).status, 200);
    const worldSeconds = ((Date.now() - t0) / 1000) * pooled.timeScale;
    assert.ok(worldSeconds >= 9.5, `took ${worldSeconds} world s`);
  });

  test('a long request in flight when the pod is deleted without preStop is cut: the ALB answers 502', async () => {
    const { kubelet, store, ip, port } = await kubeletPod(pooled, 'cut', 'latency=40');
    const { url } = await albTo(kubelet.network, pooled, ip, port, 'k8s-default-kacut-0123456789');
    const inflight = httpGet(`${url}/long`, 10_000);
    await new LabClock(pooled).sleep(5);
    store.delete('Pod', 'default', 'cut');
    const r = await inflight;
    assert.equal(r.status, 502, 'SIGTERM drops the connection with the request outstanding');
  });
});
