import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsonObject, KubeObject } from '../../src/manifests/types.js';
import { labBehavior } from '../../src/lab/variants.js';
import { variant, type E2eLab } from './helpers.js';

/** What the guard e2e suites (guard-measured, guard-scope) share: releases of the 2048 example per namespace, the report, the pods. */

export interface Report {
  result: string;
  exitCode: number;
  error?: string;
  unverified?: string;
  applied: string[];
  guard?: {
    decision: { verdict: string; reason: string; decidingKind?: string };
    skipped: string[];
    cloudwatchMetrics?: string;
    baselines?: string[];
    signals?: Array<{ signal: string; windows: number; requests: number; errors: number; failingWindows: number }>;
  };
  rollbacks?: Array<{ outcome: string; name: string; fromRevision?: number; toRevision?: number }>;
  timeline: Array<{ kind: string; message: string }>;
}

/** A per-request timeout a starved machine does not reach (the lab's answers take seconds when the CPUs are overloaded): a timeout must mean the release. */
export const GUARD = ['--probe-rate', '20', '--probe-timeout', '5s', '--cloudwatch-settle', '0', '--target-health-interval', '500ms'];
export const IMAGE = 'public.ecr.aws/l6m2t8p7/docker-2048';

/** The 2048 example in namespace `ns`, images tagged `tag`, with a LAB_BEHAVIOR and an optional extra file. */
export async function release(l: E2eLab, ns: string, tag: string, behavior?: string, extra?: Record<string, string>): Promise<string> {
  const edit = labBehavior(behavior);
  const dir = await variant('2048/safe', l.dir, `${ns}-${tag}`, (f, t) => edit(f, t).replaceAll('game-2048', ns));
  for (const [file, text] of Object.entries(extra ?? {})) {
    await writeFile(join(dir, file), text);
  }
  return dir;
}

/**
 * The 2048 example's edit for namespace `ns`: its Ingress rule gets `host` and extra `annotations` (YAML lines,
 * indented four spaces), its container a LAB_BEHAVIOR.
 */
export function hostedEdit(ns: string, host: string, annotations = '', behavior?: string): (file: string, text: string) => string {
  const edit = labBehavior(behavior);
  return (f, t) => {
    let out = edit(f, t).replaceAll('game-2048', ns);
    if (f.startsWith('3-')) {
      out = out.replace('    - http:\n', `    - host: ${host}\n      http:\n`);
      if (annotations) out = out.replace('  annotations:\n', `  annotations:\n${annotations}`);
    }
    return out;
  };
}

/** A second Deployment of the set (no Service): a worker whose own image tag is given. */
export function worker(ns: string, tag: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: ${ns}
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: worker
  template:
    metadata:
      labels:
        app.kubernetes.io/name: worker
    spec:
      terminationGracePeriodSeconds: 70
      containers:
        - name: worker
          image: example.com/worker:${tag}
          ports:
            - containerPort: 80
          readinessProbe:
            httpGet:
              path: /healthz
              port: 80
            periodSeconds: 2
          lifecycle:
            preStop:
              exec:
                command: ["/bin/sh", "-c", "sleep 40"]
`;
}

export async function report(file: string): Promise<Report> {
  return JSON.parse(await readFile(file, 'utf8')) as Report;
}

export function images(l: E2eLab, ns: string, app = 'app-2048'): string[] {
  return [
    ...new Set(
      l.lab.store
        .list('Pod', ns)
        .items.filter((p) => !p.metadata.deletionTimestamp && p.metadata.labels?.['app.kubernetes.io/name'] === app)
        .map((p) => String((((p.spec as JsonObject).containers as JsonObject[])[0] as JsonObject).image)),
    ),
  ];
}

export function deployment(l: E2eLab, ns: string, name = 'deployment-2048'): KubeObject {
  const d = l.lab.store.get('Deployment', ns, name);
  assert.ok(d, `Deployment ${ns}/${name}`);
  return d;
}

export function albOf(l: E2eLab, ns: string): string {
  const alb = l.lab.albs().find((a) => a.ingress === `${ns}/ingress-2048`);
  assert.ok(alb, `the ALB of ${ns}: ${JSON.stringify(l.lab.albs())}`);
  return alb.url;
}

