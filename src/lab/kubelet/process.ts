/**
 * The project's analysis image (built from the repository's Dockerfile: ENTRYPOINT node /app/dist/cli.js) run for
 * real by the lab's kubelet: a container with that image is a child process running this checkout's bundled
 * `dist/cli.js` with the container's args, its env (value and fieldRef), KUBERNETES_SERVICE_HOST/PORT of the lab's
 * API server, and the projected service-account volume (token from the TokenRequest API, the cluster CA, the
 * namespace) written under a per-pod root that `ALB_ROLLOUT_IN_CLUSTER_ROOT` names, so that the CLI takes its
 * in-cluster path. The lab's AWS endpoints, credentials and region (what IRSA and the EKS pod identity webhook give
 * a real pod) and `ALB_ROLLOUT_LAB` (the lab's clock and ALB addresses) are added to the env.
 *
 * Not emulated: other images, other commands than the image's entrypoint, securityContext (the process runs as
 * the lab's user), resource limits, env from Secrets/ConfigMaps (the container fails to start, naming it).
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeObject } from '../../manifests/types.js';
import { type Obj, arrAt, objAt, strAt } from '../controllers/util.js';
import { ContainerStartError, type ProcessSpec } from './container.js';
import type { ProcessImages } from './kubelet.js';

/** The image repository name the lab runs as the analysis CLI (matched with any registry prefix, tag or digest). */
export const DEFAULT_ANALYSIS_IMAGE = 'alb-rollout';
/** The Dockerfile's ENTRYPOINT. */
export const ANALYSIS_ENTRYPOINT = ['node', '/app/dist/cli.js'];
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface TokenRequest {
  namespace: string;
  serviceAccount: string;
  podName: string;
  podUid: string;
  audience?: string;
  expirationSeconds: number;
}

export interface AnalysisImageOptions {
  /** Repository name to match (default `alb-rollout`): `alb-rollout:0.1`, `ghcr.io/x/alb-rollout@sha256:…` match. */
  image?: string;
  /** The bundled CLI to run (the checkout's dist/cli.js). */
  cliPath: string;
  /** Per-pod directories (service-account files, working directory, logs) go under here. */
  rootDir: string;
  apiServer: { host: string; port: number };
  /** PEM of the cluster CA (what the kube-root-ca.crt ConfigMap holds). */
  caPem: string;
  requestToken(r: TokenRequest): Promise<string>;
  /** The lab's environment for pods (AWS endpoints and credentials, region, ALB_ROLLOUT_LAB). */
  env: Record<string, string>;
}

/** `ghcr.io/x/alb-rollout:0.1.0` → `ghcr.io/x/alb-rollout`. */
export function imageRepository(image: string): string {
  const noDigest = image.split('@')[0] ?? '';
  return noDigest.replace(/:[^/:]*$/, '');
}

export function matchesImage(image: string, name: string): boolean {
  const repo = imageRepository(image);
  return repo === name || repo.endsWith(`/${name}`);
}

/** Kubernetes' $(VAR) expansion of command and args ($$ escapes; unknown references stay as written). */
export function expandVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => (name === undefined ? '$' : (env[name] ?? m)));
}

function fieldRef(pod: KubeObject, path: string): string | undefined {
  switch (path) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return pod.metadata.namespace ?? 'default';
    case 'metadata.uid':
      return String(pod.metadata.uid ?? '');
    case 'spec.nodeName':
      return strAt(objAt(pod, 'spec'), 'nodeName');
    case 'spec.serviceAccountName':
      return strAt(objAt(pod, 'spec'), 'serviceAccountName');
    case 'status.podIP':
      return strAt(objAt(pod, 'status'), 'podIP');
    default:
      return undefined;
  }
}

/** The container's env as the kubelet resolves it (value, fieldRef); anything else cannot start in the lab. */
export function containerEnv(pod: KubeObject, container: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  const name = strAt(container, 'name') ?? 'container';
  for (const e of arrAt(container, 'env')) {
    const key = strAt(e, 'name');
    if (!key) continue;
    const value = strAt(e, 'value');
    const from = objAt(e, 'valueFrom');
    if (from) {
      const path = strAt(objAt(from, 'fieldRef'), 'fieldPath');
      const v = path ? fieldRef(pod, path) : undefined;
      if (v === undefined) {
        throw new ContainerStartError(`env ${key} of container ${name}: the lab resolves only value and fieldRef (metadata.name/namespace/uid, spec.nodeName, spec.serviceAccountName, status.podIP)`, 128, 'CreateContainerConfigError');
      }
      out[key] = v;
    } else {
      out[key] = expandVars(value ?? '', out);
    }
  }
  return out;
}

/** The projected service-account volume mounted at SERVICE_ACCOUNT_DIR in this container, if any. */
function serviceAccountProjection(pod: KubeObject, container: Obj): { audience?: string; expirationSeconds: number } | undefined {
  const mount = arrAt(container, 'volumeMounts').find((m) => strAt(m, 'mountPath') === SERVICE_ACCOUNT_DIR);
  if (!mount) return undefined;
  const volume = arrAt(objAt(pod, 'spec'), 'volumes').find((v) => strAt(v, 'name') === strAt(mount, 'name'));
  const source = arrAt(volume ? objAt(volume, 'projected') : undefined, 'sources')
    .map((s) => objAt(s, 'serviceAccountToken'))
    .find((t): t is Obj => t !== undefined);
  if (!source) return undefined;
  const audience = strAt(source, 'audience');
  const exp = source.expirationSeconds;
  return { ...(audience ? { audience } : {}), expirationSeconds: typeof exp === 'number' ? exp : 3607 };
}

function namespaceOf(pod: KubeObject): string {
  return pod.metadata.namespace ?? 'default';
}

export function analysisImage(o: AnalysisImageOptions): ProcessImages {
  const name = o.image ?? DEFAULT_ANALYSIS_IMAGE;
  const podRoot = (uid: string): string => join(o.rootDir, uid);
  return {
    matches: (image) => matchesImage(image, name),
    async prepare(pod, container): Promise<ProcessSpec> {
      const cname = strAt(container, 'name') ?? 'container';
      const command = (container.command as string[] | undefined) ?? ANALYSIS_ENTRYPOINT;
      const own = containerEnv(pod, container);
      const args = [...command.slice(ANALYSIS_ENTRYPOINT.length), ...((container.args as string[] | undefined) ?? [])].map((a) => expandVars(a, own));
      if (command.length < 2 || command[1] !== ANALYSIS_ENTRYPOINT[1] || !/(^|\/)node$/.test(command[0] ?? '')) {
        throw new ContainerStartError(
          `the lab runs the ${name} image only through its entrypoint \`${ANALYSIS_ENTRYPOINT.join(' ')}\`; container ${cname} has command ${JSON.stringify(command)} (leave command unset and pass args)`,
          128,
          'StartError',
        );
      }
      const uid = String(pod.metadata.uid ?? '');
      const root = podRoot(uid);
      const work = join(root, 'work');
      await mkdir(work, { recursive: true });
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: work,
        ...o.env,
        KUBERNETES_SERVICE_HOST: o.apiServer.host,
        KUBERNETES_SERVICE_PORT: String(o.apiServer.port),
        KUBERNETES_SERVICE_PORT_HTTPS: String(o.apiServer.port),
        HOSTNAME: pod.metadata.name,
        ...own,
      };
      const sa = serviceAccountProjection(pod, container);
      if (sa) {
        const dir = join(root, SERVICE_ACCOUNT_DIR);
        await mkdir(dir, { recursive: true });
        const namespace = pod.metadata.namespace ?? 'default';
        const token = await o.requestToken({
          namespace,
          serviceAccount: strAt(objAt(pod, 'spec'), 'serviceAccountName') ?? 'default',
          podName: pod.metadata.name,
          podUid: uid,
          expirationSeconds: sa.expirationSeconds,
          ...(sa.audience ? { audience: sa.audience } : {}),
        });
        await writeFile(join(dir, 'token'), token, { mode: 0o600 });
        await writeFile(join(dir, 'ca.crt'), o.caPem);
        await writeFile(join(dir, 'namespace'), namespace);
        env.ALB_ROLLOUT_IN_CLUSTER_ROOT = root;
      }
      // Logs outlive the pod (its directory, with the token, goes when the pod does).
      await mkdir(join(o.rootDir, 'logs'), { recursive: true });
      const logPath = join(o.rootDir, 'logs', `${namespaceOf(pod)}_${pod.metadata.name}_${cname}.log`);
      return { file: process.execPath, args: [o.cliPath, ...args], env, cwd: work, logPath };
    },
    async cleanup(uid) {
      await rm(podRoot(uid), { recursive: true, force: true });
    },
  };
}

/** This checkout's bundled CLI: dist/cli.js beside the running bundle, or above src/ when run from source. */
export function findCli(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (basename(here) === 'dist' && existsSync(join(here, 'cli.js'))) return join(here, 'cli.js');
  let dir = here;
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'dist', 'cli.js');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return join(here, 'cli.js');
}
