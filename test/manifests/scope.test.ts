import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { offlineScope } from '../../src/manifests/kinds.js';
import { crdKinds, scopeFromSetCrds, withScope } from '../../src/manifests/scope.js';
import { setOf } from '../fixtures/manifests.js';

const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: { kind: Widget, plural: widgets, singular: widget }
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
`;

describe('scope', () => {
  it('offline: built-in kinds from the table, anything else unknown and never put in a namespace by guess', () => {
    assert.equal(offlineScope('apps/v1', 'Deployment'), 'namespaced');
    assert.equal(offlineScope('v1', 'Namespace'), 'cluster');
    assert.equal(offlineScope('example.com/v1', 'Gizmo'), 'unknown');
    const set = setOf({ 'g.yaml': 'apiVersion: example.com/v1\nkind: Gizmo\nmetadata:\n  name: g\n' });
    const g = set.objects[0];
    assert.ok(g);
    assert.equal(g.ref.namespace, '');
    assert.equal(g.object.metadata.namespace, undefined);
    assert.equal(g.ref.scopeUnknown, true);
    assert.equal(g.ref.defaultNamespace, 'default');
  });

  it('a CRD in the same set gives its kind a scope; discovery gives it otherwise', () => {
    const set = setOf({ 'crd.yaml': crd, 'w.yaml': 'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n' });
    assert.deepEqual([...crdKinds(set.objects)], [['example.com/Widget', true]]);
    const w = scopeFromSetCrds(set.objects)[1];
    assert.equal(w?.ref.namespace, 'default');
    assert.equal(w?.object.metadata.namespace, 'default');
    assert.equal(w?.ref.scopeUnknown, undefined);
    const w1 = set.objects[1];
    assert.ok(w1);
    const cluster = withScope({ ...w1, ref: { ...w1.ref, namespace: 'x' } }, false);
    assert.equal(cluster.ref.namespace, '');
    assert.equal(cluster.object.metadata.namespace, undefined);
  });
});
