/**
 * The lab API server against real clients: kubectl (1.30 via the dispatcher, 1.32, 1.33) and
 * @kubernetes/client-node 1.4, plus raw HTTP for the error contract. No mocks.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { ApiServerLab as Lab, KUBECTL_BIN as BIN, type Http } from './apiserver-harness.js';
import type { KubeObject } from '../../src/manifests/types.js';
import { waitFor } from '../helpers/wait.js';

const SAFE = 'examples/2048/safe';
const NAIVE = 'examples/2048/naive';

function deployment(name: string, ns: string, opts: { replicas?: number; image?: string; labels?: Record<string, string> } = {}): KubeObject {
  const labels = opts.labels ?? { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns },
    spec: {
      replicas: opts.replicas ?? 2,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: opts.image ?? 'nginx:1.0', ports: [{ containerPort: 80 }] }] } },
    },
  };
}

function status(r: Http, code: number, reason: string): void {
  assert.equal(r.status, code, `expected HTTP ${code}, got ${r.status}: ${r.text}`);
  assert.equal(r.body?.kind, 'Status', `expected a Status body: ${r.text}`);
  assert.equal(r.body.code, code);
  assert.equal(r.body.reason, reason, `reason: ${r.text}`);
  assert.equal(r.body.status, 'Failure');
}

// ---------------------------------------------------------------------------------------------- kubectl

for (const [label, bin] of [
  ['1.32', `${BIN}/kubectl.1.32`],
  ['1.33', `${BIN}/kubectl.1.33`],
  ['1.30 (dispatcher `kubectl`)', 'kubectl'],
] as const) {
  describe(`kubectl ${label}`, () => {
    let lab: Lab;
    before(async () => {
      lab = await new Lab().start();
    });
    after(() => lab.close());

    test('apply --server-side of the 2048 example, then again idempotently; get; label; annotate; delete', async () => {
      // A directory is applied in file order (deployment before namespace), as on a real cluster: namespace first.
      await lab.ok(['apply', '--server-side', '-f', `${SAFE}/1-namespace.yaml`], { bin });
      const first = await lab.ok(['apply', '--server-side', '-f', SAFE], { bin });
      assert.match(first, /deployment.apps\/deployment-2048 serverside-applied/);
      assert.match(first, /ingress.networking.k8s.io\/ingress-2048 serverside-applied/);
      const rv = lab.store.get('Deployment', 'game-2048', 'deployment-2048')!.metadata.resourceVersion;
      const storeRv = lab.store.resourceVersion;
      await lab.ok(['apply', '--server-side', '-f', SAFE], { bin });
      assert.equal(lab.store.get('Deployment', 'game-2048', 'deployment-2048')!.metadata.resourceVersion, rv, 'a repeated apply must not write');
      assert.equal(lab.store.resourceVersion, storeRv, 'a repeated apply must not write anything');

      const dep = lab.store.get('Deployment', 'game-2048', 'deployment-2048')!;
      assert.equal((dep.spec as any).replicas, 5);
      assert.equal((dep.spec as any).revisionHistoryLimit, 10, 'defaults applied');
      assert.equal((dep.spec as any).template.spec.containers[0].terminationMessagePath, '/dev/termination-log');
      const mf = dep.metadata.managedFields as any[];
      assert.equal(mf.length, 1);
      assert.equal(mf[0].manager, 'kubectl');
      assert.equal(mf[0].operation, 'Apply');
      assert.ok(mf[0].fieldsV1['f:spec']['f:replicas'], 'kubectl owns .spec.replicas');
      assert.equal(mf[0].fieldsV1['f:spec']['f:revisionHistoryLimit'], undefined, 'defaults are not owned by the applier');

      const all = await lab.ok(['get', 'deploy,svc,ing', '-A'], { bin });
      assert.match(all, /game-2048\s+deployment.apps\/deployment-2048\s+0\/5\s+0\s+0\s+\d+s/);
      assert.match(all, /game-2048\s+service\/service-2048\s+ClusterIP\s+10\.96\.\d+\.\d+\s+<none>\s+80\/TCP/);
      assert.match(all, /game-2048\s+ingress.networking.k8s.io\/ingress-2048\s+alb\s+\*/);

      await lab.ok(['label', 'ns', 'game-2048', 'team=games'], { bin });
      await lab.ok(['-n', 'game-2048', 'annotate', 'svc', 'service-2048', 'note=hello'], { bin });
      assert.equal(lab.store.get('Namespace', '', 'game-2048')!.metadata.labels!.team, 'games');
      assert.equal(lab.store.get('Service', 'game-2048', 'service-2048')!.metadata.annotations!.note, 'hello');
      assert.match(await lab.ok(['get', 'ns', 'game-2048', '--show-labels'], { bin }), /Active.*team=games/);

      await lab.ok(['-n', 'game-2048', 'delete', 'ingress', 'ingress-2048'], { bin });
      assert.equal(lab.store.get('Ingress', 'game-2048', 'ingress-2048'), undefined);
      const missing = await lab.kubectl(['-n', 'game-2048', 'get', 'ingress', 'ingress-2048'], { bin });
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /NotFound.*ingresses.networking.k8s.io "ingress-2048" not found/);
    });

    test('imperative create commands (protobuf bodies from kubectl ≥ 1.32): namespace, deployment, expose, run, configmap', async () => {
      await lab.ok(['create', 'namespace', 'imp'], { bin });
      await lab.ok(['-n', 'imp', 'create', 'deployment', 'd', '--image=nginx:1.2', '--replicas=3', '--port=80'], { bin });
      await lab.ok(['-n', 'imp', 'create', 'deployment', 'zero', '--image=nginx', '--replicas=0'], { bin });
      await lab.ok(['-n', 'imp', 'expose', 'deployment', 'd', '--port=8080', '--target-port=80'], { bin });
      await lab.ok(['-n', 'imp', 'run', 'p', '--image=busybox', '--env=X=1', '--', 'sleep', '10'], { bin });
      await lab.ok(['-n', 'imp', 'create', 'configmap', 'c', '--from-literal=a=1'], { bin });
      const d = lab.store.get('Deployment', 'imp', 'd')!;
      assert.equal((d.spec as any).replicas, 3);
      assert.deepEqual((d.spec as any).selector, { matchLabels: { app: 'd' } });
      assert.deepEqual((d.spec as any).template.spec.containers[0].ports, [{ containerPort: 80, protocol: 'TCP' }]);
      assert.ok(!(d.spec as any).template.metadata.creationTimestamp, 'no zero-time creationTimestamp (kubectl 1.30 sends null in JSON, kept like the real server)');
      assert.equal((lab.store.get('Deployment', 'imp', 'zero')!.spec as any).replicas, 0);
      const svc = lab.store.get('Service', 'imp', 'd')!;
      assert.deepEqual((svc.spec as any).ports, [{ port: 8080, protocol: 'TCP', targetPort: 80 }]);
      const pod = lab.store.get('Pod', 'imp', 'p')!;
      assert.deepEqual((pod.spec as any).containers[0].args, ['sleep', '10']);
      assert.deepEqual((pod.spec as any).containers[0].env, [{ name: 'X', value: '1' }]);
      assert.deepEqual(lab.store.get('ConfigMap', 'imp', 'c')!.data, { a: '1' });
    });

    test('get pods -o wide shows IP, node and readiness gates; get tgb shows the CRD columns', async () => {
      await lab.ok(['create', 'namespace', 'wide'], { bin });
      lab.store.create('Pod', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'web-1', namespace: 'wide' },
        spec: { nodeName: 'lab-node-1', containers: [{ name: 'web', image: 'nginx' }], readinessGates: [{ conditionType: 'target-health.elbv2.k8s.aws/tgb-1' }] },
        status: {
          phase: 'Running',
          podIP: '127.0.10.5',
          conditions: [{ type: 'target-health.elbv2.k8s.aws/tgb-1', status: 'True' }],
          containerStatuses: [{ name: 'web', ready: true, restartCount: 2, state: { running: {} } }],
        },
      });
      const out = await lab.ok(['-n', 'wide', 'get', 'pods', '-o', 'wide'], { bin });
      const [header, row] = out.trim().split('\n');
      assert.match(header!, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$/);
      assert.match(row!, /^web-1\s+1\/1\s+Running\s+2\s+\S+\s+127\.0\.10\.5\s+lab-node-1\s+<none>\s+1\/1$/);

      const tgb = await lab.file(
        `tgb-${label.replace(/\W/g, '')}.yaml`,
        'apiVersion: elbv2.k8s.aws/v1beta1\nkind: TargetGroupBinding\nmetadata:\n  name: tgb-1\n  namespace: wide\nspec:\n  serviceRef:\n    name: web\n    port: 80\n  targetGroupARN: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-web/0123456789abcdef\n  targetType: ip\n',
      );
      await lab.ok(['apply', '--server-side', '-f', tgb], { bin });
      const tg = await lab.ok(['-n', 'wide', 'get', 'tgb'], { bin });
      assert.match(tg, /^NAME\s+SERVICE-NAME\s+SERVICE-PORT\s+TARGET-TYPE\s+AGE\ntgb-1\s+web\s+80\s+ip\s+\S+\n$/);
      const tgWide = await lab.ok(['-n', 'wide', 'get', 'targetgroupbindings', '-o', 'wide'], { bin });
      assert.match(tgWide, /ARN/);
      assert.match(tgWide, /targetgroup\/k8s-web/);
    });
  });
}

describe('kubectl 1.32: client-side apply, SSA conflicts, watch, rollout undo, namespaces', () => {
  let lab: Lab;
  before(async () => {
    lab = await new Lab().start();
    await lab.ok(['apply', '--server-side', '-f', `${SAFE}/1-namespace.yaml`]);
  });
  after(() => lab.close());

  test('kubectl apply (client-side) creates, is unchanged on repeat, and patches a changed manifest', async () => {
    const first = await lab.ok(['apply', '-f', NAIVE]);
    assert.match(first, /deployment.apps\/deployment-2048 created/);
    assert.match(await lab.ok(['apply', '-f', NAIVE]), /deployment.apps\/deployment-2048 unchanged/);
    const dep = lab.store.get('Deployment', 'game-2048', 'deployment-2048')!;
    assert.ok(dep.metadata.annotations!['kubectl.kubernetes.io/last-applied-configuration']);
    const text = await readFile(`${NAIVE}/2-deployment.yaml`, 'utf8');
    const changed = await lab.file('deployment-changed.yaml', text.replace(/image: .*/, 'image: nginx:1.27').replace(/replicas: \d+/, 'replicas: 4'));
    assert.match(await lab.ok(['apply', '-f', changed]), /configured/);
    const after = lab.store.get('Deployment', 'game-2048', 'deployment-2048')!;
    assert.equal((after.spec as any).template.spec.containers[0].image, 'nginx:1.27');
    assert.equal((after.spec as any).template.spec.containers.length, 1, 'containers merged by name, not appended');
    assert.equal((after.spec as any).replicas, 4);
    assert.equal(Number(after.metadata.generation), Number(dep.metadata.generation) + 1);
  });

  test('server-side apply conflict between two field managers; --force-conflicts takes over', async () => {
    const a = await lab.file('a.yaml', JSON.stringify(deployment('shared', 'game-2048', { replicas: 3 })));
    await lab.ok(['apply', '--server-side', '--field-manager=team-a', '-f', a]);
    const b = await lab.file('b.yaml', JSON.stringify(deployment('shared', 'game-2048', { replicas: 6 })));
    const conflict = await lab.kubectl(['apply', '--server-side', '-f', b]);
    assert.notEqual(conflict.code, 0);
    assert.match(conflict.stderr, /Apply failed with 1 conflict: conflict with "team-a": \.spec\.replicas/);
    assert.match(conflict.stderr, /--force-conflicts/);
    assert.equal((lab.store.get('Deployment', 'game-2048', 'shared')!.spec as any).replicas, 3);

    // Same values are shared, not conflicting.
    const same = await lab.file('same.yaml', JSON.stringify(deployment('shared', 'game-2048', { replicas: 3 })));
    await lab.ok(['apply', '--server-side', '-f', same]);

    await lab.ok(['apply', '--server-side', '--force-conflicts', '-f', b]);
    const dep = lab.store.get('Deployment', 'game-2048', 'shared')!;
    assert.equal((dep.spec as any).replicas, 6);
    const mf = dep.metadata.managedFields as any[];
    const teamA = mf.find((e) => e.manager === 'team-a');
    const kubectl = mf.find((e) => e.manager === 'kubectl');
    assert.equal(teamA.fieldsV1['f:spec']['f:replicas'], undefined, 'team-a lost .spec.replicas');
    assert.ok(kubectl.fieldsV1['f:spec']['f:replicas'], 'kubectl owns .spec.replicas');
    assert.ok(teamA.fieldsV1['f:spec']['f:template'], 'team-a still co-owns the fields it shares');
  });

  test('a field the manager stops applying is removed', async () => {
    const withLabel = deployment('prune', 'game-2048');
    withLabel.metadata.labels = { tier: 'web', keep: 'yes' };
    await lab.ok(['apply', '--server-side', '-f', await lab.file('p1.yaml', JSON.stringify(withLabel))]);
    withLabel.metadata.labels = { keep: 'yes' };
    await lab.ok(['apply', '--server-side', '-f', await lab.file('p2.yaml', JSON.stringify(withLabel))]);
    assert.deepEqual(lab.store.get('Deployment', 'game-2048', 'prune')!.metadata.labels, { keep: 'yes' });
  });

  test('kubectl get --watch streams changes as table rows', async () => {
    await lab.ok(['-n', 'game-2048', 'create', 'configmap', 'watched', '--from-literal=a=1']);
    const watching = lab.kubectl(['-n', 'game-2048', 'get', 'configmaps', '--watch', '--request-timeout=3s'], { timeoutMs: 20_000 });
    await waitFor(() => lab.server.requestCounts.watch! > 0, { timeoutMs: 10_000, what: 'kubectl to start watching' });
    await lab.ok(['-n', 'game-2048', 'label', 'configmap', 'watched', 'x=y']);
    await lab.ok(['-n', 'game-2048', 'create', 'configmap', 'second']);
    const r = await watching;
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^NAME\s+DATA\s+AGE$/);
    assert.ok(lines.filter((l) => /^watched\s+1\s/.test(l)).length >= 2, `initial row and the labelled update: ${r.stdout}`);
    assert.ok(lines.some((l) => /^second\s+0\s/.test(l)), `the new configmap: ${r.stdout}`);
  });

  test('kubectl rollout undo patches the template back from the previous ReplicaSet', async () => {
    const dep = deployment('undo', 'game-2048', { image: 'nginx:2.0' });
    await lab.ok(['apply', '--server-side', '-f', await lab.file('undo.yaml', JSON.stringify(dep))]);
    const live = lab.store.get('Deployment', 'game-2048', 'undo')!;
    lab.store.mutate('Deployment', 'game-2048', 'undo', (d) => {
      d.metadata.annotations = { 'deployment.kubernetes.io/revision': '2' };
    });
    const owner = [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'undo', uid: String(live.metadata.uid), controller: true, blockOwnerDeletion: true }];
    for (const [rev, image, hash] of [
      ['1', 'nginx:1.0', 'aaa111'],
      ['2', 'nginx:2.0', 'bbb222'],
    ] as const) {
      const template = structuredClone((live.spec as any).template);
      template.metadata.labels['pod-template-hash'] = hash;
      template.spec.containers[0].image = image;
      lab.store.create('ReplicaSet', {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: { name: `undo-${hash}`, namespace: 'game-2048', labels: { app: 'undo', 'pod-template-hash': hash }, annotations: { 'deployment.kubernetes.io/revision': rev }, ownerReferences: owner },
        spec: { replicas: rev === '2' ? 2 : 0, selector: { matchLabels: { app: 'undo', 'pod-template-hash': hash } }, template },
      });
    }
    const out = await lab.ok(['-n', 'game-2048', 'rollout', 'undo', 'deployment/undo']);
    assert.match(out, /deployment.apps\/undo rolled back/);
    const after = lab.store.get('Deployment', 'game-2048', 'undo')!;
    assert.equal((after.spec as any).template.spec.containers[0].image, 'nginx:1.0');
    assert.equal((after.spec as any).template.metadata.labels['pod-template-hash'], undefined, 'the hash label is not copied back');

    await lab.ok(['-n', 'game-2048', 'rollout', 'restart', 'deployment/undo']);
    assert.ok((lab.store.get('Deployment', 'game-2048', 'undo')!.spec as any).template.metadata.annotations['kubectl.kubernetes.io/restartedAt']);
    await lab.ok(['-n', 'game-2048', 'scale', 'deployment/undo', '--replicas=7']);
    await lab.ok(['-n', 'game-2048', 'set', 'image', 'deployment/undo', 'app=nginx:3.0']);
    const final = lab.store.get('Deployment', 'game-2048', 'undo')!;
    assert.equal((final.spec as any).replicas, 7);
    assert.equal((final.spec as any).template.spec.containers[0].image, 'nginx:3.0');
    assert.deepEqual(
      lab.store.list('ReplicaSet', 'game-2048').items.map((r) => r.metadata.name),
      ['undo-aaa111', 'undo-bbb222'],
    );
  });

  test('deleting a namespace deletes what is in it, then the namespace', async () => {
    await lab.ok(['create', 'namespace', 'doomed']);
    await lab.ok(['-n', 'doomed', 'create', 'configmap', 'c1']);
    await lab.ok(['-n', 'doomed', 'create', 'deployment', 'd1', '--image=nginx']);
    const out = await lab.ok(['delete', 'namespace', 'doomed', '--timeout=20s']);
    assert.match(out, /namespace "doomed" deleted/);
    assert.equal(lab.store.get('Namespace', '', 'doomed'), undefined);
    assert.equal(lab.store.get('ConfigMap', 'doomed', 'c1'), undefined);
    assert.equal(lab.store.get('Deployment', 'doomed', 'd1'), undefined);
    const r = await lab.kubectl(['-n', 'doomed', 'create', 'configmap', 'c2']);
    assert.match(r.stderr, /namespaces "doomed" not found/);
  });

  test('a pod in a deleted namespace keeps it Terminating until the pod is gone', async () => {
    await lab.ok(['create', 'namespace', 'slow']);
    await lab.ok(['-n', 'slow', 'run', 'p', '--image=nginx']);
    await lab.ok(['delete', 'namespace', 'slow', '--wait=false']);
    const ns = lab.store.get('Namespace', '', 'slow')!;
    assert.equal((ns.status as any).phase, 'Terminating');
    assert.ok(lab.store.get('Pod', 'slow', 'p')!.metadata.deletionTimestamp);
    const refused = await lab.kubectl(['-n', 'slow', 'create', 'configmap', 'late']);
    assert.match(refused.stderr, /unable to create new content in namespace slow because it is being terminated/);
    const http = await lab.api('POST', '/api/v1/namespaces/slow/configmaps', { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'late' } } });
    status(http, 403, 'Forbidden');
    lab.store.removeNow('Pod', 'slow', 'p'); // what the kubelet does once the pod has stopped
    assert.equal(lab.store.get('Namespace', '', 'slow'), undefined);
  });
});

// ---------------------------------------------------------------------------------------- client-node

describe('@kubernetes/client-node 1.4', () => {
  let lab: Lab;
  before(async () => {
    lab = await new Lab({ token: 'lab-token', eventLogSize: 20 }).start();
  });
  after(() => lab.close());

  test('server-side apply through KubernetesObjectApi, typed list, create and merge patch', async () => {
    const kc = lab.kubeConfig();
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    const ns = await objects.patch({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'cn' } }, undefined, undefined, 'alb-rollout', true, k8s.PatchStrategy.ServerSideApply);
    assert.equal(ns.metadata?.name, 'cn');
    const applied = await objects.patch(deployment('web', 'cn') as k8s.KubernetesObject, undefined, undefined, 'alb-rollout', false, k8s.PatchStrategy.ServerSideApply);
    assert.equal((applied as any).spec.replicas, 2);
    // The dry run answers as if stored, stores nothing.
    const dry = await objects.patch(deployment('web', 'cn', { replicas: 9 }) as k8s.KubernetesObject, undefined, 'All', 'alb-rollout', false, k8s.PatchStrategy.ServerSideApply);
    assert.equal((dry as any).spec.replicas, 9);
    assert.equal((lab.store.get('Deployment', 'cn', 'web')!.spec as any).replicas, 2);

    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const list = await apps.listNamespacedDeployment({ namespace: 'cn' });
    assert.deepEqual(list.items.map((d) => d.metadata?.name), ['web']);
    assert.equal(list.items[0]!.spec?.template.spec?.containers[0]?.image, 'nginx:1.0');
    await apps.createNamespacedDeployment({ namespace: 'cn', body: deployment('api', 'cn') as k8s.V1Deployment });
    const patched = await apps.patchNamespacedDeployment(
      { namespace: 'cn', name: 'api', body: { metadata: { labels: { patched: 'yes' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    assert.equal(patched.metadata?.labels?.patched, 'yes');

    const core = kc.makeApiClient(k8s.CoreV1Api);
    await assert.rejects(core.readNamespacedPod({ namespace: 'cn', name: 'nope' }), (err: any) => err.code === 404);
  });

  test('watch streams events; a too-old resourceVersion gives a 410 Expired ERROR event; re-list and re-watch', async () => {
    const kc = lab.kubeConfig();
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'w' } } });
    const first = await core.listNamespacedConfigMap({ namespace: 'w' });
    const staleRv = first.metadata!.resourceVersion!;
    const seen: string[] = [];
    const watch = new k8s.Watch(kc);
    const ctrl = await watch.watch('/api/v1/namespaces/w/configmaps', { resourceVersion: staleRv }, (type, obj) => seen.push(`${type} ${obj.metadata.name}`), () => {});
    await core.createNamespacedConfigMap({ namespace: 'w', body: { metadata: { name: 'c1' }, data: { a: '1' } } });
    await core.patchNamespacedConfigMap({ namespace: 'w', name: 'c1', body: { data: { a: '2' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await core.deleteNamespacedConfigMap({ namespace: 'w', name: 'c1' });
    await waitFor(() => seen.length >= 3, { timeoutMs: 5000, what: 'three watch events', describe: () => seen.join(', ') });
    assert.deepEqual(seen, ['ADDED c1', 'MODIFIED c1', 'DELETED c1']);
    ctrl.abort();

    // Push the stale version out of the event log (size 20), then watch from it.
    for (let i = 0; i < 25; i++) lab.store.create('ConfigMap', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `filler-${i}`, namespace: 'w' } });
    const events: Array<{ type: string; obj: any }> = [];
    let done = false;
    await watch.watch('/api/v1/namespaces/w/configmaps', { resourceVersion: staleRv }, (type, obj) => events.push({ type, obj }), () => (done = true));
    await waitFor(() => done, { timeoutMs: 5000, what: 'the expired watch to end' });
    assert.equal(events.length, 1);
    assert.equal(events[0]!.type, 'ERROR');
    assert.equal(events[0]!.obj.code, 410);
    assert.equal(events[0]!.obj.reason, 'Expired');
    assert.match(events[0]!.obj.message, /too old resource version/);

    const relisted = await core.listNamespacedConfigMap({ namespace: 'w' });
    assert.equal(relisted.items.length, 25);
    const after: string[] = [];
    const ctrl2 = await watch.watch('/api/v1/namespaces/w/configmaps', { resourceVersion: relisted.metadata!.resourceVersion, allowWatchBookmarks: true }, (type, obj) => after.push(`${type} ${obj.metadata.name}`), () => {});
    await core.createNamespacedConfigMap({ namespace: 'w', body: { metadata: { name: 'fresh' } } });
    await waitFor(() => after.includes('ADDED fresh'), { timeoutMs: 5000, what: 'the event after re-list', describe: () => after.join(', ') });
    ctrl2.abort();
  });
});

// ------------------------------------------------------------------------------------------- raw HTTP

describe('HTTP contract', () => {
  let lab: Lab;
  before(async () => {
    lab = await new Lab().start();
    await lab.api('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'h' } } });
  });
  after(() => lab.close());

  test('discovery, version, openapi', async () => {
    assert.match((await lab.api('GET', '/version')).body.gitVersion, /^v1\.30\./);
    assert.deepEqual((await lab.api('GET', '/api')).body.versions, ['v1']);
    const groups = (await lab.api('GET', '/apis')).body.groups.map((g: any) => g.name);
    for (const g of ['apps', 'networking.k8s.io', 'elbv2.k8s.aws', 'discovery.k8s.io', 'policy', 'rbac.authorization.k8s.io', 'apiextensions.k8s.io', 'argoproj.io', 'admissionregistration.k8s.io']) assert.ok(groups.includes(g), g);
    const apps = (await lab.api('GET', '/apis/apps/v1')).body;
    const dep = apps.resources.find((r: any) => r.name === 'deployments');
    assert.deepEqual(dep.shortNames, ['deploy']);
    assert.ok(apps.resources.some((r: any) => r.name === 'deployments/status'));
    assert.ok(apps.resources.some((r: any) => r.name === 'deployments/scale' && r.kind === 'Scale'));
    const index = (await lab.api('GET', '/openapi/v3')).body;
    const url = index.paths['apis/elbv2.k8s.aws/v1beta1'].serverRelativeURL;
    const doc = (await lab.api('GET', url)).body;
    const schema = Object.values(doc.components.schemas).find((s: any) => s['x-kubernetes-group-version-kind']?.[0]?.kind === 'TargetGroupBinding') as any;
    assert.ok(schema['x-kubernetes-preserve-unknown-fields']);
    const patchOp = doc.paths['/apis/elbv2.k8s.aws/v1beta1/namespaces/{namespace}/targetgroupbindings/{name}'].patch;
    assert.ok(patchOp.parameters.some((p: any) => p.name === 'fieldValidation' && p.in === 'query'));
    assert.equal((await lab.api('GET', '/healthz')).text, 'ok');
  });

  test('errors are Status bodies: 404, 405, 409, 415, 422, 400', async () => {
    status(await lab.api('GET', '/api/v1/namespaces/h/pods/nope'), 404, 'NotFound');
    assert.equal((await lab.api('GET', '/api/v1/namespaces/h/pods/nope')).body.message, 'pods "nope" not found');
    status(await lab.api('GET', '/apis/apps/v1/namespaces/h/widgets'), 404, 'NotFound');
    status(await lab.api('GET', '/nothing/here'), 404, 'NotFound');
    const noNs = await lab.api('POST', '/apis/apps/v1/namespaces/absent/deployments', { body: deployment('x', 'absent') });
    status(noNs, 404, 'NotFound');
    assert.equal(noNs.body.message, 'namespaces "absent" not found');

    const mwc = { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'x' } };
    status(await lab.api('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', { body: mwc }), 405, 'MethodNotAllowed');
    status(await lab.api('PUT', '/api/v1/namespaces/h/configmaps', { body: {} }), 405, 'MethodNotAllowed');
    assert.equal((await lab.api('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations')).status, 200);

    const created = await lab.api('POST', '/apis/apps/v1/namespaces/h/deployments', { body: deployment('d', 'h') });
    assert.equal(created.status, 201);
    status(await lab.api('POST', '/apis/apps/v1/namespaces/h/deployments', { body: deployment('d', 'h') }), 409, 'AlreadyExists');
    const stale = { ...created.body, metadata: { ...created.body.metadata, resourceVersion: '1' } };
    const c = await lab.api('PUT', '/apis/apps/v1/namespaces/h/deployments/d', { body: stale });
    status(c, 409, 'Conflict');
    assert.match(c.body.message, /the object has been modified/);

    status(await lab.api('PATCH', '/apis/apps/v1/namespaces/h/deployments/d', { body: '{}', contentType: 'text/plain' }), 415, 'UnsupportedMediaType');
    status(await lab.api('PATCH', '/apis/elbv2.k8s.aws/v1beta1/namespaces/h/targetgroupbindings/x', { body: '{}', contentType: 'application/strategic-merge-patch+json' }), 415, 'UnsupportedMediaType');
    status(await lab.api('PATCH', '/apis/apps/v1/namespaces/h/deployments/d', { body: deployment('d', 'h'), contentType: 'application/apply-patch+yaml' }), 400, 'BadRequest');

    const bad = deployment('bad', 'h');
    (bad.spec as any).template.metadata.labels = { app: 'other' };
    (bad.spec as any).template.spec.containers[0].image = '';
    const inv = await lab.api('POST', '/apis/apps/v1/namespaces/h/deployments', { body: bad });
    status(inv, 422, 'Invalid');
    const fields = inv.body.details.causes.map((x: any) => x.field);
    assert.ok(fields.includes('spec.template.metadata.labels'), inv.text);
    assert.ok(fields.includes('spec.template.spec.containers[0].image'), inv.text);
    assert.match(inv.body.message, /^Deployment.apps "bad" is invalid: \[/);
    status(await lab.api('POST', '/api/v1/namespaces/h/configmaps', { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'Bad_Name' } } }), 422, 'Invalid');
    status(await lab.api('POST', '/api/v1/namespaces/h/services', { body: { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: {} } }), 422, 'Invalid');
    status(await lab.api('GET', '/api/v1/namespaces/h/pods?labelSelector=a%20in%20'), 400, 'BadRequest');
    status(await lab.api('GET', '/api/v1/namespaces/h/pods?fieldSelector=spec.foo%3Dx'), 400, 'BadRequest');
  });

  test('defaults, status subresource, dry run, patches', async () => {
    const svc = await lab.api('POST', '/api/v1/namespaces/h/services', { body: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } } });
    assert.equal(svc.status, 201);
    assert.match(svc.body.spec.clusterIP, /^10\.(9[6-9]|10[0-9]|11[01])\.\d+\.\d+$/);
    assert.deepEqual(svc.body.spec.ports, [{ port: 80, protocol: 'TCP', targetPort: 80 }]);
    assert.equal(svc.body.spec.type, 'ClusterIP');
    assert.equal(svc.body.spec.sessionAffinity, 'None');

    const dep = (await lab.api('POST', '/apis/apps/v1/namespaces/h/deployments', { body: deployment('s', 'h') })).body;
    assert.deepEqual(dep.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } });
    assert.equal(dep.spec.progressDeadlineSeconds, 600);
    assert.equal(dep.spec.template.spec.containers[0].imagePullPolicy, 'IfNotPresent');

    // Main-resource writes never change status; /status writes nothing but status.
    const withStatus = { ...dep, status: { replicas: 9 }, spec: { ...dep.spec, replicas: 3 } };
    const put = (await lab.api('PUT', '/apis/apps/v1/namespaces/h/deployments/s', { body: withStatus })).body;
    assert.deepEqual(put.status, {});
    assert.equal(put.spec.replicas, 3);
    const st = await lab.api('PATCH', '/apis/apps/v1/namespaces/h/deployments/s/status?fieldManager=ctrl', { body: { status: { readyReplicas: 3 }, spec: { replicas: 1 } }, contentType: 'application/merge-patch+json' });
    assert.equal(st.status, 200, st.text);
    assert.equal(st.body.status.readyReplicas, 3);
    assert.equal(st.body.spec.replicas, 3);
    assert.ok(st.body.metadata.managedFields.some((e: any) => e.manager === 'ctrl' && e.subresource === 'status'));

    const dry = await lab.api('POST', '/apis/apps/v1/namespaces/h/deployments?dryRun=All', { body: deployment('dry', 'h') });
    assert.equal(dry.status, 201);
    assert.equal(dry.body.metadata.name, 'dry');
    assert.equal(lab.store.get('Deployment', 'h', 'dry'), undefined);
    const dryDelete = await lab.api('DELETE', '/apis/apps/v1/namespaces/h/deployments/s?dryRun=All');
    assert.equal(dryDelete.status, 200);
    assert.ok(lab.store.get('Deployment', 'h', 's'));

    const jp = await lab.api('PATCH', '/apis/apps/v1/namespaces/h/deployments/s', {
      contentType: 'application/json-patch+json',
      body: [
        { op: 'test', path: '/spec/replicas', value: 3 },
        { op: 'replace', path: '/spec/replicas', value: 4 },
        { op: 'add', path: '/metadata/labels', value: { a: 'b' } },
      ],
    });
    assert.equal(jp.body.spec.replicas, 4, jp.text);
    const failed = await lab.api('PATCH', '/apis/apps/v1/namespaces/h/deployments/s', { contentType: 'application/json-patch+json', body: [{ op: 'test', path: '/spec/replicas', value: 99 }] });
    status(failed, 422, 'Invalid');

    const smp = await lab.api('PATCH', '/apis/apps/v1/namespaces/h/deployments/s', {
      contentType: 'application/strategic-merge-patch+json',
      body: { spec: { template: { spec: { containers: [{ name: 'side', image: 'busybox' }, { name: 'app', env: [{ name: 'A', value: '1' }] }] } } } },
    });
    const containers = smp.body.spec.template.spec.containers;
    assert.deepEqual(containers.map((x: any) => x.name), ['app', 'side']);
    assert.deepEqual(containers[0].env, [{ name: 'A', value: '1' }]);
    assert.equal(containers[0].image, 'nginx:1.0');
    const del = await lab.api('PATCH', '/apis/apps/v1/namespaces/h/deployments/s', {
      contentType: 'application/strategic-merge-patch+json',
      body: { spec: { template: { spec: { containers: [{ name: 'side', $patch: 'delete' }] } } } },
    });
    assert.deepEqual(del.body.spec.template.spec.containers.map((x: any) => x.name), ['app']);

    const scale = await lab.api('GET', '/apis/apps/v1/namespaces/h/deployments/s/scale');
    assert.equal(scale.body.kind, 'Scale');
    assert.equal(scale.body.spec.replicas, 4);
    assert.equal(scale.body.status.selector, 'app=s');
  });

  test('list: selectors, pagination with continue tokens, all namespaces, tables', async () => {
    await lab.api('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'h2' } } });
    for (let i = 0; i < 5; i++) {
      await lab.api('POST', `/api/v1/namespaces/${i % 2 ? 'h' : 'h2'}/configmaps`, { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}`, labels: { i: String(i), odd: String(i % 2 === 1) } } } });
    }
    const names = async (q: string): Promise<string[]> => (await lab.api('GET', `/api/v1/configmaps?${q}`)).body.items.map((x: any) => x.metadata.name);
    assert.deepEqual(await names('labelSelector=odd%3Dtrue'), ['cm-1', 'cm-3']);
    assert.deepEqual(await names('labelSelector=i%20in%20(0,4),odd!%3Dtrue'), ['cm-0', 'cm-4']);
    assert.deepEqual(await names('labelSelector=i%20notin%20(0,1,2)'), ['cm-3', 'cm-4']);
    assert.deepEqual(await names('labelSelector=!i'), []);
    assert.deepEqual(await names('fieldSelector=metadata.name%3Dcm-2'), ['cm-2']);
    assert.deepEqual(await names('fieldSelector=metadata.namespace%3Dh'), ['cm-1', 'cm-3']);

    const all: string[] = [];
    let token = '';
    for (let page = 0; page < 10; page++) {
      const r = await lab.api('GET', `/api/v1/configmaps?labelSelector=i&limit=2${token ? `&continue=${encodeURIComponent(token)}` : ''}`);
      all.push(...r.body.items.map((x: any) => x.metadata.name));
      token = r.body.metadata.continue ?? '';
      if (!token) break;
      assert.ok(r.body.items.length === 2);
    }
    assert.deepEqual(all.sort(), ['cm-0', 'cm-1', 'cm-2', 'cm-3', 'cm-4']);

    const t = await lab.api('GET', '/api/v1/namespaces/h/configmaps?includeObject=Object', { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
    assert.equal(t.body.kind, 'Table');
    assert.deepEqual(t.body.columnDefinitions.map((c: any) => c.name), ['Name', 'Data', 'Age']);
    assert.equal(t.body.rows[0].object.kind, 'ConfigMap');
  });

  test('request counts, injected 500s and dropped watches', async () => {
    const before = lab.server.requestCounts.get!;
    lab.server.setFaults({ errorRate: 1 });
    status(await lab.api('GET', '/api/v1/namespaces/h'), 500, 'InternalError');
    lab.server.setFaults({ errorRate: 0, dropWatchAfterMs: 200 });
    assert.equal((await lab.api('GET', '/api/v1/namespaces/h')).status, 200);
    assert.equal(lab.server.requestCounts.get, before + 2);
    const started = Date.now();
    const w = await lab.api('GET', '/api/v1/namespaces/h/configmaps?watch=1');
    assert.ok(Date.now() - started >= 150, 'the watch stayed open until dropped');
    assert.equal(w.status, 200);
    assert.match(w.text.split('\n')[0]!, /^\{"type":"ADDED"/);
    lab.server.setFaults({ errorRate: 0 });
  });

  test('a bearer token is required when configured', async () => {
    const secured = await new Lab({ token: 's3cret' }).start();
    try {
      status(await secured.api('GET', '/api/v1/namespaces', { token: 'wrong' }), 401, 'Unauthorized');
      assert.equal((await secured.api('GET', '/api/v1/namespaces')).status, 200);
      const kubeconfig = parseYaml(await readFile(secured.kubeconfig, 'utf8'));
      assert.equal(kubeconfig['current-context'], 'alb-rollout-lab');
      assert.equal(kubeconfig.users[0].user.token, 's3cret');
      // kubectl (clientcmd) sends credentials only over TLS; against the plain-HTTP lab it sends none.
      const r = await secured.kubectl(['get', 'ns']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /provide credentials/);
    } finally {
      await secured.close();
    }
  });
});
