import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubeObject } from '../../src/manifests/types.js';
import { GroupLoadError, groupLoadBalancerName, groupNameProblem, groupOf, groupStackLabels, groupsPendingFinalization, loadGroup } from '../../src/lab/lbc/group.js';
import { ObjectStore } from '../../src/lab/store.js';

function ing(ns: string, name: string, annotations: Record<string, string> = {}, finalizers?: string[]): KubeObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: ns, annotations, ...(finalizers ? { finalizers } : {}) },
    spec: { ingressClassName: 'alb', rules: [] },
  };
}

const G = 'alb.ingress.kubernetes.io/group.name';
const O = 'alb.ingress.kubernetes.io/group.order';

describe('IngressGroup loading (LBC group_loader rules)', () => {
  test('group names: LBC regexp and length', () => {
    assert.equal(groupNameProblem('shared'), undefined);
    assert.equal(groupNameProblem('a.b-c1'), undefined);
    assert.match(groupNameProblem('Shared')!, /lower case alphanumeric/);
    assert.match(groupNameProblem('-x')!, /must start and end with an alphanumeric/);
    assert.equal(groupNameProblem('a'.repeat(64)), 'groupName must be no more than 63 characters');
  });

  test('explicit and implicit groups; an invalid name is no group; deletion leaves the group', () => {
    const store = new ObjectStore();
    assert.equal(groupOf(store, ing('a', 'x', { [G]: 'shared' })), 'shared');
    assert.equal(groupOf(store, ing('a', 'x')), 'a/x');
    assert.deepEqual(groupOf(store, ing('a', 'x', { [G]: 'Bad' })), { invalid: groupNameProblem('Bad') });
    assert.equal(groupOf(store, { ...ing('a', 'x', { [G]: 'shared' }), metadata: { ...ing('a', 'x').metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } }), undefined);
    assert.equal(groupOf(store, { ...ing('a', 'x'), spec: { ingressClassName: 'nginx' } }), undefined);
  });

  test('members sorted by group.order then namespace/name; former members with the finalizer are inactive', () => {
    const store = new ObjectStore();
    const all = [
      ing('b', 'web', { [G]: 'shared' }),
      ing('a', 'api', { [G]: 'shared', [O]: '-5' }),
      ing('a', 'zzz', { [G]: 'shared' }),
      ing('c', 'left', { [G]: 'other' }, ['group.ingress.k8s.aws/shared']),
      ing('c', 'bad', { [G]: 'Bad!' }, ['group.ingress.k8s.aws/shared']),
      ing('d', 'alone', {}, ['ingress.k8s.aws/resources']),
    ];
    const g = loadGroup(store, 'shared', all);
    assert.deepEqual(g.members.map((m) => `${m.metadata.namespace}/${m.metadata.name}`), ['a/api', 'a/zzz', 'b/web']);
    assert.deepEqual(g.inactive.map((m) => m.metadata.name).sort(), ['bad', 'left']);
    // An implicit group's finalizer belongs only to its own Ingress.
    assert.deepEqual(loadGroup(store, 'd/alone', all).members.map((m) => m.metadata.name), ['alone']);
    assert.deepEqual(loadGroup(store, 'c/left', all).inactive, []);
  });

  test('group.order errors fail the whole group with LBC text', () => {
    const store = new ObjectStore();
    assert.throws(() => loadGroup(store, 'shared', [ing('a', 'x', { [G]: 'shared', [O]: '1001' })]), (e: unknown) => e instanceof GroupLoadError && e.message === 'explicit Ingress group order must be within [-1000:1000], Ingress: a/x, order: 1001');
    assert.throws(
      () => loadGroup(store, 'shared', [ing('a', 'x', { [G]: 'shared', [O]: 'first' })]),
      (e: unknown) => e instanceof GroupLoadError && e.message === 'failed to load Ingress group order for ingress: a/x: failed to parse int32 annotation, alb.ingress.kubernetes.io/group.order: first: strconv.ParseInt: parsing "first": invalid syntax',
    );
  });

  test('finalizers name the groups to revisit; stack labels and ALB names per group kind', () => {
    assert.deepEqual(groupsPendingFinalization(ing('a', 'x', {}, ['group.ingress.k8s.aws/shared', 'ingress.k8s.aws/resources', 'other/f'])), ['shared', 'a/x']);
    assert.deepEqual(groupStackLabels('shared'), { 'ingress.k8s.aws/stack': 'shared' });
    assert.deepEqual(groupStackLabels('a/x'), { 'ingress.k8s.aws/stack-namespace': 'a', 'ingress.k8s.aws/stack-name': 'x' });
    assert.match(groupLoadBalancerName('lab', 'my.shared-group.with.a.long.name', 'internal'), /^k8s-mysharedgroupwith-[0-9a-f]{10}$/);
    assert.match(groupLoadBalancerName('lab', 'team-a/api', 'internal'), /^k8s-teama-api-[0-9a-f]{10}$/);
  });
});
