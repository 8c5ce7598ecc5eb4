import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { KubeObject } from '../../src/manifests/types.js';
import { startControllers } from '../../src/lab/controllers/index.js';
import { Kubelet } from '../../src/lab/kubelet/index.js';
import { ObjectStore } from '../../src/lab/store.js';
import { LabClock, FAST_TIMINGS } from '../../src/lab/timing.js';
import { waitFor } from '../helpers/wait.js';

type Obj = Record<string, any>;

const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const s of stops) await s();
});

function startLab(timeScale = 20): { store: ObjectStore; kubelet: Kubelet } {
  const store = new ObjectStore();
  const clock = new LabClock({ ...FAST_TIMINGS, timeScale, containerStartSeconds: 1, endpointsSeconds: 0.5 });
  const controllers = startControllers(store, clock);
  const kubelet = new Kubelet(store, clock);
  kubelet.start();
  stops.push(() => controllers.stop(), () => kubelet.stop());
  return { store, kubelet };
}

function service(name: string, targetPort: number | string = 'http'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default', labels: { team: 'a' } },
    spec: { selector: { app: 'web' }, ports: [{ name: 'web', port: 80, targetPort, protocol: 'TCP' }] },
  };
}

function pod(name: string, extra: Obj = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: 'web' } },
    spec: {
      terminationGracePeriodSeconds: 30,
      containers: [
        {
          name: 'web',
          image: 'example/app:v1',
          ports: [{ containerPort: 8080, name: 'http' }],
          readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
          ...extra,
        },
      ],
    },
  };
}

function slices(store: ObjectStore, svc: string): KubeObject[] {
  return store.list('EndpointSlice', 'default').items.filter((s) => s.metadata.labels?.['kubernetes.io/service-name'] === svc);
}

function endpointOf(store: ObjectStore, svc: string, podName: string): Obj | undefined {
  for (const s of slices(store, svc)) {
    const ep = ((s.endpoints as Obj[] | undefined) ?? []).find((e) => e.targetRef?.name === podName);
    if (ep) return ep;
  }
  return undefined;
}

describe('endpointslice controller', () => {
  it('tracks ready/serving/terminating through a pod deletion, and the legacy Endpoints', async () => {
    const { store } = startLab(20);
    store.create('Service', service('web'));
    const placeholder = await waitFor(() => slices(store, 'web')[0], { timeoutMs: 5000, what: 'placeholder slice' });
    assert.deepEqual(placeholder.endpoints, []);
    assert.match(placeholder.metadata.name, /^web-[a-z0-9]{5}$/);
    assert.equal(placeholder.metadata.labels?.['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io');
    assert.equal(placeholder.metadata.labels?.team, 'a');
    assert.equal(placeholder.addressType, 'IPv4');
    assert.equal((placeholder.metadata.ownerReferences as Obj[])[0]?.kind, 'Service');

    const seen: string[] = [];
    const unwatch = store.watch('EndpointSlice', 'default', undefined, () => {
      const ep = endpointOf(store, 'web', 'p1');
      const c = ep ? `${ep.conditions.ready}/${ep.conditions.serving}/${ep.conditions.terminating}` : 'absent';
      if (seen.at(-1) !== c) seen.push(c);
    });
    store.create('Pod', pod('p1', { lifecycle: { preStop: { sleep: { seconds: 5 } } } }));
    const ep = await waitFor(() => {
      const e = endpointOf(store, 'web', 'p1');
      return e?.conditions.ready ? e : undefined;
    }, { timeoutMs: 5000, what: 'ready endpoint' });
    const p1 = store.get('Pod', 'default', 'p1') as KubeObject;
    assert.deepEqual(ep.addresses, [(p1.status as Obj).podIP]);
    assert.deepEqual(ep.targetRef, { kind: 'Pod', namespace: 'default', name: 'p1', uid: p1.metadata.uid });
    assert.equal(ep.nodeName, 'lab-node-1');
    assert.deepEqual(slices(store, 'web')[0]?.ports, [{ name: 'web', port: 8080, protocol: 'TCP' }]);
    const endpoints = store.get('Endpoints', 'default', 'web') as KubeObject;
    assert.deepEqual((endpoints.subsets as Obj[])[0]?.addresses?.map((a: Obj) => a.ip), [(p1.status as Obj).podIP]);
    assert.deepEqual((endpoints.subsets as Obj[])[0]?.ports, [{ name: 'web', port: 8080, protocol: 'TCP' }]);

    store.delete('Pod', 'default', 'p1');
    await waitFor(() => endpointOf(store, 'web', 'p1')?.conditions.terminating === true, { timeoutMs: 5000, what: 'terminating endpoint' });
    const terminating = endpointOf(store, 'web', 'p1') as Obj;
    assert.deepEqual(terminating.conditions, { ready: false, serving: true, terminating: true });
    // Legacy Endpoints drop terminating pods.
    await waitFor(() => (store.get('Endpoints', 'default', 'web')?.subsets ?? undefined) === undefined, { timeoutMs: 5000, what: 'Endpoints without the pod' });
    await waitFor(() => endpointOf(store, 'web', 'p1') === undefined && !store.get('Pod', 'default', 'p1'), { timeoutMs: 10000, what: 'endpoint gone' });
    unwatch();
    // Not ready while starting, ready, terminating but still serving during preStop, no longer serving once the
    // process has exited (the pod object stays until its sandbox is torn down), then gone.
    const transitions = seen.filter((x) => x !== 'false/false/false');
    if (transitions[0] === 'absent') transitions.shift();
    assert.deepEqual(transitions, ['true/true/false', 'false/true/true', 'false/false/true', 'absent']);
  });

  it('puts not-ready pods in notReadyAddresses, resolves numeric target ports, and cleans up with the Service', async () => {
    const { store } = startLab(50);
    store.create('Service', service('num', 8080));
    store.create('Pod', pod('never', { readinessProbe: { httpGet: { path: '/healthz', port: 9999 }, periodSeconds: 1 } }));
    await waitFor(() => (store.get('Endpoints', 'default', 'num')?.subsets as Obj[] | undefined)?.[0]?.notReadyAddresses?.length === 1, {
      timeoutMs: 5000,
      what: 'notReadyAddresses',
    });
    const ep = await waitFor(() => endpointOf(store, 'num', 'never'), { timeoutMs: 5000, what: 'endpoint' });
    assert.deepEqual(ep.conditions, { ready: false, serving: false, terminating: false });
    store.delete('Service', 'default', 'num');
    await waitFor(() => slices(store, 'num').length === 0 && !store.get('Endpoints', 'default', 'num'), { timeoutMs: 5000, what: 'cleanup' });
  });
});
