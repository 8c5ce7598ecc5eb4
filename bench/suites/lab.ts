/**
 * The embedded lab: API server GET throughput (keep-alive, concurrency 8), watch fan-out (50 watchers on pods,
 * 200 writes: events delivered per second and p95 delivery latency), and the cost of a 50-replica Deployment
 * rollout in the full lab (wall time, CPU, peak memory), measured in a fresh process. Loopback only; every loop
 * is bounded in count and time.
 */
import { spawnSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import { loadManifests } from '../../src/manifests/load.js';
import type { JsonObject, KubeObject } from '../../src/manifests/types.js';
import { LabApiServer } from '../../src/lab/apiserver/index.js';
import { startLab } from '../../src/lab/index.js';
import { ObjectStore } from '../../src/lab/store.js';
import type { BenchResult } from '../types.js';
import { peakRssMb, report } from '../types.js';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..');

interface HttpResult {
  status: number;
  body: string;
}

function http(agent: Agent | false, base: string, method: string, path: string, body?: unknown): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${base}${path}`,
      { method, agent, headers: { accept: 'application/json', ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

function benchPod(name: string, annotations: Record<string, string> = {}): JsonObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'bench', labels: { app: 'bench' }, annotations },
    spec: { containers: [{ name: 'c', image: 'example.com/bench:v1' }] },
  };
}

function p95(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] ?? 0;
}

async function apiServerBenchmarks(): Promise<BenchResult[]> {
  const store = new ObjectStore({ eventLogSize: 20_000 });
  const api = new LabApiServer({ store });
  const { url } = await api.start();
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  try {
    const ns = await http(agent, url, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });
    if (ns.status !== 201) throw new Error(`creating the bench namespace: HTTP ${ns.status} ${ns.body}`);
    for (let i = 0; i < 20; i++) {
      const r = await http(agent, url, 'POST', '/api/v1/namespaces/bench/pods', benchPod(`p${i}`));
      if (r.status !== 201) throw new Error(`creating pod p${i}: HTTP ${r.status} ${r.body}`);
    }

    // GET throughput: 2,000 GETs of single pods, 8 at a time on keep-alive connections (after 200 warm-up GETs).
    const getLoop = async (total: number): Promise<void> => {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < total) {
          const i = next++;
          const r = await http(agent, url, 'GET', `/api/v1/namespaces/bench/pods/p${i % 20}`);
          if (r.status !== 200) throw new Error(`GET p${i % 20}: HTTP ${r.status}`);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    };
    await getLoop(200);
    const gets = 2000;
    const t0 = performance.now();
    await getLoop(gets);
    const getSeconds = (performance.now() - t0) / 1000;

    // Watch fan-out: 50 watchers on pods in the namespace; 200 pod creations through the API, 4 at a time.
    const watchers = 50;
    const writes = 200;
    const list = JSON.parse((await http(agent, url, 'GET', '/api/v1/namespaces/bench/pods')).body) as { metadata: { resourceVersion: string } };
    const latencies: number[] = [];
    let delivered = 0;
    let lastDelivery = 0;
    const requests: Array<{ destroy(): void }> = [];
    await Promise.all(
      Array.from(
        { length: watchers },
        () =>
          new Promise<void>((resolve, reject) => {
            const req = request(
              `${url}/api/v1/namespaces/bench/pods?watch=true&resourceVersion=${list.metadata.resourceVersion}&allowWatchBookmarks=false`,
              { agent: false, headers: { accept: 'application/json' } },
              (res) => {
                if (res.statusCode !== 200) {
                  reject(new Error(`watch: HTTP ${res.statusCode}`));
                  return;
                }
                let buf = '';
                res.setEncoding('utf8');
                res.on('data', (chunk: string) => {
                  buf += chunk;
                  let nl: number;
                  while ((nl = buf.indexOf('\n')) >= 0) {
                    const line = buf.slice(0, nl);
                    buf = buf.slice(nl + 1);
                    if (!line.trim()) continue;
                    const e = JSON.parse(line) as { type: string; object: KubeObject };
                    const sent = Number(e.object.metadata.annotations?.['bench.lab/sent-at']);
                    if (e.type === 'ADDED' && Number.isFinite(sent)) {
                      const now = performance.now();
                      latencies.push(now - sent);
                      delivered++;
                      lastDelivery = now;
                    }
                  }
                });
                resolve();
              },
            );
            req.on('error', () => undefined);
            req.end();
            requests.push(req);
          }),
      ),
    );
    const w0 = performance.now();
    let n = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (n < writes) {
          const i = n++;
          const r = await http(agent, url, 'POST', '/api/v1/namespaces/bench/pods', benchPod(`w${i}`, { 'bench.lab/sent-at': String(performance.now()) }));
          if (r.status !== 201) throw new Error(`creating w${i}: HTTP ${r.status} ${r.body}`);
        }
      }),
    );
    const deadline = Date.now() + 60_000;
    while (delivered < watchers * writes && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const r of requests) r.destroy();
    if (delivered < watchers * writes) throw new Error(`watch fan-out: ${delivered} of ${watchers * writes} events delivered within 60 s`);
    const fanoutSeconds = (lastDelivery - w0) / 1000;
    return [
      { name: 'lab API server GET throughput (keep-alive, 8 concurrent)', value: Math.round(gets / getSeconds), unit: 'requests/s', target: '>= 2000' },
      { name: 'lab API server watch fan-out (50 watchers, 200 writes)', value: Math.round(delivered / fanoutSeconds), unit: 'events/s', target: '>= 5000' },
      { name: 'lab API server watch delivery latency p95', value: Math.round(p95(latencies) * 10) / 10, unit: 'ms', target: '< 100' },
    ];
  } finally {
    agent.destroy();
    await api.stop();
  }
}

/** Child mode: the full lab, the safe 2048 example at 50 replicas installed, then rolled to :v2. */
async function rolloutChild(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'alb-rollout-bench-lab-'));
  const lab = await startLab({ stateDir: dir });
  try {
    const kube = new KubeClient(loadKubeConfig({ kubeconfigPath: lab.kubeconfigPath as string }, {}));
    const examples = join(root, 'examples', '2048', 'safe');
    const set = await loadManifests({ paths: [examples], defaultNamespace: 'default', baseDir: examples });
    const objects = set.objects.map((o) => o.object);
    const deployment = objects.find((o) => o.kind === 'Deployment') as KubeObject;
    (deployment.spec as JsonObject).replicas = 50;
    const ordered = [...objects].sort((a, b) => Number(b.kind === 'Namespace') - Number(a.kind === 'Namespace'));
    // Routing first, so that the pods get their readiness gates (what `deploy` does).
    for (const o of ordered.filter((x) => x.kind !== 'Deployment')) await kube.apply(o, { force: true });
    const waitUntil = async (what: string, ok: () => boolean, timeoutMs: number): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await waitUntil('the TargetGroupBinding', () => lab.store.list('TargetGroupBinding', 'game-2048').items.length > 0, 30_000);
    const settled = (image: string): boolean => {
      const d = lab.store.get('Deployment', 'game-2048', 'deployment-2048');
      const st = (d?.status ?? {}) as JsonObject;
      const done =
        Number(st.observedGeneration ?? -1) >= Number(d?.metadata.generation ?? 0) &&
        st.updatedReplicas === 50 &&
        st.replicas === 50 &&
        st.availableReplicas === 50;
      if (!done) return false;
      const pods = lab.store.list('Pod', 'game-2048').items;
      if (pods.length !== 50 || pods.some((p) => ((p.spec as JsonObject).containers as JsonObject[])[0]?.image !== image)) return false;
      const latest = new Map<string, string>();
      for (const e of lab.alb.history) if (e.kind === 'state' || e.kind === 'removed') latest.set(`${e.tgArn}|${e.id}:${e.port}`, e.kind === 'removed' ? 'removed' : e.state);
      const states = [...latest.values()];
      return states.filter((s) => s === 'healthy').length === 50 && !states.includes('draining');
    };
    const oldImage = String(((((deployment.spec as JsonObject).template as JsonObject).spec as JsonObject).containers as JsonObject[])[0]?.image);
    const newImage = oldImage.replace(/:[^:/]+$/, ':v2');
    const i0 = performance.now();
    await kube.apply(deployment, { force: true });
    await waitUntil('50 healthy pods of the first version', () => settled(oldImage), 120_000);
    const installSeconds = (performance.now() - i0) / 1000;

    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const container = (((deployment.spec as JsonObject).template as JsonObject).spec as JsonObject).containers as JsonObject[];
    (container[0] as JsonObject).image = newImage;
    await kube.apply(deployment, { force: true });
    await waitUntil('the rollout to :v2 with every old target drained', () => settled(newImage), 120_000);
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    process.stdout.write(
      `${JSON.stringify({ installSeconds, wall, cpuSeconds, peakMb: peakRssMb(), timeScale: lab.clock.timings.timeScale })}\n`,
    );
  } finally {
    await lab.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--rollout') {
  await rolloutChild();
} else {
  const results = await apiServerBenchmarks();
  const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--rollout'], {
    encoding: 'utf8',
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
    timeout: 5 * 60 * 1000,
  });
  if (child.status !== 0) throw new Error(`the 50-replica rollout failed (exit ${child.status}):\n${child.stderr}`);
  const r = JSON.parse(child.stdout.trim().split('\n').pop() as string) as { installSeconds: number; wall: number; cpuSeconds: number; peakMb: number; timeScale: number };
  results.push(
    { name: `lab 50-replica rollout wall time (time scale ${r.timeScale})`, value: Math.round(r.wall * 10) / 10, unit: 's', target: 'informational' },
    { name: 'lab 50-replica rollout CPU (user+system)', value: Math.round(r.cpuSeconds * 100) / 100, unit: 's', target: `< ${Math.round(r.wall * 10) / 10} (one core)` },
    { name: 'lab peak memory (install + 50-replica rollout)', value: r.peakMb, unit: 'MB', target: '< 500' },
    { name: 'lab 50-replica install wall time', value: Math.round(r.installSeconds * 10) / 10, unit: 's', target: 'informational' },
  );
  report(results);
}
