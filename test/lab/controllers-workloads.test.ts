import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { KubeObject } from '../../src/manifests/types.js';
import { daemonSetRolloutStatus, statefulSetRolloutStatus } from '../../src/plan/checks/rollout-status.js';
import { CONTROLLER_REVISION_HASH, startControllers } from '../../src/lab/controllers/index.js';
import { Kubelet } from '../../src/lab/kubelet/index.js';
import { ObjectStore } from '../../src/lab/store.js';
import { LabClock, FAST_TIMINGS } from '../../src/lab/timing.js';
import { waitFor } from '../helpers/wait.js';

type Obj = Record<string, any>;

const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const s of stops) await s();
});

function startLab(): ObjectStore {
  const store = new ObjectStore();
  const clock = new LabClock({ ...FAST_TIMINGS, timeScale: 50, containerStartSeconds: 1, endpointsSeconds: 0.5 });
  const controllers = startControllers(store, clock);
  const kubelet = new Kubelet(store, clock);
  kubelet.start();
  stops.push(async () => {
    await controllers.stop();
    await kubelet.stop();
  });
  return store;
}

function workload(kind: 'StatefulSet' | 'DaemonSet', name: string, image: string, spec: Obj): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: { name, namespace: 'default' },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 2,
          containers: [{ name: 'web', image, ports: [{ containerPort: 8080, name: 'http' }], readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 } }],
        },
      },
      ...spec,
    },
  };
}

const pods = (store: ObjectStore, app: string): KubeObject[] => store.list('Pod', 'default').items.filter((p) => p.metadata.labels?.app === app);
const ready = (p: KubeObject): boolean => (((p.status as Obj | undefined)?.conditions ?? []) as Obj[]).some((c) => c.type === 'Ready' && c.status === 'True');
const setImage = (store: ObjectStore, kind: string, name: string, image: string, extra: (spec: Obj) => void = () => undefined): void => {
  store.mutate(kind, 'default', name, (o) => {
    const spec = o.spec as Obj;
    spec.template.spec.containers[0].image = image;
    extra(spec);
  });
};

describe('statefulset controller', () => {
  it('creates <set>-N in order, each Ready before the next, and rolls from the highest ordinal down to the partition', async () => {
    const store = startLab();
    // Every pod seen, in the order it appeared: OrderedReady never creates N+1 before N is Ready.
    const created: string[] = [];
    const readyAtCreation: boolean[] = [];
    store.watch('Pod', undefined, undefined, (e) => {
      if (e.type !== 'ADDED' || e.object.metadata.labels?.app !== 'db') return;
      created.push(e.object.metadata.name);
      const prev = `db-${Number(e.object.metadata.name.split('-')[1]) - 1}`;
      const before = store.get('Pod', 'default', prev);
      readyAtCreation.push(before === undefined ? e.object.metadata.name === 'db-0' || created.filter((n) => n === e.object.metadata.name).length > 1 : ready(before));
    });
    store.create('StatefulSet', workload('StatefulSet', 'db', 'web:v1', { replicas: 3, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } } }));
    await waitFor(() => statefulSetRolloutStatus(store.mustGet('StatefulSet', 'default', 'db')).done || undefined, { timeoutMs: 20_000, what: 'db to roll out' });
    assert.deepEqual(created, ['db-0', 'db-1', 'db-2']);
    assert.ok(readyAtCreation.every(Boolean), `a pod was created before its predecessor was Ready: ${created.join(', ')}`);
    const v1 = (store.mustGet('StatefulSet', 'default', 'db').status as Obj).updateRevision as string;
    assert.match(v1, /^db-/);
    assert.ok(pods(store, 'db').every((p) => p.metadata.labels?.[CONTROLLER_REVISION_HASH] === v1));

    // Partition 1: pods 2 and 1 move to the new revision, pod 0 stays.
    created.length = 0;
    setImage(store, 'StatefulSet', 'db', 'web:v2', (spec) => (spec.updateStrategy.rollingUpdate.partition = 1));
    await waitFor(
      () => {
        const s = store.mustGet('StatefulSet', 'default', 'db');
        return (s.status as Obj).updateRevision !== v1 && statefulSetRolloutStatus(s).done ? s : undefined;
      },
      { timeoutMs: 20_000, what: 'the partitioned rollout' },
    );
    const s = store.mustGet('StatefulSet', 'default', 'db').status as Obj;
    const v2 = s.updateRevision as string;
    assert.equal(s.currentRevision, v1, 'the current revision stays while pod 0 runs it');
    assert.equal(s.updatedReplicas, 2);
    assert.deepEqual(created, ['db-2', 'db-1'], 'replaced from the highest ordinal down');
    const rev = (n: string): string | undefined => store.get('Pod', 'default', n)?.metadata.labels?.[CONTROLLER_REVISION_HASH];
    assert.deepEqual([rev('db-0'), rev('db-1'), rev('db-2')], [v1, v2, v2]);
    const revisions = store.list('ControllerRevision', 'default').items.map((cr) => [cr.metadata.name, cr.revision]);
    assert.deepEqual(revisions.sort(), [[v1, 1], [v2, 2]].sort());

    // Partition 0: the rest follows and the update revision becomes the current one.
    store.mutate('StatefulSet', 'default', 'db', (o) => ((o.spec as Obj).updateStrategy.rollingUpdate.partition = 0));
    await waitFor(() => ((store.mustGet('StatefulSet', 'default', 'db').status as Obj).currentRevision === v2 ? true : undefined), { timeoutMs: 20_000, what: 'pod 0 updated' });
    assert.equal(rev('db-0'), v2);
  });

  it('OnDelete: a new template reaches a pod only when it is deleted', async () => {
    const store = startLab();
    store.create('StatefulSet', workload('StatefulSet', 'od', 'web:v1', { replicas: 1, updateStrategy: { type: 'OnDelete' } }));
    await waitFor(() => (pods(store, 'od').some(ready) ? true : undefined), { timeoutMs: 20_000, what: 'od-0 ready' });
    const v1 = pods(store, 'od')[0]?.metadata.labels?.[CONTROLLER_REVISION_HASH];
    setImage(store, 'StatefulSet', 'od', 'web:v2');
    await waitFor(() => ((store.mustGet('StatefulSet', 'default', 'od').status as Obj).updateRevision !== v1 ? true : undefined), { timeoutMs: 10_000, what: 'the update revision' });
    assert.equal(pods(store, 'od')[0]?.metadata.labels?.[CONTROLLER_REVISION_HASH], v1, 'not replaced by the controller');
    store.delete('Pod', 'default', 'od-0');
    const v2 = (store.mustGet('StatefulSet', 'default', 'od').status as Obj).updateRevision;
    await waitFor(() => (pods(store, 'od').some((p) => ready(p) && p.metadata.labels?.[CONTROLLER_REVISION_HASH] === v2) ? true : undefined), { timeoutMs: 20_000, what: 'od-0 recreated at v2' });
  });
});

describe('daemonset controller', () => {
  it('runs one pod per Node and, with maxSurge 1, starts the new pod before deleting the old one', async () => {
    const store = startLab();
    assert.equal(store.list('Node').items.length, 1, 'the embedded lab has one Node');
    store.create('DaemonSet', workload('DaemonSet', 'agent', 'web:v1', { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } }));
    await waitFor(() => (daemonSetRolloutStatus(store.mustGet('DaemonSet', 'default', 'agent')).done && (store.mustGet('DaemonSet', 'default', 'agent').status as Obj).numberAvailable === 1 ? true : undefined), { timeoutMs: 20_000, what: 'agent rolled out' });
    const [first] = pods(store, 'agent');
    assert.equal(pods(store, 'agent').length, 1);
    assert.equal((first?.spec as Obj).nodeName, 'lab-node-1');
    // Never fewer than one ready pod while the new revision rolls out.
    let minReady = 1;
    const off = store.watch('Pod', undefined, undefined, () => {
      minReady = Math.min(minReady, pods(store, 'agent').filter((p) => ready(p) && !p.metadata.deletionTimestamp).length);
    });
    setImage(store, 'DaemonSet', 'agent', 'web:v2');
    await waitFor(
      () => {
        const d = store.mustGet('DaemonSet', 'default', 'agent');
        const live = pods(store, 'agent');
        return daemonSetRolloutStatus(d).done && live.length === 1 && live[0]?.metadata.uid !== first?.metadata.uid ? true : undefined;
      },
      { timeoutMs: 20_000, what: 'agent updated' },
    );
    off();
    assert.equal(minReady, 1, 'the old pod was deleted before the new one was ready');
    const st = store.mustGet('DaemonSet', 'default', 'agent').status as Obj;
    assert.deepEqual([st.desiredNumberScheduled, st.currentNumberScheduled, st.updatedNumberScheduled, st.numberAvailable], [1, 1, 1, 1]);
    assert.equal(store.list('ControllerRevision', 'default').items.length, 2);
  });
});
