import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { KubeObject } from '../../src/manifests/types.js';
import { startControllers } from '../../src/lab/controllers/index.js';
import { Kubelet } from '../../src/lab/kubelet/index.js';
import { ObjectStore } from '../../src/lab/store.js';
import { LabClock, FAST_TIMINGS } from '../../src/lab/timing.js';
import { waitFor } from '../helpers/wait.js';
import { podGet } from './pod-http.js';

type Obj = Record<string, any>;

interface Lab {
  store: ObjectStore;
  clock: LabClock;
  kubelet: Kubelet;
  stop(): Promise<void>;
}

const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.stop();
});

function startLab(timeScale = 50): Lab {
  const store = new ObjectStore();
  const clock = new LabClock({ ...FAST_TIMINGS, timeScale, containerStartSeconds: 1, endpointsSeconds: 0.5 });
  const controllers = startControllers(store, clock);
  const kubelet = new Kubelet(store, clock);
  kubelet.start();
  const lab: Lab = {
    store,
    clock,
    kubelet,
    async stop() {
      await controllers.stop();
      await kubelet.stop();
    },
  };
  labs.push(lab);
  return lab;
}

function deployment(name: string, image: string, extra: Obj = {}, templateSpec: Obj = {}): KubeObject {
  const { spec: specExtra, ...rest } = extra;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'web',
              image,
              ports: [{ containerPort: 8080, name: 'http' }],
              readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 },
            },
          ],
          ...templateSpec,
        },
      },
      ...(specExtra ?? {}),
    },
    ...rest,
  };
}

const s = (o: KubeObject | undefined): Obj => ((o?.status ?? {}) as Obj);
const cond = (o: KubeObject | undefined, type: string): Obj | undefined => (s(o).conditions ?? []).find((c: Obj) => c.type === type);
const podReady = (p: KubeObject): boolean => cond(p, 'Ready')?.status === 'True';

/** kubectl rollout status's "successfully rolled out" rule. */
function rolledOut(d: KubeObject | undefined): boolean {
  if (!d) return false;
  const st = s(d);
  const replicas = (d.spec as Obj).replicas ?? 1;
  return (
    (st.observedGeneration ?? 0) >= Number(d.metadata.generation) &&
    st.updatedReplicas === replicas &&
    (st.replicas ?? 0) === replicas &&
    st.availableReplicas === replicas
  );
}

function get(lab: Lab, name: string): KubeObject | undefined {
  return lab.store.get('Deployment', 'default', name);
}

function replicaSets(lab: Lab, name: string): KubeObject[] {
  return lab.store.list('ReplicaSet', 'default').items.filter((rs) => rs.metadata.name.startsWith(`${name}-`));
}

function setImage(lab: Lab, name: string, image: string): void {
  lab.store.mutate('Deployment', 'default', name, (d) => {
    ((d.spec as Obj).template.spec.containers[0] as Obj).image = image;
  });
}

describe('deployment controller', () => {
  it('rolls 5 replicas from v1 to v2 with maxSurge/maxUnavailable 25% and never drops below 4 available pods', async () => {
    const lab = startLab(50);
    const name = 'web';
    lab.store.create('Deployment', deployment(name, 'example/app:v1', { spec: { replicas: 5, strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } } } }));
    await waitFor(() => rolledOut(get(lab, name)), { timeoutMs: 20000, what: 'v1 rolled out', describe: () => JSON.stringify(s(get(lab, name))) });
    assert.equal(get(lab, name)?.metadata.annotations?.['deployment.kubernetes.io/revision'], '1');

    let minAvailable = Infinity;
    let maxPods = 0;
    const countAvailable = (): void => {
      const pods = lab.store.list('Pod', 'default').items.filter((p) => p.metadata.labels?.app === name);
      const active = pods.filter((p) => !p.metadata.deletionTimestamp);
      minAvailable = Math.min(minAvailable, active.filter(podReady).length);
      maxPods = Math.max(maxPods, active.length);
    };
    const unwatch = lab.store.watch('Pod', 'default', undefined, countAvailable);
    countAvailable();
    setImage(lab, name, 'example/app:v2');
    await waitFor(
      () => {
        const d = get(lab, name);
        return rolledOut(d) && Number(d?.metadata.generation ?? 0) >= 2;
      },
      { timeoutMs: 30000, what: 'v2 rolled out', describe: () => JSON.stringify(s(get(lab, name))) },
    );
    unwatch();
    assert.ok(minAvailable >= 4, `available pods dropped to ${minAvailable}`);
    assert.ok(maxPods <= 7, `more than replicas+maxSurge (7) pods at once: ${maxPods}`);

    const d = get(lab, name) as KubeObject;
    assert.equal(d.metadata.annotations?.['deployment.kubernetes.io/revision'], '2');
    assert.equal(cond(d, 'Progressing')?.reason, 'NewReplicaSetAvailable');
    assert.equal(cond(d, 'Available')?.status, 'True');
    assert.equal(s(d).unavailableReplicas, 0);
    const rss = replicaSets(lab, name);
    assert.equal(rss.length, 2);
    const newRS = rss.find((rs) => (rs.spec as Obj).template.spec.containers[0].image === 'example/app:v2') as KubeObject;
    const hash = newRS.metadata.labels?.['pod-template-hash'];
    assert.ok(hash);
    assert.equal(newRS.metadata.name, `${name}-${hash}`);
    assert.equal(newRS.metadata.annotations?.['deployment.kubernetes.io/revision'], '2');
    assert.equal(newRS.metadata.annotations?.['deployment.kubernetes.io/desired-replicas'], '5');
    assert.equal(newRS.metadata.annotations?.['deployment.kubernetes.io/max-replicas'], '7');
    const ref = (newRS.metadata.ownerReferences as Obj[])[0] as Obj;
    assert.deepEqual([ref.kind, ref.name, ref.controller, ref.blockOwnerDeletion], ['Deployment', name, true, true]);

    // Old pods finish terminating; every pod left serves v2 and carries the hash label.
    await waitFor(() => lab.store.list('Pod', 'default').items.filter((p) => p.metadata.labels?.app === name).length === 5, {
      timeoutMs: 10000,
      what: 'old pods removed',
    });
    for (const p of lab.store.list('Pod', 'default').items) {
      assert.equal(p.metadata.labels?.['pod-template-hash'], hash);
      assert.match(p.metadata.name, new RegExp(`^${newRS.metadata.name}-[a-z0-9]{5}$`));
      const addr = lab.kubelet.podAddress('default', p.metadata.name);
      assert.ok(addr);
      const res = await podGet(lab.kubelet.network, addr.ip, addr.port, '/');
      assert.ok('status' in res, JSON.stringify(res));
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-lab-image'], 'example/app:v2');
      assert.match(res.body, /version=v2/);
    }
    const events = lab.store.list('Event', 'default').items;
    assert.ok(events.some((e) => e.reason === 'ScalingReplicaSet' && /Scaled down replica set web-\w+ from 5 to/.test(String(e.message))));
    assert.ok(events.some((e) => e.reason === 'SuccessfulCreate'));
    assert.ok(events.some((e) => e.reason === 'SuccessfulDelete'));
  });

  it('Recreate: removes every old pod before creating new ones', async () => {
    const lab = startLab(50);
    const name = 'rec';
    lab.store.create('Deployment', deployment(name, 'example/app:v1', { spec: { replicas: 3, strategy: { type: 'Recreate' } } }));
    await waitFor(() => rolledOut(get(lab, name)), { timeoutMs: 20000, what: 'v1 rolled out' });
    const oldUids = new Set(lab.store.list('Pod', 'default').items.map((p) => p.metadata.uid));
    const violations: string[] = [];
    const unwatch = lab.store.watch('Pod', 'default', undefined, (e) => {
      if (e.type !== 'ADDED') return;
      const old = lab.store.list('Pod', 'default').items.filter((p) => oldUids.has(p.metadata.uid));
      if (old.length > 0) violations.push(`${e.object.metadata.name} created while ${old.length} old pods exist`);
    });
    setImage(lab, name, 'example/app:v2');
    await waitFor(() => rolledOut(get(lab, name)) && Number(get(lab, name)?.metadata.generation ?? 0) >= 2, { timeoutMs: 20000, what: 'v2 rolled out' });
    unwatch();
    assert.deepEqual(violations, []);
    assert.equal(get(lab, name)?.metadata.annotations?.['deployment.kubernetes.io/revision'], '2');
  });

  it('reports ProgressDeadlineExceeded when a crashing image makes no progress', async () => {
    const lab = startLab(100);
    const name = 'crashy';
    lab.store.create('Deployment', deployment(name, 'example/app:v1', { spec: { replicas: 2, progressDeadlineSeconds: 30 } }));
    await waitFor(() => rolledOut(get(lab, name)), { timeoutMs: 20000, what: 'v1 rolled out' });
    lab.store.mutate('Deployment', 'default', name, (d) => {
      const c = (d.spec as Obj).template.spec.containers[0] as Obj;
      c.image = 'example/app:v2';
      c.env = [{ name: 'LAB_BEHAVIOR', value: 'crash' }];
    });
    const d = await waitFor(
      () => {
        const d = get(lab, name);
        return cond(d, 'Progressing')?.reason === 'ProgressDeadlineExceeded' ? d : undefined;
      },
      { timeoutMs: 20000, what: 'ProgressDeadlineExceeded', describe: () => JSON.stringify(s(get(lab, name))) },
    );
    const p = cond(d, 'Progressing') as Obj;
    assert.equal(p.status, 'False');
    assert.match(p.message, /^ReplicaSet "crashy-\w+" has timed out progressing\.$/);
    // maxUnavailable 25% of 2 rounds down to 0: the old pods keep serving.
    assert.equal(s(d).availableReplicas, 2);
    assert.equal(cond(d, 'Available')?.status, 'True');
    const crashing = await waitFor(
      () =>
        lab.store
          .list('Pod', 'default')
          .items.find((p) => p.metadata.labels?.app === name && (s(p).containerStatuses?.[0]?.restartCount ?? 0) >= 1),
      { timeoutMs: 10000, what: 'a restarted container' },
    );
    const cs = s(crashing).containerStatuses[0] as Obj;
    assert.equal(cs.ready, false);
    assert.equal(cs.lastState.terminated.exitCode, 1);
  });

  it('counts a pod as available only after minReadySeconds', async () => {
    const lab = startLab(50);
    const name = 'minready';
    lab.store.create('Deployment', deployment(name, 'example/app:v1', { spec: { replicas: 1, minReadySeconds: 20 } }));
    const pod = await waitFor(() => lab.store.list('Pod', 'default').items.find((p) => p.metadata.labels?.app === name && podReady(p)), {
      timeoutMs: 10000,
      what: 'pod ready',
    });
    const readyAt = Date.parse(cond(pod, 'Ready')?.lastTransitionTime);
    assert.equal(s(get(lab, name)).availableReplicas ?? 0, 0);
    await waitFor(() => s(get(lab, name)).availableReplicas === 1, { timeoutMs: 10000, what: 'available after minReadySeconds' });
    const elapsedSim = lab.clock.simulatedSeconds(Date.now() - readyAt);
    assert.ok(elapsedSim >= 20, `available after ${elapsedSim} simulated seconds, expected at least 20`);
    const rs = replicaSets(lab, name)[0] as KubeObject;
    assert.equal((rs.spec as Obj).minReadySeconds, 20);
  });

  it('numbers revisions and reuses the old ReplicaSet on rollout undo', async () => {
    const lab = startLab(50);
    const name = 'rev';
    lab.store.create('Deployment', deployment(name, 'example/app:v1', { spec: { replicas: 2 } }));
    await waitFor(() => rolledOut(get(lab, name)), { timeoutMs: 20000, what: 'v1 rolled out' });
    const rs1 = replicaSets(lab, name)[0] as KubeObject;
    setImage(lab, name, 'example/app:v2');
    await waitFor(() => rolledOut(get(lab, name)) && replicaSets(lab, name).length === 2, { timeoutMs: 20000, what: 'v2 rolled out' });
    assert.equal(get(lab, name)?.metadata.annotations?.['deployment.kubernetes.io/revision'], '2');

    // What kubectl rollout undo does: the old RS's template without pod-template-hash becomes the Deployment's.
    const template = structuredClone((lab.store.get('ReplicaSet', 'default', rs1.metadata.name)?.spec as Obj).template);
    delete template.metadata.labels['pod-template-hash'];
    lab.store.mutate('Deployment', 'default', name, (d) => {
      (d.spec as Obj).template = template;
    });
    await waitFor(() => rolledOut(get(lab, name)) && Number(get(lab, name)?.metadata.generation ?? 0) >= 3, { timeoutMs: 20000, what: 'undo rolled out' });
    const rss = replicaSets(lab, name);
    assert.equal(rss.length, 2, 'no new ReplicaSet for a template that already has one');
    const reused = lab.store.get('ReplicaSet', 'default', rs1.metadata.name) as KubeObject;
    assert.equal(reused.metadata.uid, rs1.metadata.uid);
    assert.equal(reused.metadata.annotations?.['deployment.kubernetes.io/revision'], '3');
    assert.equal(reused.metadata.annotations?.['deployment.kubernetes.io/revision-history'], '1');
    assert.equal((reused.spec as Obj).replicas, 2);
    assert.equal(get(lab, name)?.metadata.annotations?.['deployment.kubernetes.io/revision'], '3');
  });

  it('keeps revisionHistoryLimit old ReplicaSets', async () => {
    const lab = startLab(50);
    const name = 'hist';
    lab.store.create('Deployment', deployment(name, 'example/app:v1', { spec: { replicas: 1, revisionHistoryLimit: 1 } }));
    for (const v of ['v1', 'v2', 'v3']) {
      if (v !== 'v1') setImage(lab, name, `example/app:${v}`);
      await waitFor(() => {
        const d = get(lab, name);
        return rolledOut(d) && d?.metadata.annotations?.['deployment.kubernetes.io/revision'] === v.slice(1);
      }, { timeoutMs: 20000, what: `${v} rolled out` });
    }
    await waitFor(() => replicaSets(lab, name).length === 2, {
      timeoutMs: 10000,
      what: 'cleanup to 1 old ReplicaSet',
      describe: () => replicaSets(lab, name).map((r) => r.metadata.annotations?.['deployment.kubernetes.io/revision']).join(','),
    });
    const revisions = replicaSets(lab, name).map((r) => r.metadata.annotations?.['deployment.kubernetes.io/revision']).sort();
    assert.deepEqual(revisions, ['2', '3']);
  });

  it('honours spec.paused', async () => {
    const lab = startLab(50);
    const name = 'paused';
    lab.store.create('Deployment', deployment(name, 'example/app:v1', { spec: { replicas: 1 } }));
    await waitFor(() => rolledOut(get(lab, name)), { timeoutMs: 20000, what: 'v1 rolled out' });
    lab.store.mutate('Deployment', 'default', name, (d) => {
      (d.spec as Obj).paused = true;
      ((d.spec as Obj).template.spec.containers[0] as Obj).image = 'example/app:v2';
    });
    await waitFor(() => cond(get(lab, name), 'Progressing')?.reason === 'DeploymentPaused', { timeoutMs: 5000, what: 'paused condition' });
    assert.equal(replicaSets(lab, name).length, 1);
    lab.store.mutate('Deployment', 'default', name, (d) => {
      (d.spec as Obj).paused = false;
    });
    await waitFor(() => rolledOut(get(lab, name)) && replicaSets(lab, name).length === 2, { timeoutMs: 20000, what: 'resumed rollout' });
    assert.equal(get(lab, name)?.metadata.annotations?.['deployment.kubernetes.io/revision'], '2');
  });

  it('readiness gates hold the rollout: no old pod is deleted before a new pod passes its gate', async () => {
    const lab = startLab(50);
    const name = 'gated';
    const gate = 'target-health.elbv2.k8s.aws/k8s-default-gated-0123456789';
    // A stand-in for the LBC webhook (gate at CREATE) and reconcile loop (gate True a while after ContainersReady).
    lab.store.addAdmissionHook('Pod', (p, op) => {
      if (op === 'CREATE') (p.spec as Obj).readinessGates = [{ conditionType: gate }];
    });
    const flips = new Map<string, NodeJS.Timeout>();
    const unwatchLbc = lab.store.watch('Pod', 'default', undefined, (e) => {
      const p = e.object;
      if (e.type === 'DELETED' || flips.has(p.metadata.name) || cond(p, 'ContainersReady')?.status !== 'True' || cond(p, gate)) return;
      flips.set(p.metadata.name, lab.clock.after(10, () => {
        lab.store.mutate('Pod', 'default', p.metadata.name, (o) => {
          (o.status as Obj).conditions.push({ type: gate, status: 'True', lastProbeTime: null, lastTransitionTime: new Date().toISOString() });
        }, 'status');
      }));
    });
    lab.store.create('Deployment', deployment(name, 'example/app:v1', { spec: { replicas: 2, strategy: { rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } } }));
    await waitFor(() => rolledOut(get(lab, name)), { timeoutMs: 20000, what: 'v1 rolled out' });
    const violations: string[] = [];
    const unwatch = lab.store.watch('Pod', 'default', undefined, (e) => {
      if (e.type !== 'MODIFIED' || !e.object.metadata.deletionTimestamp) return;
      const pods = lab.store.list('Pod', 'default').items.filter((p) => !p.metadata.deletionTimestamp);
      const readyNew = pods.filter((p) => (p.spec as Obj).containers[0].image === 'example/app:v2' && podReady(p));
      const deleting = lab.store.list('Pod', 'default').items.filter((p) => p.metadata.deletionTimestamp).length;
      if (deleting > readyNew.length) violations.push(`${deleting} old pods deleting with ${readyNew.length} new pods Ready`);
    });
    setImage(lab, name, 'example/app:v2');
    await waitFor(() => rolledOut(get(lab, name)) && Number(get(lab, name)?.metadata.generation ?? 0) >= 2, { timeoutMs: 20000, what: 'v2 rolled out' });
    unwatch();
    unwatchLbc();
    for (const t of flips.values()) clearTimeout(t);
    assert.deepEqual(violations, []);
    for (const p of lab.store.list('Pod', 'default').items.filter((p) => !p.metadata.deletionTimestamp)) {
      assert.equal(cond(p, gate)?.status, 'True');
      assert.equal(cond(p, 'Ready')?.status, 'True');
    }
  });

  it('scales a Deployment up and down', async () => {
    const lab = startLab(50);
    const name = 'scale';
    lab.store.create('Deployment', deployment(name, 'example/app:v1', { spec: { replicas: 1 } }));
    await waitFor(() => rolledOut(get(lab, name)), { timeoutMs: 20000, what: 'rolled out' });
    lab.store.mutate('Deployment', 'default', name, (d) => {
      (d.spec as Obj).replicas = 4;
    });
    await waitFor(() => rolledOut(get(lab, name)) && s(get(lab, name)).availableReplicas === 4, { timeoutMs: 20000, what: 'scaled to 4' });
    lab.store.mutate('Deployment', 'default', name, (d) => {
      (d.spec as Obj).replicas = 2;
    });
    await waitFor(() => rolledOut(get(lab, name)) && s(get(lab, name)).replicas === 2, { timeoutMs: 20000, what: 'scaled to 2' });
    const rs = replicaSets(lab, name)[0] as KubeObject;
    assert.equal(rs.metadata.annotations?.['deployment.kubernetes.io/desired-replicas'], '2');
  });
});
