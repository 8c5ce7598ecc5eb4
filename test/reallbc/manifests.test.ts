import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readLbcManifests, WEBHOOK_CONFIGURATION_NAME } from '../../src/lab/reallbc/manifests.js';

// A module tree of the same layout as the controller's release files, written here (our own minimal content).
async function fixture(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lbc-manifests-'));
  await mkdir(join(dir, 'config', 'crd', 'bases'), { recursive: true });
  await mkdir(join(dir, 'config', 'webhook'), { recursive: true });
  await writeFile(join(dir, 'config', 'crd', 'bases', 'b.yaml'), 'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: bs.example.com\n');
  await writeFile(join(dir, 'config', 'crd', 'bases', 'a.yaml'), '---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: as.example.com\n');
  await writeFile(
    join(dir, 'config', 'webhook', 'manifests.yaml'),
    [
      '---',
      'apiVersion: admissionregistration.k8s.io/v1',
      'kind: MutatingWebhookConfiguration',
      'metadata: {name: webhook}',
      'webhooks:',
      '  - name: mpod.example.com',
      '    failurePolicy: Fail',
      '    clientConfig: {service: {name: webhook-service, namespace: system, path: /mutate-v1-pod}}',
      '  - name: other.example.com',
      '    clientConfig: {service: {name: webhook-service, namespace: system, path: /other}}',
      '---',
      'apiVersion: admissionregistration.k8s.io/v1',
      'kind: ValidatingWebhookConfiguration',
      'metadata: {name: webhook}',
      'webhooks:',
      '  - name: vpod.example.com',
      '    clientConfig: {service: {name: webhook-service, namespace: system, path: /validate}}',
      '---',
      'apiVersion: v1',
      'kind: Service',
      'metadata: {name: webhook-service}',
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'config', 'webhook', 'kustomization.yaml'), 'resources: [manifests.yaml]\npatchesStrategicMerge:\n  - pod_patch.yaml\n');
  await writeFile(
    join(dir, 'config', 'webhook', 'pod_patch.yaml'),
    'apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: webhook}\nwebhooks:\n  - name: mpod.example.com\n    failurePolicy: Ignore\n    namespaceSelector: {matchLabels: {inject: enabled}}\n',
  );
  return dir;
}

test('release manifests: CRDs in file order, kustomize patches merged by webhook name, services turned into URLs with the CA', async () => {
  const dir = await fixture();
  try {
    const m = await readLbcManifests(dir, { baseUrl: 'https://127.0.0.1:9443', caPem: 'PEM' });
    assert.deepEqual(m.crds.map((c) => c.metadata.name), ['as.example.com', 'bs.example.com']);
    assert.deepEqual(m.webhooks.map((w) => [w.kind, w.metadata.name]), [
      ['MutatingWebhookConfiguration', WEBHOOK_CONFIGURATION_NAME],
      ['ValidatingWebhookConfiguration', WEBHOOK_CONFIGURATION_NAME],
    ]);
    const hooks = m.webhooks[0]?.webhooks as Array<Record<string, unknown>>;
    assert.deepEqual(hooks[0], {
      name: 'mpod.example.com',
      failurePolicy: 'Ignore',
      namespaceSelector: { matchLabels: { inject: 'enabled' } },
      clientConfig: { url: 'https://127.0.0.1:9443/mutate-v1-pod', caBundle: Buffer.from('PEM').toString('base64') },
    });
    assert.deepEqual(hooks[1]?.clientConfig, { url: 'https://127.0.0.1:9443/other', caBundle: Buffer.from('PEM').toString('base64') });
    assert.deepEqual(m.ingressClass.map((o) => `${o.kind}/${o.metadata.name}`), ['IngressClassParams/alb', 'IngressClass/alb']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
