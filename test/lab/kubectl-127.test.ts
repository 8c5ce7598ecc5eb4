/**
 * kubectl 1.27 against the lab API server with its default client-side validation (no --validate=false).
 *
 * 1.27 fetches `/openapi/v2` (protobuf, gnostic openapi.v2.Document) before every apply/create, then `/openapi/v3`
 * to learn whether the server validates fields itself (PATCH operations declaring `fieldValidation`). For a single
 * object it then sends `fieldValidation=Strict` and skips client-side schema validation; for `kind: List` it
 * validates every item client-side against the v2 `definitions` (found by `x-kubernetes-group-version-kind`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { writeFile } from 'node:fs/promises';
import { ApiServerLab } from './apiserver-harness.js';

const KUBECTL_127 = '/usr/lib/google-cloud-sdk/bin/kubectl.1.27';
const SAFE = 'examples/2048/safe';

/** kubectl 1.27 by default, and stricter: a successful command must print no warning either. */
class Lab extends ApiServerLab {
  constructor() {
    super({ kubectl: KUBECTL_127 });
  }

  override async ok(args: string[]): Promise<string> {
    const r = await this.kubectl(args);
    assert.equal(r.code, 0, `kubectl.1.27 ${args.join(' ')} should succeed\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /warning|error/i, `kubectl.1.27 ${args.join(' ')}: no warnings expected, stderr: ${r.stderr}`);
    return r.stdout;
  }
}

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 40
      readinessGates:
      - conditionType: target-health.elbv2.k8s.aws/k8s-default-web-0123456789
      containers:
      - name: app
        image: nginx:1.27
        ports: [{name: http, containerPort: 80}]
        env:
        - {name: MODE, value: prod}
        - {name: EXTRA, value: "1"}
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        resources: {requests: {cpu: 50m, memory: 64Mi}}
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 5, failureThreshold: 2}
        livenessProbe: {tcpSocket: {port: 80}, initialDelaySeconds: 10}
        lifecycle: {preStop: {exec: {command: [sleep, "15"]}}}
      - name: sidecar
        image: busybox:1.36
        args: [sleep, infinity]
`;

describe('kubectl 1.27 (client-side validation on, /openapi/v2 protobuf)', () => {
  const lab = new Lab();
  before(() => lab.start());
  after(() => lab.close());

  test('apply --server-side -f examples/2048/safe: /openapi/v2 served as protobuf, fieldValidation=Strict sent', async () => {
    const from = lab.requests.length;
    const out = await lab.ok(['apply', '--server-side', '-f', SAFE]);
    assert.match(out, /deployment\.apps\/deployment-2048 serverside-applied/);
    assert.match(out, /ingress\.networking\.k8s\.io\/ingress-2048 serverside-applied/);
    const log = lab.since(from);
    assert.ok(log.some((l) => /^GET \/openapi\/v2\S* → 200/.test(l)), `kubectl 1.27 should read /openapi/v2: ${log.join('\n')}`);
    const patches = log.filter((l) => l.startsWith('PATCH '));
    assert.equal(patches.length, 4, `one apply PATCH per object: ${log.join('\n')}`);
    for (const p of patches) assert.match(p, /fieldValidation=Strict/, p);
    assert.ok(lab.store.get('Deployment', 'game-2048', 'deployment-2048'));
  });

  test('GET /openapi/v2 as JSON: Swagger 2.0 with one definition per kind carrying x-kubernetes-group-version-kind', async () => {
    const res = await fetch(`${lab.url}/openapi/v2`, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const doc = (await res.json()) as { swagger: string; definitions: Record<string, Record<string, unknown>>; paths: Record<string, Record<string, any>> };
    assert.equal(doc.swagger, '2.0');
    const dep = doc.definitions['io.k8s.api.apps.v1.Deployment'];
    assert.deepEqual(dep?.['x-kubernetes-group-version-kind'], [{ group: 'apps', kind: 'Deployment', version: 'v1' }]);
    const cm = doc.definitions['io.k8s.api.core.v1.ConfigMap'] as { properties: Record<string, unknown> };
    assert.deepEqual(Object.keys(cm.properties).sort(), ['apiVersion', 'binaryData', 'data', 'immutable', 'kind', 'metadata']);
    const patch = doc.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}']?.patch;
    assert.ok(patch?.parameters.some((p: { name: string }) => p.name === 'fieldValidation'), 'PATCH declares fieldValidation');
    const proto = await fetch(`${lab.url}/openapi/v2`, { headers: { accept: 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf' } });
    assert.equal(proto.headers.get('content-type'), 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf');
    const bytes = Buffer.from(await proto.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 5)], [0x0a, 0x03, 0x32, 0x2e, 0x30], 'Document.swagger (field 1) = "2.0" first');
  });

  test('apply -f (client-side) of a ConfigMap: created, then configured with the change', async () => {
    const cm = (data: string): string => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {${data}}\n`;
    const f = await lab.file('cm.yaml', cm('a: "1", b: "2"'));
    assert.match(await lab.ok(['apply', '-f', f]), /configmap\/settings created/);
    assert.match(await lab.ok(['apply', '-f', f]), /configmap\/settings unchanged/);
    await writeFile(f, cm('a: "3"'));
    assert.match(await lab.ok(['apply', '-f', f]), /configmap\/settings configured/);
    assert.deepEqual(lab.store.get('ConfigMap', 'default', 'settings')!.data, { a: '3' });
  });

  test('apply -f (client-side) of a Deployment with probes, lifecycle, env, readinessGates; removals are patched like a real server', async () => {
    const f = await lab.file('web.yaml', DEPLOYMENT);
    assert.match(await lab.ok(['apply', '-f', f]), /deployment\.apps\/web created/);
    // Drop the sidecar and one env var: the three-way strategic merge patch must delete them (merge keys `name`),
    // i.e. kubectl computes it from its compiled-in types, not from the open v2 schemas.
    await writeFile(f, DEPLOYMENT.replace('        - {name: EXTRA, value: "1"}\n', '').replace(/      - name: sidecar\n[\s\S]*$/, ''));
    assert.match(await lab.ok(['apply', '-f', f]), /deployment\.apps\/web configured/);
    const spec = (lab.store.get('Deployment', 'default', 'web')!.spec as any).template.spec;
    assert.deepEqual(spec.containers.map((c: { name: string }) => c.name), ['app']);
    assert.deepEqual(spec.containers[0].env.map((e: { name: string }) => e.name), ['MODE', 'POD_IP']);
    assert.deepEqual(spec.readinessGates, [{ conditionType: 'target-health.elbv2.k8s.aws/k8s-default-web-0123456789' }]);
  });

  test('kind: List is validated client-side against the v2 definitions: real manifests pass, unknown top-level and metadata fields are reported', async () => {
    const exported = await lab.ok(['get', 'deployment/web', 'configmap/settings', '-o', 'yaml']);
    assert.match(exported, /kind: List/);
    const f = await lab.file('exported.yaml', exported);
    const out = await lab.ok(['apply', '-f', f]);
    assert.match(out, /deployment\.apps\/web (configured|unchanged)/);

    const bad = {
      apiVersion: 'v1',
      kind: 'List',
      items: [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'typo', namespace: 'default', lables: { a: 'b' } }, spec: {}, replica: 2 }],
    };
    const r = await lab.kubectl(['apply', '-f', await lab.file('bad-list.json', JSON.stringify(bad))]);
    assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, /unknown field "replica" in io\.k8s\.api\.apps\.v1\.Deployment/);
    assert.match(r.stderr, /unknown field "lables" in io\.k8s\.apimachinery\.pkg\.apis\.meta\.v1\.ObjectMeta/);
    assert.equal(lab.store.get('Deployment', 'default', 'typo'), undefined, 'nothing created');
  });

  test('an unknown field in a single Deployment: 1.27 skips client-side validation and sends fieldValidation=Strict (the server decides)', async () => {
    // What 1.27 does against any server that declares fieldValidation (as the real ≥ 1.25 servers do): no
    // client-side schema check; the PATCH/POST carries fieldValidation=Strict. Rejecting the unknown field
    // (400 "strict decoding error: unknown field") is then the API server's job, the same for kubectl 1.30–1.33.
    const f = await lab.file('typo.yaml', DEPLOYMENT.replace('name: web', 'name: typo').replace('  replicas: 2\n', '  replicas: 2\n  replica: 3\n'));
    const from = lab.requests.length;
    const r = await lab.kubectl(['apply', '-f', f]);
    assert.doesNotMatch(r.stderr, /error validating data/, `no client-side validation error: ${r.stderr}`);
    const write = lab.since(from).find((l) => /^(POST|PATCH) \/apis\/apps\/v1\/namespaces\/default\/deployments/.test(l));
    assert.ok(write, `a write request: ${lab.since(from).join('\n')}`);
    assert.match(write, /fieldValidation=Strict/);
  });

  test('get pods -o wide (Table from the server)', async () => {
    const pod = `apiVersion: v1\nkind: Pod\nmetadata: {name: solo, namespace: default}\nspec:\n  containers: [{name: app, image: nginx:1.27}]\n`;
    assert.match(await lab.ok(['apply', '-f', await lab.file('pod.yaml', pod)]), /pod\/solo created/);
    const out = await lab.ok(['get', 'pods', '-o', 'wide']);
    assert.match(out.split('\n')[0]!, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES/);
    assert.match(out, /^solo\s/m);
  });
});
