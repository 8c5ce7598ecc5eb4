/**
 * What the LBC emulation needs on a real API server that the embedded one builds in: the TargetGroupBinding CRD
 * (installed and waited on until Established) and the admission webhook served over HTTPS, registered as a
 * MutatingWebhookConfiguration with a `url` and `caBundle` so that the API server itself calls it.
 */
import { createServer, type Server } from 'node:https';
import type { JsonObject, KubeObject } from '../../manifests/types.js';
import { mutatingWebhookConfiguration } from '../lbc/webhook.js';
import { StoreError, clone, type AdmissionOperation } from '../store.js';
import type { KeyPair } from './certs.js';
import type { RealCluster } from './cluster.js';

const preserve = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } as const;

/** The TargetGroupBinding CRD as LBC ships it, reduced to the fields the lab reads (the rest is preserved). */
export function targetGroupBindingCrd(): KubeObject {
  const col = (name: string, jsonPath: string, description: string, priority?: number): JsonObject => ({
    name,
    type: name === 'Age' ? 'date' : 'string',
    jsonPath,
    description,
    ...(priority ? { priority } : {}),
  });
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'targetgroupbindings.elbv2.k8s.aws' },
    spec: {
      group: 'elbv2.k8s.aws',
      names: { kind: 'TargetGroupBinding', listKind: 'TargetGroupBindingList', plural: 'targetgroupbindings', singular: 'targetgroupbinding', shortNames: ['tgb'] },
      scope: 'Namespaced',
      versions: [
        {
          name: 'v1beta1',
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            col('SERVICE-NAME', '.spec.serviceRef.name', "The Kubernetes Service's name"),
            col('SERVICE-PORT', '.spec.serviceRef.port', "The Kubernetes Service's port"),
            col('TARGET-TYPE', '.spec.targetType', "The AWS TargetGroup's TargetType"),
            col('ARN', '.spec.targetGroupARN', "The AWS TargetGroup's Amazon Resource Name", 1),
            col('Age', '.metadata.creationTimestamp', 'Age'),
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: {
                  type: 'object',
                  required: ['serviceRef'],
                  'x-kubernetes-preserve-unknown-fields': true,
                  properties: {
                    targetGroupARN: { type: 'string' },
                    targetGroupName: { type: 'string' },
                    targetType: { type: 'string', enum: ['instance', 'ip'] },
                    ipAddressType: { type: 'string', enum: ['ipv4', 'ipv6'] },
                    vpcID: { type: 'string' },
                    serviceRef: {
                      type: 'object',
                      required: ['name', 'port'],
                      properties: { name: { type: 'string' }, port: { 'x-kubernetes-int-or-string': true } },
                    },
                    networking: preserve,
                    nodeSelector: preserve,
                  },
                },
                status: { ...preserve },
              },
            },
          },
        },
      ],
    },
  };
}

/** Creates the CRD and waits until the API server reports it Established (then its resource is served). */
export async function installCrd(cluster: RealCluster, crd: KubeObject, timeoutMs = 30_000): Promise<void> {
  const path = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  const created = await cluster.request('POST', path, crd);
  if (created.status !== 201 && created.status !== 409) throw new Error(`creating CRD ${crd.metadata.name} answered ${created.status}: ${created.body.slice(0, 400)}`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await cluster.request('GET', `${path}/${crd.metadata.name}`);
    if (r.status === 200) {
      const conds = ((JSON.parse(r.body) as { status?: { conditions?: Array<{ type: string; status: string }> } }).status?.conditions ?? []);
      if (conds.some((c) => c.type === 'Established' && c.status === 'True')) return;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`CRD ${crd.metadata.name} was not Established within ${timeoutMs / 1000}s`);
}

/** The LBC webhook configuration pointing at the lab's HTTPS webhook (url + caBundle instead of a Service). */
export function urlWebhookConfiguration(baseUrl: string, caPem: string): KubeObject {
  const mwc = mutatingWebhookConfiguration();
  const hooks = (mwc.webhooks as JsonObject[]).map((w) => {
    const svc = (w.clientConfig as { service: { path: string } }).service;
    return { ...w, admissionReviewVersions: ['v1'], clientConfig: { url: `${baseUrl}${svc.path}`, caBundle: Buffer.from(caPem).toString('base64') } };
  });
  return { ...mwc, webhooks: hooks };
}

interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  namespace?: string;
  operation: string;
  object?: KubeObject;
  oldObject?: KubeObject | null;
}

/**
 * The HTTPS server the API server calls for admission: it runs the hooks the LBC emulation registered on the
 * cluster (the same functions the embedded tier runs inside its writes) and answers with a JSON patch of what
 * they changed, or a denial with their message.
 */
export async function startWebhookServer(cluster: RealCluster, cert: KeyPair, log: (line: string) => void): Promise<{ url: string; stop(): Promise<void> }> {
  const server: Server = createServer({ key: cert.keyPem, cert: cert.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      let review: { apiVersion?: string; request?: AdmissionRequest };
      try {
        review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof review;
      } catch {
        res.writeHead(400).end('expected an AdmissionReview');
        return;
      }
      const r = review.request;
      if (!r?.object) {
        res.writeHead(400).end('expected an AdmissionReview with request.object');
        return;
      }
      const response: JsonObject = { uid: r.uid, allowed: true };
      try {
        const obj = clone(r.object);
        if (!obj.metadata.namespace && r.namespace) obj.metadata.namespace = r.namespace;
        const operation: AdmissionOperation = r.operation === 'UPDATE' ? 'UPDATE' : 'CREATE';
        for (const hook of cluster.admissionHooks(r.kind.kind)) hook(obj, operation, r.oldObject ?? undefined);
        const patch = topLevelPatch(r.object, obj);
        if (patch.length > 0) {
          response.patchType = 'JSONPatch';
          response.patch = Buffer.from(JSON.stringify(patch)).toString('base64');
        }
      } catch (err) {
        const message = err instanceof StoreError ? err.message : `webhook error: ${(err as Error).message}`;
        if (!(err instanceof StoreError)) log(`lab webhook: ${message}`);
        response.allowed = false;
        response.status = { code: err instanceof StoreError ? err.code : 500, message };
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ apiVersion: review.apiVersion ?? 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `https://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** JSON patch replacing each changed top-level field except metadata (the hooks change spec only). */
function topLevelPatch(before: KubeObject, after: KubeObject): JsonObject[] {
  const ops: JsonObject[] = [];
  for (const k of Object.keys(after)) {
    if (k === 'metadata') continue;
    if (JSON.stringify(before[k]) === JSON.stringify(after[k])) continue;
    ops.push({ op: before[k] === undefined ? 'add' : 'replace', path: `/${k}`, value: after[k] ?? null });
  }
  return ops;
}
