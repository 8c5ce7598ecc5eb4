/** Pure pieces of the lab API server: patches, server-side apply field ownership, selectors, protobuf decoding. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromFieldsV1, managedFieldsAfterUpdate, pathString, serverSideApply, toFieldsV1 } from '../../src/lab/apiserver/apply.js';
import { jsonPatch, mergePatch, strategicMergePatch } from '../../src/lab/apiserver/patch.js';
import { decodeProtobufObject } from '../../src/lab/apiserver/protobuf.js';
import { parseFieldSelector, parseLabelSelector } from '../../src/lab/apiserver/selectors.js';
import { ApiError } from '../../src/lab/apiserver/status.js';
import type { JsonObject, KubeObject } from '../../src/manifests/types.js';

const NOW = '2026-01-01T00:00:00Z';

function dep(spec: JsonObject, labels?: Record<string, string>): KubeObject {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'n', ...(labels ? { labels } : {}) }, spec };
}

describe('strategic merge patch', () => {
  const base = dep({
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } },
    template: { spec: { containers: [{ name: 'a', image: 'a:1', ports: [{ containerPort: 80 }], env: [{ name: 'X', value: '1' }] }, { name: 'b', image: 'b:1' }] } },
  });

  test('lists with a merge key merge by it; $patch delete removes an item; null removes a field', () => {
    const out = strategicMergePatch(base, { spec: { template: { spec: { containers: [{ name: 'a', image: 'a:2', env: [{ name: 'Y', value: '2' }] }, { name: 'b', $patch: 'delete' }] } } } }, 'Deployment') as any;
    assert.deepEqual(out.spec.template.spec.containers, [{ name: 'a', image: 'a:2', ports: [{ containerPort: 80 }], env: [{ name: 'X', value: '1' }, { name: 'Y', value: '2' }] }]);
    const nulled = strategicMergePatch(base, { spec: { strategy: { rollingUpdate: null } } }, 'Deployment') as any;
    assert.deepEqual(nulled.spec.strategy, { type: 'RollingUpdate' });
  });

  test('$patch: replace on a map (kubectl rollout undo), $retainKeys, $setElementOrder', () => {
    const undo = strategicMergePatch(base, { spec: { template: { $patch: 'replace', spec: { containers: [{ name: 'c', image: 'c:1' }] } } } }, 'Deployment') as any;
    assert.deepEqual(undo.spec.template, { spec: { containers: [{ name: 'c', image: 'c:1' }] } });
    const recreate = strategicMergePatch(base, { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } }, 'Deployment') as any;
    assert.deepEqual(recreate.spec.strategy, { type: 'Recreate' });
    const ordered = strategicMergePatch(base, { spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }] } } } }, 'Deployment') as any;
    assert.deepEqual(ordered.spec.template.spec.containers.map((c: any) => c.name), ['b', 'a']);
  });

  test('lists without a merge key are replaced; a $patch: replace item replaces the list', () => {
    const out = strategicMergePatch(base, { spec: { template: { spec: { containers: [{ name: 'a', args: ['x'] }] } } } }, 'Deployment') as any;
    assert.deepEqual(out.spec.template.spec.containers[0].args, ['x']);
    const replaced = strategicMergePatch(base, { spec: { template: { spec: { containers: [{ $patch: 'replace' }, { name: 'z', image: 'z' }] } } } }, 'Deployment') as any;
    assert.deepEqual(replaced.spec.template.spec.containers, [{ name: 'z', image: 'z' }]);
  });
});

describe('merge patch and JSON patch', () => {
  test('RFC 7386', () => {
    assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { c: null, e: 4 }, f: [1] }), { a: 1, b: { d: 3, e: 4 }, f: [1] });
  });
  test('RFC 6902 including test, move, copy and "-"', () => {
    const out = jsonPatch({ a: [1, 2], b: { c: 1 } }, [
      { op: 'test', path: '/b/c', value: 1 },
      { op: 'add', path: '/a/-', value: 3 },
      { op: 'copy', from: '/b', path: '/d' },
      { op: 'move', from: '/b/c', path: '/e' },
      { op: 'remove', path: '/a/0' },
    ]);
    assert.deepEqual(out, { a: [2, 3], b: {}, d: { c: 1 }, e: 1 });
    assert.throws(() => jsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }]), (e: unknown) => e instanceof ApiError && e.code === 422);
    assert.throws(() => jsonPatch({ a: 1 }, [{ op: 'remove', path: '/zz' }]), (e: unknown) => e instanceof ApiError && e.code === 422);
  });
});

describe('server-side apply', () => {
  const ctx = (manager: string, force = false) => ({ kind: 'Deployment', manager, force, now: NOW });

  test('field sets use FieldsV1 keys for associative lists, and print like the real server', () => {
    const created = serverSideApply(undefined, dep({ replicas: 2, template: { spec: { containers: [{ name: 'app', image: 'x', ports: [{ containerPort: 80 }] }] } } }), ctx('a'));
    const entry = (created.metadata.managedFields as any[])[0];
    assert.equal(entry.manager, 'a');
    assert.equal(entry.operation, 'Apply');
    const c = entry.fieldsV1['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"app"}'];
    assert.deepEqual(c['.'], {});
    assert.ok(c['f:ports']['k:{"containerPort":80,"protocol":"TCP"}']['f:containerPort']);
    const paths = fromFieldsV1(entry.fieldsV1);
    assert.deepEqual(fromFieldsV1(toFieldsV1(paths)), paths);
    assert.equal(pathString(['f:spec', 'f:template', 'f:spec', 'f:containers', 'k:{"name":"app"}', 'f:image']), '.spec.template.spec.containers[name="app"].image');
  });

  test('a field applied before as a leaf and now with content under it stays (a rollback then a release: env set again)', () => {
    const container = (extra: JsonObject): JsonObject => ({ template: { spec: { containers: [{ name: 'app', image: 'x', ...extra }] } } });
    const before = serverSideApply(undefined, dep(container({ env: [] })), ctx('tool'));
    const after = serverSideApply(before, dep(container({ env: [{ name: 'LAB_BEHAVIOR', value: 'error-500' }] })), ctx('tool'));
    assert.deepEqual((after.spec as any).template.spec.containers[0].env, [{ name: 'LAB_BEHAVIOR', value: 'error-500' }]);
  });

  test('conflicts with another manager on a differing value, shares equal values, force takes over', () => {
    const live = serverSideApply(undefined, dep({ replicas: 2, paused: false }), ctx('a'));
    assert.throws(
      () => serverSideApply(live, dep({ replicas: 3, paused: false }), ctx('b')),
      (e: unknown) => e instanceof ApiError && e.code === 409 && /conflict with "a": \.spec\.replicas/.test(e.message) && e.details?.causes?.[0]?.field === '.spec.replicas',
    );
    const shared = serverSideApply(live, dep({ paused: false }), ctx('b'));
    assert.equal((shared.metadata.managedFields as any[]).length, 2);
    const forced = serverSideApply(live, dep({ replicas: 3 }), ctx('b', true));
    assert.equal((forced.spec as any).replicas, 3);
    const a = (forced.metadata.managedFields as any[]).find((e) => e.manager === 'a');
    assert.equal(a.fieldsV1['f:spec']['f:replicas'], undefined);
    assert.ok(a.fieldsV1['f:spec']['f:paused']);
  });

  test('a manager is name and operation: the same name\'s Update entry conflicts with its Apply (kubernetes/kubernetes#107417)', () => {
    const applied = serverSideApply(undefined, dep({ replicas: 2, template: { spec: { containers: [{ name: 'app', image: 'v1' }] } } }), ctx('tool'));
    const image = (o: KubeObject): string => (o.spec as any).template.spec.containers[0].image;
    // A JSON patch by "tool" (an Update) takes the image over from the Apply entry.
    const patched = structuredClone(applied);
    (patched.spec as any).template.spec.containers[0].image = 'v0';
    patched.metadata.managedFields = managedFieldsAfterUpdate(applied, patched, { kind: 'Deployment', manager: 'tool', apiVersion: 'apps/v1', now: NOW });
    assert.deepEqual((patched.metadata.managedFields as any[]).map((e) => `${e.manager}/${e.operation}`), ['tool/Apply', 'tool/Update']);
    assert.throws(
      () => serverSideApply(patched, dep({ replicas: 2, template: { spec: { containers: [{ name: 'app', image: 'v2' }] } } }), ctx('tool')),
      (e: unknown) => e instanceof ApiError && e.code === 409 && /conflict with "tool" using apps\/v1/.test(e.message),
    );
    // Put back by apply instead, the next apply of the same manager goes through.
    const back = serverSideApply(applied, dep({ replicas: 2, template: { spec: { containers: [{ name: 'app', image: 'v0' }] } } }), ctx('tool', true));
    assert.equal(image(serverSideApply(back, dep({ replicas: 2, template: { spec: { containers: [{ name: 'app', image: 'v2' }] } } }), ctx('tool'))), 'v2');
  });

  test('omitted fields are removed unless another manager owns them; list items go with their key', () => {
    const one = serverSideApply(undefined, dep({ template: { spec: { containers: [{ name: 'a', image: 'a' }, { name: 'b', image: 'b' }] } } }, { x: '1', y: '2' }), ctx('m'));
    const two = serverSideApply(one, dep({ template: { spec: { containers: [{ name: 'a', image: 'a' }] } } }, { x: '1' }), ctx('m'));
    assert.deepEqual(two.metadata.labels, { x: '1' });
    assert.deepEqual((two.spec as any).template.spec.containers, [{ name: 'a', image: 'a' }]);
    const other = serverSideApply(one, dep({}, { y: '2' }), ctx('other'));
    const three = serverSideApply(other, dep({ template: { spec: { containers: [{ name: 'a', image: 'a' }] } } }, { x: '1' }), ctx('m'));
    assert.deepEqual(three.metadata.labels, { x: '1', y: '2' }, 'y stays: "other" co-owns it');
  });
});

describe('selectors', () => {
  test('label selector syntax', () => {
    const s = parseLabelSelector('app=web,tier!=db,env in (prod, staging),!legacy,team,zone notin (a)');
    assert.equal(s({ app: 'web', env: 'prod', team: 'x' }), true);
    assert.equal(s({ app: 'web', env: 'prod', team: 'x', legacy: '1' }), false);
    assert.equal(s({ app: 'web', env: 'dev', team: 'x' }), false);
    assert.equal(s({ app: 'web', env: 'prod', team: 'x', zone: 'a' }), false);
    assert.equal(parseLabelSelector('a==b')({ a: 'b' }), true);
    assert.throws(() => parseLabelSelector('a in b'), (e: unknown) => e instanceof ApiError && e.code === 400);
  });
  test('field selectors, with the real server\'s 400 for unsupported fields', () => {
    const pod: KubeObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'n' }, spec: { nodeName: 'x' }, status: { phase: 'Running' } };
    assert.equal(parseFieldSelector('status.phase=Running,spec.nodeName!=y,metadata.name==p', 'Pod')(pod), true);
    assert.equal(parseFieldSelector('status.phase!=Running', 'Pod')(pod), false);
    assert.throws(() => parseFieldSelector('spec.image=x', 'Pod'), (e: unknown) => e instanceof ApiError && /field label not supported: spec.image/.test(e.message));
  });
});

describe('protobuf request bodies', () => {
  // Minimal protobuf writer for the test (length-delimited and varint fields only).
  const varint = (n: number): number[] => {
    const out: number[] = [];
    do {
      let b = n & 0x7f;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      out.push(b);
    } while (n > 0);
    return out;
  };
  const ld = (num: number, bytes: number[] | string): number[] => {
    const b = typeof bytes === 'string' ? [...Buffer.from(bytes)] : bytes;
    return [...varint((num << 3) | 2), ...varint(b.length), ...b];
  };
  const vi = (num: number, v: number): number[] => [...varint(num << 3), ...varint(v)];

  test('a ConfigMap and a Deployment in the k8s envelope decode to their JSON form', () => {
    const meta = [...ld(1, 'cfg'), ...ld(11, [...ld(1, 'app'), ...ld(2, 'web')]), ...ld(8, [])];
    const cm = [...ld(1, meta), ...ld(2, [...ld(1, 'k'), ...ld(2, 'v')])];
    const body = Buffer.from([0x6b, 0x38, 0x73, 0x00, ...ld(1, [...ld(1, 'v1'), ...ld(2, 'ConfigMap')]), ...ld(2, cm)]);
    assert.deepEqual(decodeProtobufObject(body), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', labels: { app: 'web' } }, data: { k: 'v' } });

    const container = [...ld(1, 'app'), ...ld(2, 'nginx'), ...ld(6, [...vi(2, 0), ...vi(3, 80), ...ld(4, 'TCP')])];
    const spec = [...vi(1, 0), ...ld(3, [...ld(2, ld(2, container))]), ...ld(4, [...ld(1, '')])];
    const d = decodeProtobufObject(Buffer.from([0x6b, 0x38, 0x73, 0x00, ...ld(1, [...ld(1, 'apps/v1'), ...ld(2, 'Deployment')]), ...ld(2, [...ld(1, ld(1, 'd')), ...ld(2, spec)])]));
    assert.deepEqual(d.spec, { replicas: 0, template: { spec: { containers: [{ name: 'app', image: 'nginx', ports: [{ containerPort: 80, protocol: 'TCP' }] }] } }, strategy: {} });
  });

  test('an unknown field or kind is refused with 415, never dropped', () => {
    const body = Buffer.from([0x6b, 0x38, 0x73, 0x00, ...ld(1, [...ld(1, 'v1'), ...ld(2, 'ConfigMap')]), ...ld(2, ld(99, 'x'))]);
    assert.throws(() => decodeProtobufObject(body), (e: unknown) => e instanceof ApiError && e.code === 415 && /field 99 of ConfigMap/.test(e.message));
    const kind = Buffer.from([0x6b, 0x38, 0x73, 0x00, ...ld(1, [...ld(1, 'batch/v1'), ...ld(2, 'Job')]), ...ld(2, [])]);
    assert.throws(() => decodeProtobufObject(kind), (e: unknown) => e instanceof ApiError && e.code === 415);
  });
});
