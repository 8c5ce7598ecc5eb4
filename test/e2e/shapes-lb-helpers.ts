import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '../helpers/wait.js';
import { labArgs, traffic, type E2eLab } from './helpers.js';

/**
 * What the load-balancer shape tests through `deploy` share (shapes-group, shapes-nlb, shapes-tgb): manifests of a
 * small app, and the update under traffic with its assertions (zero non-2xx, the new version answers, the guard passed,
 * old targets drained).
 */

export interface Report {
  result: string;
  revision: string;
  previousRevision: string;
  timeline: Array<{ kind: string; message: string }>;
  targetGroupArns: string[];
  guard?: { decision: { verdict: string } };
}

const IMAGE = 'public.ecr.aws/l6m2t8p7/docker-2048';

export function namespace(ns: string): string {
  return `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n  labels:\n    elbv2.k8s.aws/pod-readiness-gate-inject: enabled\n`;
}

export function deployment(ns: string, app: string, tag: string): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app}
  namespace: ${ns}
spec:
  replicas: 2
  selector:
    matchLabels: { app: ${app} }
  strategy:
    type: RollingUpdate
    rollingUpdate: { maxSurge: 1, maxUnavailable: 0 }
  template:
    metadata:
      labels: { app: ${app} }
    spec:
      terminationGracePeriodSeconds: 70
      containers:
        - name: web
          image: ${IMAGE}:${tag}
          ports: [{ containerPort: 80 }]
          readinessProbe: { httpGet: { path: /, port: 80 }, periodSeconds: 2 }
          lifecycle:
            preStop:
              exec: { command: ["/bin/sh", "-c", "sleep 40"] }
`;
}

export function service(ns: string, app: string, annotations: Record<string, string> = {}, type = 'ClusterIP'): string {
  const ann = Object.entries(annotations).map(([k, v]) => `    ${k}: "${v}"\n`).join('');
  return `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${app}\n  namespace: ${ns}\n${ann ? `  annotations:\n${ann}` : ''}spec:\n  type: ${type}\n  selector: { app: ${app} }\n  ports:\n    - { port: 80, targetPort: 80, protocol: TCP }\n`;
}

export function ingress(ns: string, app: string, path: string, group: string, order: number): string {
  return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${app}
  namespace: ${ns}
  annotations:
    alb.ingress.kubernetes.io/scheme: internet-facing
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/healthcheck-path: /
    alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=30
    alb.ingress.kubernetes.io/group.name: ${group}
    alb.ingress.kubernetes.io/group.order: "${order}"
spec:
  ingressClassName: alb
  rules:
    - http:
        paths:
          - path: ${path}
            pathType: Prefix
            backend: { service: { name: ${app}, port: { number: 80 } } }
`;
}

export async function writeSet(l: E2eLab, name: string, files: Record<string, string>): Promise<string> {
  const dir = join(l.dir, name);
  await mkdir(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text);
  return dir;
}

/** The update under traffic: every URL gets a steady loop; zero non-2xx on each, and the new version answers. */
export async function updateUnderTraffic(l: E2eLab, urls: string[], dir: string, reportFile: string, extra: string[] = []): Promise<Report> {
  const loads = urls.map((u) => traffic(u, 25));
  await waitFor(() => loads.every((x) => x.records.length >= 25) || undefined, { timeoutMs: 15_000, what: 'traffic to start' });
  const update = await l.cli(['deploy', '-f', dir, '--report', reportFile, ...extra, ...labArgs(l, '3s')], { timeoutMs: 240_000 });
  assert.equal(update.code, 0, `update failed:\n${update.stdout}\n${update.stderr}`);
  await waitFor(() => loads.every((x) => x.records.length >= 150) || undefined, { timeoutMs: 30_000, what: '150 requests per URL' });
  for (const [i, load] of loads.entries()) {
    const summary = await load.stop();
    assert.equal(summary.non2xx, 0, `${urls[i]}: non-2xx responses during the update: ${JSON.stringify(summary.responses)}`);
    assert.ok(Object.keys(summary.versions).some((v) => v.endsWith(':v2')), `${urls[i]}: the new version answered (${JSON.stringify(summary.versions)})`);
  }
  const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
  assert.equal(report.result, 'succeeded');
  assert.equal(report.guard?.decision.verdict, 'pass', 'the guard watched the rollout and the bake');
  assert.ok(report.timeline.some((e) => e.kind === 'target-state' && /draining/.test(e.message)), 'old targets were seen draining');
  return report;
}
