/**
 * What the real AWS Load Balancer Controller needs in the cluster before it starts, taken from its own release
 * files in the Go module cache (never copied into this repository):
 *
 *  - the CRDs in `config/crd/bases/` (TargetGroupBinding, IngressClassParams, ALBTargetControlConfig);
 *  - the webhook configurations in `config/webhook/manifests.yaml` with the strategic-merge patches that
 *    `config/webhook/kustomization.yaml` lists (namespace/object selectors, failure policies), merged by webhook
 *    name as kustomize does, and each `clientConfig.service` turned into a `url` at the controller's local webhook
 *    port with the lab CA as `caBundle` (the controller runs out of cluster);
 *  - an IngressClass `alb` (controller `ingress.k8s.aws/alb`) with its IngressClassParams.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { JsonObject, KubeObject } from '../../manifests/types.js';

export interface LbcManifests {
  crds: KubeObject[];
  webhooks: KubeObject[];
  ingressClass: KubeObject[];
}

export interface WebhookTarget {
  /** `https://127.0.0.1:<port>` where the controller's webhook server answers. */
  baseUrl: string;
  /** PEM of the CA that signed the webhook server certificate. */
  caPem: string;
}

/** The name the Helm chart gives both webhook configurations. */
export const WEBHOOK_CONFIGURATION_NAME = 'aws-load-balancer-webhook';

export async function readLbcManifests(moduleDir: string, target: WebhookTarget): Promise<LbcManifests> {
  const crdDir = join(moduleDir, 'config', 'crd', 'bases');
  const crds: KubeObject[] = [];
  for (const f of (await readdir(crdDir)).filter((x) => x.endsWith('.yaml')).sort()) crds.push(...(await yamlObjects(join(crdDir, f))));
  const webhookDir = join(moduleDir, 'config', 'webhook');
  const base = await yamlObjects(join(webhookDir, 'manifests.yaml'));
  const kustomization = parseAllDocuments(await readFile(join(webhookDir, 'kustomization.yaml'), 'utf8'))[0]?.toJSON() as JsonObject | undefined;
  const patchFiles = Array.isArray(kustomization?.patchesStrategicMerge) ? (kustomization.patchesStrategicMerge as unknown[]).filter((x): x is string => typeof x === 'string') : [];
  const patches: KubeObject[] = [];
  for (const f of patchFiles) patches.push(...(await yamlObjects(join(webhookDir, f))));
  return { crds, webhooks: webhookConfigurations(base, patches, target), ingressClass: ingressClassObjects() };
}

/**
 * The webhook configurations with the kustomize patches applied (same kind and metadata.name; webhooks merged by
 * `name`, patch fields replacing the base's) and every service reference turned into a URL.
 */
export function webhookConfigurations(base: KubeObject[], patches: KubeObject[], target: WebhookTarget): KubeObject[] {
  const caBundle = Buffer.from(target.caPem).toString('base64');
  return base
    .filter((o) => o.kind === 'MutatingWebhookConfiguration' || o.kind === 'ValidatingWebhookConfiguration')
    .map((o) => {
      const webhooks = ((o.webhooks as JsonObject[] | undefined) ?? []).map((w) => {
        let merged: JsonObject = { ...w };
        for (const p of patches) {
          if (p.kind !== o.kind || p.metadata.name !== o.metadata.name) continue;
          const patch = ((p.webhooks as JsonObject[] | undefined) ?? []).find((x) => x.name === w.name);
          if (patch) merged = { ...merged, ...patch };
        }
        const service = ((merged.clientConfig as JsonObject | undefined)?.service ?? {}) as JsonObject;
        const path = typeof service.path === 'string' ? service.path : '/';
        return { ...merged, clientConfig: { url: `${target.baseUrl}${path}`, caBundle } };
      });
      return { apiVersion: o.apiVersion, kind: o.kind, metadata: { name: WEBHOOK_CONFIGURATION_NAME }, webhooks } as unknown as KubeObject;
    });
}

/** The IngressClass the controller serves (what the Helm chart creates by default). */
export function ingressClassObjects(): KubeObject[] {
  return [
    { apiVersion: 'elbv2.k8s.aws/v1beta1', kind: 'IngressClassParams', metadata: { name: 'alb' }, spec: {} } as unknown as KubeObject,
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'IngressClass',
      metadata: { name: 'alb' },
      spec: { controller: 'ingress.k8s.aws/alb', parameters: { apiGroup: 'elbv2.k8s.aws', kind: 'IngressClassParams', name: 'alb' } },
    } as unknown as KubeObject,
  ];
}

async function yamlObjects(path: string): Promise<KubeObject[]> {
  const text = await readFile(path, 'utf8');
  return parseAllDocuments(text)
    .map((d) => d.toJSON() as unknown)
    .filter((x): x is KubeObject => typeof x === 'object' && x !== null && typeof (x as { kind?: unknown }).kind === 'string');
}
