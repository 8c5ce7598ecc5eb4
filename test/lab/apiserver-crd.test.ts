import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { ApiServerLab } from './apiserver-harness.js';

/** The embedded API server serves a CustomResourceDefinition's kind once it is Established, as a real one does. */

const CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget, shortNames: [wd] }
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
      subresources: { status: {} }
`;

describe('lab API server: CustomResourceDefinitions', () => {
  let lab: ApiServerLab;
  before(async () => {
    lab = await new ApiServerLab().start();
  });
  after(async () => {
    await lab.close();
  });

  it('sets NamesAccepted and Established after a short delay, then serves the kind: discovery, apply, get, list, watch', async () => {
    assert.equal((await lab.api('GET', '/apis/example.com/v1')).status, 404, 'not served before the CRD exists');
    await lab.ok(['apply', '--server-side', '-f', await lab.file('crd.yaml', CRD)]);
    const crd = await waitFor(
      async () => {
        const r = await lab.api('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com');
        const conditions = (r.body?.status?.conditions ?? []) as Array<{ type: string; status: string }>;
        return conditions.some((c) => c.type === 'Established' && c.status === 'True') ? r.body : undefined;
      },
      { timeoutMs: 10_000, what: 'the CRD to be Established' },
    );
    assert.ok((crd.status.conditions as Array<{ type: string; status: string }>).some((c) => c.type === 'NamesAccepted' && c.status === 'True'));
    assert.equal(crd.status.acceptedNames.kind, 'Widget');
    const groups = (await lab.api('GET', '/apis')).body.groups as Array<{ name: string }>;
    assert.ok(groups.some((g) => g.name === 'example.com'), 'the group is discovered');
    const resources = (await lab.api('GET', '/apis/example.com/v1')).body.resources as Array<{ name: string; namespaced: boolean; kind: string }>;
    assert.deepEqual(resources.map((r) => [r.name, r.namespaced, r.kind]), [['widgets', true, 'Widget'], ['widgets/status', true, 'Widget']]);

    // kubectl finds the kind through discovery and applies, gets and lists it.
    await lab.ok(['apply', '--server-side', '-f', await lab.file('w.yaml', 'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: default\nspec:\n  size: 3\n')]);
    assert.equal(await lab.ok(['get', 'wd', 'w1', '-n', 'default', '-o', 'jsonpath={.spec.size}']), '3');
    assert.match(await lab.ok(['get', 'widgets', '-n', 'default', '-o', 'name']), /widget\.example\.com\/w1/);
    const watch = await lab.api('GET', '/apis/example.com/v1/namespaces/default/widgets?watch=true&resourceVersion=0&timeoutSeconds=1');
    assert.match(watch.text, /"type":"ADDED".*"name":"w1"/);
  });
});
