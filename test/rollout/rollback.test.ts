/**
 * Rollback against the lab API server with a real KubeClient, compared with what real kubectl's
 * `rollout undo` does to an identical Deployment. The objects are put in the store directly (no controllers):
 * what is checked is the patch, not the rollout that follows.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import { LabApiServer, writeKubeconfig } from '../../src/lab/apiserver/index.js';
import { ObjectStore } from '../../src/lab/store.js';
import type { JsonObject, KubeObject } from '../../src/manifests/types.js';
import { ownedConfig, planRollback, rollbackAndWait, rollbackDeployment, selectorOf, StaleRollback, type RollbackWaitTarget } from '../../src/rollout/rollback.js';

/** The pod template of a Deployment or ReplicaSet (untyped JSON in tests). */
const tpl = (o: KubeObject): any => (o.spec as any).template;

const KUBECTL = '/usr/lib/google-cloud-sdk/bin/kubectl.1.32';
const NS = 'shop';

function template(image: string, hash: string | undefined, build: string): JsonObject {
  return {
    metadata: { labels: { app: 'web', tier: 'front', ...(hash ? { 'pod-template-hash': hash } : {}) }, annotations: { 'example.com/build': build } },
    spec: {
      containers: [{ name: 'web', image, ports: [{ containerPort: 8080, protocol: 'TCP' }], readinessProbe: { httpGet: { path: '/healthz', port: 8080 } } }],
      terminationGracePeriodSeconds: 45,
    },
  };
}

/**
 * A Deployment at revision `current` with one ReplicaSet per revision in `revisions` (revision n runs app:v<n>).
 * Deployment and ReplicaSets are created through the API (so their templates get the server's defaults, as on a
 * real cluster); pods go to the store directly (their status carries the IPs).
 */
async function seed(kube: KubeClient, store: ObjectStore, name: string, revisions: number[], current: number, extra: { paused?: boolean } = {}): Promise<KubeObject> {
  const create = async (o: KubeObject): Promise<KubeObject> =>
    (await kube.request('create', 'POST', await kube.path(o.apiVersion, o.kind, NS), o)) as KubeObject;
  const d = await create({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace: NS,
      annotations: {
        'deployment.kubernetes.io/revision': String(current),
        'kubectl.kubernetes.io/last-applied-configuration': '{"kept":true}',
        'kubernetes.io/change-cause': `release v${current}`,
        'example.com/owner': 'team-a',
      },
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web', tier: 'front' } },
      template: template(`app:v${current}`, undefined, String(current)),
      ...(extra.paused ? { paused: true } : {}),
    },
  });
  for (const r of revisions) {
    const hash = `${name}h${r}`;
    await create({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${name}-${hash}`,
        namespace: NS,
        labels: { app: 'web', tier: 'front', 'pod-template-hash': hash },
        annotations: {
          'deployment.kubernetes.io/revision': String(r),
          'deployment.kubernetes.io/desired-replicas': '2',
          'deployment.kubernetes.io/max-replicas': '3',
          'kubernetes.io/change-cause': `release v${r}`,
          ...(r === 1 ? { 'example.com/legacy': 'yes' } : {}),
        },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name, uid: String(d.metadata.uid), controller: true, blockOwnerDeletion: true }],
      },
      spec: { replicas: r === current ? 2 : 0, selector: { matchLabels: { app: 'web', tier: 'front', 'pod-template-hash': hash } }, template: template(`app:v${r}`, hash, String(r)) },
    });
    if (r === current) {
      for (const i of [1, 2]) {
        store.create('Pod', {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: `${name}-${hash}-${i}`, namespace: NS, labels: { app: 'web', tier: 'front', 'pod-template-hash': hash } },
          spec: { containers: [{ name: 'web', image: `app:v${r}` }] },
          status: { phase: 'Running', podIP: `127.0.31.${r * 10 + i}` },
        });
      }
    }
  }
  return d;
}

function kubectl(kubeconfig: string, dir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(KUBECTL, [`--kubeconfig=${kubeconfig}`, `--cache-dir=${join(dir, 'cache')}`, ...args], { timeout: 60_000, env: { ...process.env, HOME: dir } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

describe('rollbackDeployment against the lab API server', () => {
  const store = new ObjectStore();
  let server: LabApiServer;
  let kube: KubeClient;
  let dir = '';
  let kubeconfig = '';

  before(async () => {
    server = new LabApiServer({ store });
    const { url } = await server.start();
    dir = await mkdtemp(join(tmpdir(), 'rollback-'));
    kubeconfig = join(dir, 'kubeconfig');
    await writeKubeconfig(kubeconfig, url);
    kube = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }, {}), { requestTimeoutMs: 10_000 });
    store.create('Namespace', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    // A foreign ReplicaSet with matching labels and a higher revision: not ours (owner uid differs).
    store.create('ReplicaSet', {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: 'stray-rs', namespace: NS, labels: { app: 'web', tier: 'front' }, annotations: { 'deployment.kubernetes.io/revision': '9' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'other', uid: 'not-ours', controller: true }] },
      spec: { replicas: 0, selector: { matchLabels: { app: 'web' } }, template: template('evil:v9', 'x', '9') },
    });
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('goes back to the previous revision: template without pod-template-hash, RS annotations, deployment.kubernetes.io/* kept', async () => {
    const before = await seed(kube, store, 'web', [1, 2, 3], 3);
    const r = await rollbackDeployment(kube, NS, 'web', { now: () => Date.parse('2026-05-01T10:00:00Z') });
    assert.equal(r.outcome, 'rolled-back');
    if (r.outcome !== 'rolled-back') return;
    assert.deepEqual({ from: r.fromRevision, to: r.toRevision, rs: r.replicaSet, at: r.patchedAt }, { from: 3, to: 2, rs: 'web-webh2', at: '2026-05-01T10:00:00.000Z' });
    assert.deepEqual(r.revisions, [3, 2, 1]);
    assert.equal(r.selector, 'app=web,tier=front');
    assert.deepEqual(r.podIpsBefore.sort(), ['127.0.31.31', '127.0.31.32']);
    const after = store.get('Deployment', NS, 'web')!;
    const rs2 = store.get('ReplicaSet', NS, 'web-webh2')!;
    const expected = structuredClone(tpl(rs2)) as any;
    delete expected.metadata.labels['pod-template-hash'];
    assert.deepEqual(tpl(after), expected);
    assert.deepEqual((tpl(after) as any).metadata, template('app:v2', undefined, '2').metadata);
    assert.equal((tpl(after) as any).spec.containers[0].image, 'app:v2');
    // As kubectl rollout undo, except that an annotation another manager owns (example.com/owner) is left to it.
    assert.deepEqual(after.metadata.annotations, {
      'deployment.kubernetes.io/revision': '3',
      'kubectl.kubernetes.io/last-applied-configuration': '{"kept":true}',
      'kubernetes.io/change-cause': 'release v2',
      'example.com/owner': 'team-a',
    });
    assert.equal(after.metadata.generation, Number(before.metadata.generation) + 1);
  });

  test('matches real kubectl rollout undo on an identical Deployment', { skip: !existsSync(KUBECTL) && 'kubectl 1.32 not installed' }, async () => {
    await seed(kube, store, 'ours', [1, 2, 3], 3);
    await seed(kube, store, 'theirs', [1, 2, 3], 3);
    const r = await rollbackDeployment(kube, NS, 'ours', { toRevision: 1 });
    assert.equal(r.outcome, 'rolled-back');
    const k = await kubectl(kubeconfig, dir, ['-n', NS, 'rollout', 'undo', 'deployment/theirs', '--to-revision=1']);
    assert.equal(k.code, 0, k.stderr);
    assert.match(k.stdout, /rolled back/);
    const ours = store.get('Deployment', NS, 'ours')!;
    const theirs = store.get('Deployment', NS, 'theirs')!;
    // kubectl serializes the typed template with `creationTimestamp: null`, which the lab stores as sent.
    const theirTemplate = structuredClone(tpl(theirs)) as any;
    if (theirTemplate.metadata.creationTimestamp === null) delete theirTemplate.metadata.creationTimestamp;
    assert.deepEqual(tpl(ours), theirTemplate);
    const { 'example.com/owner': owner, ...ourAnnotations } = ours.metadata.annotations ?? {};
    assert.equal(owner, 'team-a', 'an annotation another manager owns is not taken over');
    assert.deepEqual(ourAnnotations, theirs.metadata.annotations);
    assert.equal((tpl(ours) as any).spec.containers[0].image, 'app:v1');
    assert.equal(ours.metadata.annotations!['example.com/legacy'], 'yes');
  });

  test('first install (one revision): "nothing to roll back to", not an exception; nothing patched', async () => {
    const d = await seed(kube, store, 'fresh', [1], 1);
    const r = await rollbackDeployment(kube, NS, 'fresh');
    assert.equal(r.outcome, 'nothing-to-roll-back');
    assert.match(r.message, /first rollout, there is nothing to roll back to/);
    assert.equal(store.get('Deployment', NS, 'fresh')!.metadata.resourceVersion, d.metadata.resourceVersion);
  });

  test('a named revision that does not exist: InputError naming the revisions there are', async () => {
    await seed(kube, store, 'named', [4, 5, 6], 6);
    await assert.rejects(rollbackDeployment(kube, NS, 'named', { toRevision: 2 }), (e: unknown) => {
      assert.ok(e instanceof InputError);
      assert.match(e.message, /Deployment shop\/named has no revision 2; revisions with a ReplicaSet: 6, 5, 4 \(current: 6\)/);
      assert.match(e.message, /fix: pass one of 5, 4/);
      return true;
    });
  });

  test('the template already matches the target revision: nothing changed', async () => {
    // After the first test, web runs revision 2's template (the controller would renumber it; here it is still "3").
    const r = await rollbackDeployment(kube, NS, 'web', { toRevision: 2 });
    assert.equal(r.outcome, 'already-at-revision');
  });

  test('paused Deployment and missing Deployment are input errors with a fix', async () => {
    await seed(kube, store, 'paused', [1, 2], 2, { paused: true });
    await assert.rejects(rollbackDeployment(kube, NS, 'paused'), /is paused[\s\S]*kubectl rollout resume deployment\/paused -n shop/);
    await assert.rejects(rollbackDeployment(kube, NS, 'ghost'), (e: unknown) => e instanceof InputError && /does not exist/.test(e.message));
  });

  test('dry-run computes without patching; rollbackAndWait hands the workload to the wait, only after a patch', async () => {
    const d = await seed(kube, store, 'waited', [1, 2], 2);
    const dry = await rollbackDeployment(kube, NS, 'waited', { dryRun: true });
    assert.equal(dry.outcome, 'dry-run');
    assert.equal(store.get('Deployment', NS, 'waited')!.metadata.resourceVersion, d.metadata.resourceVersion);
    const waited: RollbackWaitTarget[] = [];
    const r = await rollbackAndWait(kube, NS, 'waited', {}, async (t) => {
      waited.push(t);
      // The wait sees the patched Deployment.
      assert.equal(((tpl(store.get('Deployment', NS, 'waited')!) as any).spec.containers[0].image), 'app:v1');
    });
    assert.equal(r.outcome, 'rolled-back');
    assert.equal(waited.length, 1);
    assert.deepEqual({ ...waited[0]!, oldPodIps: [...waited[0]!.oldPodIps].sort() }, { namespace: NS, name: 'waited', selector: 'app=web,tier=front', fromRevision: 2, toRevision: 1, oldPodIps: ['127.0.31.21', '127.0.31.22'] });
    await seed(kube, store, 'single', [1], 1);
    const none = await rollbackAndWait(kube, NS, 'single', {}, async () => assert.fail('no wait without a patch'));
    assert.equal(none.outcome, 'nothing-to-roll-back');
  });
});

describe('rollback ownership (server-side apply as alb-rollout)', () => {
  const store = new ObjectStore();
  let server: LabApiServer;
  let kube: KubeClient;
  let dir = '';
  const manifest = (image: string, replicas = 2): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'owned', namespace: NS, labels: { team: 'a' } },
    spec: { replicas, selector: { matchLabels: { app: 'owned' } }, template: { metadata: { labels: { app: 'owned' } }, spec: { containers: [{ name: 'web', image }] } } },
  });

  before(async () => {
    server = new LabApiServer({ store });
    const { url } = await server.start();
    dir = await mkdtemp(join(tmpdir(), 'rollback-own-'));
    await writeKubeconfig(join(dir, 'kubeconfig'), url);
    kube = new KubeClient(loadKubeConfig({ kubeconfigPath: join(dir, 'kubeconfig') }, {}), { requestTimeoutMs: 10_000 });
    store.create('Namespace', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('the previous template goes back by apply as alb-rollout: no Update entry, what it applied stays, the next apply needs no --force-conflicts', async () => {
    const d = await kube.apply(manifest('app:v2'));
    // Revision 1 (app:v1) and 2 (app:v2), as the controller would leave them.
    for (const [r, image] of [[1, 'app:v1'], [2, 'app:v2']] as const) {
      store.create('ReplicaSet', {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: { name: `owned-h${r}`, namespace: NS, labels: { app: 'owned', 'pod-template-hash': `h${r}` }, annotations: { 'deployment.kubernetes.io/revision': String(r) }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'owned', uid: String(d.metadata.uid), controller: true }] },
        spec: { replicas: 0, selector: { matchLabels: { app: 'owned', 'pod-template-hash': `h${r}` } }, template: { metadata: { labels: { app: 'owned', 'pod-template-hash': `h${r}` } }, spec: { containers: [{ name: 'web', image }] } } },
      });
    }
    store.update('Deployment', { ...store.get('Deployment', NS, 'owned')!, metadata: { ...store.get('Deployment', NS, 'owned')!.metadata, annotations: { 'deployment.kubernetes.io/revision': '2' } } });
    const r = await rollbackDeployment(kube, NS, 'owned', { expectGeneration: Number(d.metadata.generation) });
    assert.equal(r.outcome, 'rolled-back');
    const live = store.get('Deployment', NS, 'owned')!;
    assert.equal((tpl(live) as any).spec.containers[0].image, 'app:v1');
    assert.equal((live.spec as any).replicas, 2, 'fields alb-rollout applied stay');
    assert.deepEqual(live.metadata.labels, { team: 'a' });
    const mine = (live.metadata.managedFields as any[]).filter((e) => e.manager === 'alb-rollout');
    assert.deepEqual(mine.map((e) => e.operation), ['Apply'], 'no Update entry of the same name (kubernetes/kubernetes#107417)');
    assert.deepEqual(ownedConfig(live, 'alb-rollout').spec, { replicas: 2, selector: { matchLabels: { app: 'owned' } }, template: { metadata: { labels: { app: 'owned' } }, spec: { containers: [{ name: 'web', image: 'app:v1' }] } } });
    // The next deploy of any template applies without force.
    const next = await kube.apply(manifest('app:v3'));
    assert.equal((tpl(next) as any).spec.containers[0].image, 'app:v3');
  });

  test('a Deployment someone else changed since the run applied it is not rolled back (StaleRollback)', async () => {
    const live = store.get('Deployment', NS, 'owned')!;
    await assert.rejects(rollbackDeployment(kube, NS, 'owned', { expectGeneration: Number(live.metadata.generation) - 1 }), (e: unknown) => e instanceof StaleRollback && /someone else changed it/.test(e.message));
    assert.equal(store.get('Deployment', NS, 'owned')!.metadata.resourceVersion, live.metadata.resourceVersion);
  });
});

describe('ownedConfig (pure)', () => {
  test('extracts what one manager\'s Apply entry owns: map keys, list items by key, set members', () => {
    const live: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'd',
        labels: { a: '1', b: '2' },
        managedFields: [
          { manager: 'm', operation: 'Apply', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:a': {} } }, 'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:name': {}, 'f:image': {} } }, 'f:finalizers': { 'v:"x"': {} } } } } } },
          { manager: 'm', operation: 'Update', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:b': {} } } } },
        ],
      },
      spec: { replicas: 3, template: { spec: { containers: [{ name: 'side', image: 's' }, { name: 'web', image: 'w', imagePullPolicy: 'Always' }], finalizers: ['x', 'y'] } } },
    };
    assert.deepEqual(ownedConfig(live, 'm'), { metadata: { labels: { a: '1' } }, spec: { template: { spec: { containers: [{ name: 'web', image: 'w' }], finalizers: ['x'] } } } });
    assert.deepEqual(ownedConfig(live, 'nobody'), {});
  });
});

describe('planRollback (pure)', () => {
  const d: KubeObject = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'n', uid: 'u1', annotations: { 'deployment.kubernetes.io/revision': '7' } }, spec: {} };
  const rs = (name: string, rev: string | undefined, uid = 'u1'): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, namespace: 'n', uid: `rs-${name}`, ...(rev ? { annotations: { 'deployment.kubernetes.io/revision': rev } } : {}), ownerReferences: [{ uid }] },
    spec: {},
  });

  test('previous = the newest revision below the current one, skipping gaps, foreign and unannotated ReplicaSets', () => {
    const p = planRollback(d, [rs('a', '7'), rs('b', '3'), rs('c', '5'), rs('x', '6', 'other'), rs('y', undefined), rs('z', 'abc')]);
    assert.equal(p.toRevision, 5);
    assert.equal(p.replicaSet?.metadata.name, 'c');
    assert.deepEqual(p.revisions, [7, 5, 3]);
  });

  test('a Deployment whose revision is above all ReplicaSets (cleaned up) goes to the newest one that exists', () => {
    assert.equal(planRollback({ ...d, metadata: { ...d.metadata, annotations: { 'deployment.kubernetes.io/revision': '9' } } }, [rs('a', '7'), rs('b', '3')]).toRevision, 7);
  });

  test('no ReplicaSets at all: nothing to roll back to', () => {
    const p = planRollback(d, []);
    assert.equal(p.replicaSet, undefined);
    assert.match(p.nothing ?? '', /no revision/);
  });

  test('selector strings for matchLabels and matchExpressions', () => {
    assert.equal(
      selectorOf({ ...d, spec: { selector: { matchLabels: { app: 'a' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['x', 'y'] }, { key: 'canary', operator: 'DoesNotExist' }] } } }),
      'app=a,tier in (x,y),!canary',
    );
  });
});
