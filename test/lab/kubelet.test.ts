import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import type { KubeObject } from '../../src/manifests/types.js';
import { Kubelet, type KubeletOptions, type PodEvent, parseBehavior, preStopSeconds } from '../../src/lab/kubelet/index.js';
import { ObjectStore } from '../../src/lab/store.js';
import { LabClock, FAST_TIMINGS } from '../../src/lab/timing.js';
import { waitFor } from '../helpers/wait.js';
import { podGet, type PodGetResult } from './pod-http.js';

type Obj = Record<string, any>;

interface Lab {
  store: ObjectStore;
  clock: LabClock;
  kubelet: Kubelet;
  events: PodEvent[];
}

const kubelets: Kubelet[] = [];
after(async () => {
  for (const k of kubelets) await k.stop();
});

function startLab(timeScale = 50, options: KubeletOptions = {}): Lab {
  const store = new ObjectStore();
  const clock = new LabClock({ ...FAST_TIMINGS, timeScale, containerStartSeconds: 1 });
  const kubelet = new Kubelet(store, clock, options);
  const events: PodEvent[] = [];
  kubelet.onPodEvent((e) => events.push(e));
  kubelet.start();
  kubelets.push(kubelet);
  return { store, clock, kubelet, events };
}

function pod(name: string, container: Obj = {}, spec: Obj = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: 'web' } },
    spec: {
      containers: [{ name: 'web', image: 'example/app:v1', ports: [{ containerPort: 8080, name: 'http' }], ...container }],
      ...spec,
    },
  };
}

const st = (o: KubeObject | undefined): Obj => ((o?.status ?? {}) as Obj);
const cond = (o: KubeObject | undefined, type: string): Obj | undefined => (st(o).conditions ?? []).find((c: Obj) => c.type === type);

type Result = PodGetResult;

/** A GET to a pod address, routed by the kubelet's network as the ALB's requests are. */
function get(lab: Lab, ip: string, port: number, path = '/'): Promise<Result> {
  return podGet(lab.kubelet.network, ip, port, path);
}

function rawConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

async function readyPod(lab: Lab, name: string): Promise<{ ip: string; port: number }> {
  await waitFor(() => cond(lab.store.get('Pod', 'default', name), 'Ready')?.status === 'True', {
    timeoutMs: 10000,
    what: `pod ${name} Ready`,
    describe: () => JSON.stringify(st(lab.store.get('Pod', 'default', name))),
  });
  const addr = lab.kubelet.podAddress('default', name);
  assert.ok(addr, 'podAddress');
  return addr;
}

function eventsOf(lab: Lab, name: string): PodEvent[] {
  return lab.events.filter((e) => e.name === name);
}

describe('kubelet', () => {
  it('registers the node and runs a pod as an HTTP server behind its own virtual IP', async () => {
    const lab = startLab(50);
    const node = lab.store.get('Node', '', 'lab-node-1');
    assert.equal(cond(node, 'Ready')?.status, 'True');
    lab.store.create('Pod', pod('a', { image: 'public.ecr.aws/x/docker-2048:v2' }));
    lab.store.create('Pod', pod('b'));
    const a = await readyPod(lab, 'a');
    const b = await readyPod(lab, 'b');
    assert.notEqual(a.ip, b.ip);
    assert.match(a.ip, /^127\./);
    const p = lab.store.get('Pod', 'default', 'a') as KubeObject;
    assert.equal((p.spec as Obj).nodeName, 'lab-node-1');
    assert.equal(st(p).phase, 'Running');
    assert.equal(st(p).podIP, a.ip);
    assert.deepEqual(st(p).podIPs, [{ ip: a.ip }]);
    assert.equal(st(p).hostIP, '127.0.0.1');
    assert.ok(st(p).startTime);
    const cs = st(p).containerStatuses[0];
    assert.equal(cs.ready, true);
    assert.equal(cs.started, true);
    assert.equal(cs.restartCount, 0);
    assert.ok(cs.state.running.startedAt);
    assert.match(cs.containerID, /^containerd:\/\//);
    for (const t of ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready']) assert.equal(cond(p, t)?.status, 'True', t);
    const res = await get(lab, a.ip, a.port, '/anything');
    assert.ok('status' in res);
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-lab-pod'], 'a');
    assert.equal(res.headers['x-lab-image'], 'public.ecr.aws/x/docker-2048:v2');
    assert.match(res.body, /image=public\.ecr\.aws\/x\/docker-2048:v2 pod=a version=v2/);
    assert.deepEqual(
      eventsOf(lab, 'a').map((e) => e.type),
      ['started', 'listening', 'ready'],
    );
  });

  it('keeps Ready False until every readiness gate is True, without touching the gate conditions', async () => {
    const lab = startLab(50);
    const gate = 'target-health.elbv2.k8s.aws/k8s-default-web-0123456789';
    lab.store.create('Pod', pod('gated', {}, { readinessGates: [{ conditionType: gate }] }));
    await waitFor(() => cond(lab.store.get('Pod', 'default', 'gated'), 'ContainersReady')?.status === 'True', { timeoutMs: 10000, what: 'containers ready' });
    let ready = cond(lab.store.get('Pod', 'default', 'gated'), 'Ready') as Obj;
    assert.equal(ready.status, 'False');
    assert.equal(ready.reason, 'ReadinessGatesNotReady');
    assert.equal(ready.message, `corresponding condition of pod readiness gate "${gate}" does not exist.`);

    const setGate = (status: string, reason = ''): void => {
      lab.store.mutate('Pod', 'default', 'gated', (p) => {
        const s = p.status as Obj;
        s.conditions = (s.conditions as Obj[]).filter((c) => c.type !== gate);
        s.conditions.push({ type: gate, status, reason, message: '', lastProbeTime: null, lastTransitionTime: new Date().toISOString() });
      }, 'status');
    };
    setGate('False', 'Elb.RegistrationInProgress');
    await waitFor(() => /is not "True", but False/.test(cond(lab.store.get('Pod', 'default', 'gated'), 'Ready')?.message ?? ''), {
      timeoutMs: 5000,
      what: 'gate False message',
    });
    ready = cond(lab.store.get('Pod', 'default', 'gated'), 'Ready') as Obj;
    assert.equal(ready.message, `the status of pod readiness gate "${gate}" is not "True", but False`);
    // Gate True → Ready True; the LBC's condition is kept as written.
    setGate('True');
    await waitFor(() => cond(lab.store.get('Pod', 'default', 'gated'), 'Ready')?.status === 'True', { timeoutMs: 5000, what: 'Ready after gate' });
    const p = lab.store.get('Pod', 'default', 'gated');
    assert.equal(cond(p, gate)?.status, 'True');
    assert.equal(cond(p, gate)?.reason, '');
    assert.ok(eventsOf(lab, 'gated').some((e) => e.type === 'ready'));
  });

  it('a pod without preStop refuses connections as soon as it is deleted', async () => {
    const lab = startLab(50);
    lab.store.create('Pod', pod('plain', { readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 } }));
    const addr = await readyPod(lab, 'plain');
    lab.store.delete('Pod', 'default', 'plain');
    await waitFor(() => eventsOf(lab, 'plain').some((e) => e.type === 'sigterm'), { timeoutMs: 5000, what: 'SIGTERM' });
    const res = await get(lab, addr.ip, addr.port);
    assert.deepEqual(res, { error: 'ECONNREFUSED' });
    await waitFor(() => !lab.store.get('Pod', 'default', 'plain'), { timeoutMs: 5000, what: 'pod removed' });
    assert.equal(lab.kubelet.podAddress('default', 'plain'), undefined);
    assert.deepEqual(
      eventsOf(lab, 'plain').map((e) => e.type).slice(-2),
      ['sigterm', 'removed'],
    );
  });

  it('a pod with a 2 s preStop sleep keeps serving during it, then stops', async () => {
    const lab = startLab(10);
    lab.store.create('Pod', pod('hook', { lifecycle: { preStop: { sleep: { seconds: 2 } } } }));
    const addr = await readyPod(lab, 'hook');
    const deletedAt = Date.now();
    lab.store.delete('Pod', 'default', 'hook');
    let served = 0;
    for (;;) {
      const terminated = eventsOf(lab, 'hook').some((e) => e.type === 'sigterm');
      const res = await get(lab, addr.ip, addr.port);
      if (terminated) break;
      if ('status' in res && res.status === 200) served++;
      else if (!eventsOf(lab, 'hook').some((e) => e.type === 'sigterm')) assert.fail(`request failed during preStop: ${JSON.stringify(res)}`);
      if (Date.now() - deletedAt > 5000) assert.fail('no SIGTERM within 5 s');
    }
    assert.ok(served > 0);
    const sigterm = eventsOf(lab, 'hook').find((e) => e.type === 'sigterm') as PodEvent;
    assert.ok(lab.clock.simulatedSeconds(sigterm.at - deletedAt) >= 1.9, 'SIGTERM only after the preStop sleep');
    assert.ok(eventsOf(lab, 'hook').some((e) => e.type === 'prestop'));
    await waitFor(() => !lab.store.get('Pod', 'default', 'hook'), { timeoutMs: 5000, what: 'pod removed' });
    // The IP is released: as in a VPC, nothing answers there any more.
    assert.deepEqual(await get(lab, addr.ip, addr.port), { error: 'blackhole' });
  });

  it('SIGKILLs a slow-shutdown container at the grace period', async () => {
    const lab = startLab(50);
    lab.store.create(
      'Pod',
      pod('slow', { env: [{ name: 'LAB_BEHAVIOR', value: 'slow-shutdown=60' }] }, { terminationGracePeriodSeconds: 5 }),
    );
    const addr = await readyPod(lab, 'slow');
    const deletedAt = Date.now();
    lab.store.delete('Pod', 'default', 'slow');
    await waitFor(() => eventsOf(lab, 'slow').some((e) => e.type === 'sigterm'), { timeoutMs: 5000, what: 'SIGTERM' });
    // The listener is closed at once: no new connections.
    assert.deepEqual(await get(lab, addr.ip, addr.port), { error: 'ECONNREFUSED' });
    assert.ok(lab.store.get('Pod', 'default', 'slow'), 'still terminating');
    await waitFor(() => !lab.store.get('Pod', 'default', 'slow'), { timeoutMs: 5000, what: 'pod removed' });
    const killed = eventsOf(lab, 'slow').find((e) => e.type === 'killed');
    assert.ok(killed, 'SIGKILL event');
    const simulated = lab.clock.simulatedSeconds(killed.at - deletedAt);
    assert.ok(simulated >= 4.9 && simulated < 30, `killed after ${simulated} simulated seconds, expected about 5`);
  });

  it('answers by LAB_BEHAVIOR: error-500 (but /healthz), error-rate, crash', async () => {
    const lab = startLab(50);
    lab.store.create('Pod', pod('e500', { env: [{ name: 'LAB_BEHAVIOR', value: 'error-500' }], readinessProbe: { httpGet: { path: '/healthz', port: 8080 } } }));
    lab.store.create('Pod', pod('rate', { env: [{ name: 'LAB_BEHAVIOR', value: 'error-rate=0.5' }] }));
    lab.store.create('Pod', pod('crash', { env: [{ name: 'LAB_BEHAVIOR', value: 'crash' }] }));
    const e = await readyPod(lab, 'e500');
    const r1 = await get(lab, e.ip, e.port, '/');
    const r2 = await get(lab, e.ip, e.port, '/healthz');
    assert.ok('status' in r1 && 'status' in r2);
    assert.equal(r1.status, 500);
    assert.equal(r2.status, 200);
    lab.store.create('Pod', pod('later', { env: [{ name: 'LAB_BEHAVIOR', value: 'error-500-after=20' }] }));
    const l = await readyPod(lab, 'later');
    const early = await get(lab, l.ip, l.port, '/');
    assert.ok('status' in early && early.status === 200, 'error-500-after: 200 at first');
    await waitFor(async () => {
      const res = await get(lab, l.ip, l.port, '/');
      return 'status' in res && res.status === 500;
    }, { timeoutMs: 5000, what: 'error-500-after=20 to start failing' });
    const r = await readyPod(lab, 'rate');
    let errors = 0;
    for (let i = 0; i < 200; i++) {
      const res = await get(lab, r.ip, r.port, '/');
      if ('status' in res && res.status === 500) errors++;
    }
    assert.ok(errors > 60 && errors < 140, `error-rate=0.5 gave ${errors}/200 errors`);
    await waitFor(() => st(lab.store.get('Pod', 'default', 'crash')).containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff', {
      timeoutMs: 5000,
      what: 'CrashLoopBackOff',
    });
    const cs = st(lab.store.get('Pod', 'default', 'crash')).containerStatuses[0];
    assert.ok(cs.restartCount >= 1);
    assert.equal(cs.ready, false);
    assert.equal(cond(lab.store.get('Pod', 'default', 'crash'), 'Ready')?.reason, 'ContainersNotReady');
    assert.equal(cond(lab.store.get('Pod', 'default', 'crash'), 'Ready')?.message, 'containers with unready status: [web]');
  });

  it('slow-start delays listening and readiness; tcpSocket probes work', async () => {
    const lab = startLab(50);
    lab.store.create('Pod', pod('slowstart', { env: [{ name: 'LAB_BEHAVIOR', value: 'slow-start=10' }], readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 } }));
    await readyPod(lab, 'slowstart');
    const ev = eventsOf(lab, 'slowstart');
    const started = ev.find((e) => e.type === 'started') as PodEvent;
    const listening = ev.find((e) => e.type === 'listening') as PodEvent;
    assert.ok(lab.clock.simulatedSeconds(listening.at - started.at) >= 9.5);
  });

  it('releases IPs and closes every server on stop()', async () => {
    const lab = startLab(50);
    lab.store.create('Pod', pod('x'));
    const addr = await readyPod(lab, 'x');
    const route = lab.kubelet.network.route(addr.ip, addr.port);
    assert.equal(route.kind, 'listener');
    assert.equal(route.kind === 'listener' && route.host, '127.0.0.1');
    await lab.kubelet.stop();
    assert.deepEqual(await get(lab, addr.ip, addr.port), { error: 'blackhole' });
    const real = route.kind === 'listener' ? route.port : 0;
    assert.deepEqual(await rawConnect(real), 'ECONNREFUSED', 'the real listener is closed');
  });

  it('a container that cannot listen shows it as Kubernetes does: lastState, restartCount, CrashLoopBackOff, a BackOff event', async () => {
    const lab = startLab(50);
    // Port 80 needs no privilege (the listener is on 127.0.0.1 with an ephemeral port); the second container
    // of the pod cannot bind the pod's port 80 again.
    lab.store.create(
      'Pod',
      pod('twice', { ports: [{ containerPort: 80 }] }, { containers: [
        { name: 'web', image: 'example/app:v1', ports: [{ containerPort: 80 }] },
        { name: 'sidecar', image: 'example/sidecar:v1', ports: [{ containerPort: 80 }] },
      ] }),
    );
    await waitFor(() => (st(lab.store.get('Pod', 'default', 'twice')).containerStatuses?.[1]?.restartCount ?? 0) >= 1, {
      timeoutMs: 5000,
      what: 'the sidecar restarted',
      describe: () => JSON.stringify(st(lab.store.get('Pod', 'default', 'twice')).containerStatuses),
    });
    const [web, sidecar] = st(lab.store.get('Pod', 'default', 'twice')).containerStatuses as Obj[];
    assert.equal(web!.ready, true, 'the first container serves port 80');
    const addr = lab.kubelet.podAddress('default', 'twice')!;
    assert.equal(addr.port, 80);
    const res = await get(lab, addr.ip, 80);
    assert.ok('status' in res && res.status === 200, JSON.stringify(res));
    assert.equal(sidecar!.ready, false);
    assert.equal(sidecar!.state.waiting.reason, 'CrashLoopBackOff');
    assert.match(sidecar!.state.waiting.message, /^back-off 10s restarting failed container=sidecar pod=twice_default\(/);
    assert.equal(sidecar!.lastState.terminated.exitCode, 1);
    assert.equal(sidecar!.lastState.terminated.reason, 'Error');
    assert.equal(sidecar!.lastState.terminated.message, 'listen tcp :80: bind: address already in use (another container of this pod already listens on port 80)');
    const events = lab.store.list('Event', 'default').items as Obj[];
    const backoff = events.find((e) => e.reason === 'BackOff' && e.involvedObject.name === 'twice');
    assert.ok(backoff, `a BackOff event: ${JSON.stringify(events)}`);
    assert.equal(backoff.type, 'Warning');
    assert.equal(backoff.source.component, 'kubelet');
    assert.match(backoff.message, /^Back-off restarting failed container sidecar in pod twice_default\(/);
    assert.equal(cond(lab.store.get('Pod', 'default', 'twice'), 'Ready')?.message, 'containers with unready status: [sidecar]');
  });

  it('a new pod may get the IP of a deleted one (cooldown as the VPC CNI): traffic to it reaches the new pod only', async () => {
    const lab = startLab(50, { podIPRange: { start: '127.30.0.2', end: '127.30.0.9' }, podIPCooldownSeconds: 1 });
    lab.store.create('Pod', pod('first'));
    const a = await readyPod(lab, 'first');
    const oldRoute = lab.kubelet.network.route(a.ip, a.port);
    lab.store.delete('Pod', 'default', 'first');
    await waitFor(() => !lab.store.get('Pod', 'default', 'first'), { timeoutMs: 5000, what: 'first removed' });
    await waitFor(() => lab.clock.simulatedSeconds(Date.now() - (eventsOf(lab, 'first').find((e) => e.type === 'removed')?.at ?? Date.now())) > 1.2, {
      timeoutMs: 5000,
      what: 'the cooldown to pass',
    });
    lab.store.create('Pod', pod('second'));
    const b = await readyPod(lab, 'second');
    assert.equal(b.ip, a.ip, 'the released IP is reused');
    const newRoute = lab.kubelet.network.route(b.ip, b.port);
    assert.ok(newRoute.kind === 'listener' && oldRoute.kind === 'listener');
    assert.notEqual(newRoute.port, oldRoute.port, 'a listener of its own');
    const res = await get(lab, b.ip, b.port);
    assert.ok('status' in res, JSON.stringify(res));
    assert.equal(res.headers['x-lab-pod'], 'second');
    assert.equal(await rawConnect(oldRoute.port), 'ECONNREFUSED', "the old pod's listener is closed");
  });

  it('parses behaviours and preStop hooks', () => {
    assert.deepEqual(
      { ...parseBehavior('slow-start=5, error-rate=0.25,bogus'), raw: '' },
      { slowStartSeconds: 5, crash: false, error500: false, errorRate: 0.25, keepAliveTimeoutSeconds: 75, raw: '', unknown: ['bogus'] },
    );
    const b = parseBehavior('latency=2/30,keepalive-timeout=5,latency-x=1,keepalive-timeout=0');
    assert.deepEqual(b.latency, { median: 2, p99: 30 });
    assert.equal(b.keepAliveTimeoutSeconds, 5);
    assert.deepEqual(b.unknown, ['latency-x=1', 'keepalive-timeout=0']);
    assert.deepEqual(parseBehavior('latency=3').latency, { median: 3, p99: 3 });
    assert.equal(preStopSeconds({ lifecycle: { preStop: { exec: { command: ['/bin/sh', '-c', 'sleep 40'] } } } }), 40);
    assert.equal(preStopSeconds({ lifecycle: { preStop: { sleep: { seconds: 7 } } } }), 7);
    assert.equal(preStopSeconds({ lifecycle: { preStop: { exec: { command: ['nginx', '-s', 'quit'] } } } }), 0);
  });
});
