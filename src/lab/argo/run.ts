/**
 * Runs the real Argo Rollouts controller (built by `lab build --argo-rollouts`, see ../gobuild.ts) out of cluster
 * against the lab's real control plane: the lab's kubeconfig, leader election off, its metrics and healthz servers
 * on loopback (the build patches upstream's constant 0.0.0.0 listen address), ALB traffic routing for the `alb`
 * IngressClass, and no AWS calls (`--aws-verify-target-group` stays off: the controller only writes the Ingress
 * annotation and the LBC, emulated or real, turns it into weighted forwarding). Its CRDs come from the same
 * release's `manifests/crds/` in the Go module cache and are applied (and Established) before it starts.
 */
import { readFile, readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../../manifests/types.js';
import { spawnLogged } from '../child.js';
import { freePorts } from '../reallbc/run.js';

export interface ArgoRolloutsOptions {
  binary: string;
  /** github.com/argoproj/argo-rollouts@<version> in the Go module cache. */
  moduleDir: string;
  kubeconfigPath: string;
  /** The controller's log goes here. */
  dir: string;
  /** Creates one object in the cluster (CRDs: waits until Established). */
  apply(object: KubeObject): Promise<void>;
  log: (line: string) => void;
  /** How long to wait for /healthz (default 60 s). */
  readyTimeoutMs?: number;
}

export interface ArgoRollouts {
  pid: number;
  logPath: string;
  metricsUrl: string;
  stop(): Promise<void>;
}

/** The release's CRDs (Rollout, AnalysisRun, AnalysisTemplate, ClusterAnalysisTemplate, Experiment), as shipped. */
export async function readArgoCrds(moduleDir: string): Promise<KubeObject[]> {
  const dir = join(moduleDir, 'manifests', 'crds');
  const files = (await readdir(dir)).filter((f) => f.endsWith('-crd.yaml')).sort();
  const out: KubeObject[] = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(await readFile(join(dir, f), 'utf8'))) {
      const o = doc.toJS() as KubeObject | null;
      if (o?.kind === 'CustomResourceDefinition') out.push(o);
    }
  }
  if (out.length === 0) throw new Error(`no CustomResourceDefinition in ${dir}`);
  return out;
}

export function argoArgs(kubeconfigPath: string, ports: { metrics: number; healthz: number }): string[] {
  return [
    `--kubeconfig=${kubeconfigPath}`,
    '--leader-elect=false',
    `--metricsPort=${ports.metrics}`,
    `--healthzPort=${ports.healthz}`,
    '--alb-ingress-classes=alb',
    '--loglevel=info',
    '--logformat=text',
  ];
}

export async function startArgoRollouts(o: ArgoRolloutsOptions): Promise<ArgoRollouts> {
  for (const crd of await readArgoCrds(o.moduleDir)) await o.apply(crd);
  const [metrics, healthz] = (await freePorts(2)) as [number, number];
  const logPath = join(o.dir, 'argo-rollouts.log');
  // POD_NAMESPACE: where it looks for its notification ConfigMap (none: notifications stay off).
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', POD_NAMESPACE: 'argo-rollouts' };
  const { child, exited, stop } = spawnLogged(o.binary, argoArgs(o.kubeconfigPath, { metrics, healthz }), env, logPath);
  try {
    const timeout = o.readyTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeout;
    while (!(await healthy(healthz))) {
      if (exited() !== undefined) throw new Error(`the Argo Rollouts controller exited with code ${String(exited())} before it was healthy; its log: ${logPath}`);
      if (Date.now() > deadline) throw new Error(`the Argo Rollouts controller did not answer /healthz on 127.0.0.1:${healthz} within ${timeout / 1000}s; its log: ${logPath}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  o.log(`argo-rollouts: pid ${child.pid ?? 0}, metrics http://127.0.0.1:${metrics}/metrics, log ${logPath}`);
  return { pid: child.pid ?? 0, logPath, metricsUrl: `http://127.0.0.1:${metrics}/metrics`, stop };
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
