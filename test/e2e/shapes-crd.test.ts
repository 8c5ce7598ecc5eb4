import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { albUrl, describeTiers, e2eLab, labArgs, traffic, variant, type E2eLab } from './helpers.js';

/** The shapes of issue 10 through deploy, under traffic: a CustomResourceDefinition and its custom resource in one set. */

interface Report {
  result: string;
  revision: string;
  previousRevision: string;
  timeline: Array<{ kind: string; message: string }>;
  targetGroupArns: string[];
  guard?: { decision: { verdict: string } };
}

const WIDGET_CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: { type: object, properties: { size: { type: integer } } }
`;

describeTiers('shapes: a CustomResourceDefinition and its custom resource in one set', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('applies the CRD first, waits for Established, dry-runs and applies the CR, and rolls out under traffic with zero non-2xx', async () => {
    const withWidget = async (tag: string, size: number): Promise<string> => {
      const dir = await variant('2048/safe', l.dir, tag);
      await writeFile(join(dir, '0-crd.yaml'), WIDGET_CRD);
      await writeFile(join(dir, '5-widget.yaml'), `apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: board\n  namespace: game-2048\nspec:\n  size: ${size}\n`);
      return dir;
    };
    const v1 = await withWidget('v1', 4);
    const plan = await l.cli(['plan', '-f', v1]);
    assert.equal(plan.code, 0, `${plan.stdout}\n${plan.stderr}`);
    assert.match(plan.stdout, /CustomResourceDefinition widgets\.example\.com is Established/);
    assert.match(plan.stdout, /the 1 custom resource\(s\) now that their CRDs are Established/);
    const install = await l.cli(['deploy', '-f', v1, ...labArgs(l)], { timeoutMs: 180_000 });
    assert.equal(install.code, 0, `install failed:\n${install.stdout}\n${install.stderr}`);
    const out = install.stdout + install.stderr;
    const crdAt = out.indexOf('applied CustomResourceDefinition widgets.example.com');
    const crAt = out.indexOf('applied Widget game-2048/board');
    assert.ok(crdAt >= 0 && crAt > crdAt, `the CRD is applied before its resource:\n${out}`);
    assert.equal((await l.kubectl(['get', 'widgets.example.com', 'board', '-n', 'game-2048', '-o', 'jsonpath={.spec.size}'])).stdout, '4');

    const load = traffic(albUrl(l.lab), 40);
    await waitFor(() => load.records.length >= 40 || undefined, { timeoutMs: 10_000, what: 'traffic to start' });
    const reportFile = join(l.dir, 'crd.json');
    const update = await l.cli(['deploy', '-f', await withWidget('v2', 8), '--report', reportFile, ...labArgs(l)], { timeoutMs: 180_000 });
    assert.equal(update.code, 0, `update failed:\n${update.stdout}\n${update.stderr}`);
    await waitFor(() => load.records.length >= 300 || undefined, { timeoutMs: 30_000, what: '300 requests' });
    const summary = await load.stop();
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
    assert.equal(report.result, 'succeeded');
    assert.equal(report.revision, '2');
    assert.equal(summary.non2xx, 0, `non-2xx responses during the update: ${JSON.stringify(summary.responses)}`);
    assert.equal((await l.kubectl(['get', 'widgets.example.com', 'board', '-n', 'game-2048', '-o', 'jsonpath={.spec.size}'])).stdout, '8');
  });
});
