/** Plan + lint + tune throughput on a generated set of 5,000 objects (1,250 apps), and peak memory. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preflight } from '../../src/plan/index.js';
import { parseOptions } from '../../src/options.js';
import { RULES } from '../../src/lint/index.js';
import { peakRssMb, report } from '../types.js';

const APPS = 1250;

function app(i: number): string {
  const ns = `team-${i % 50}`;
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: app-${i}, namespace: ${ns}}
spec:
  replicas: ${1 + (i % 7)}
  selector: {matchLabels: {app: app-${i}}}
  template:
    metadata: {labels: {app: app-${i}}}
    spec:
      terminationGracePeriodSeconds: ${i % 3 === 0 ? 30 : 70}
      containers:
        - name: web
          image: registry.example/app-${i}:v1
          ports: [{containerPort: 8080}]
          readinessProbe: {httpGet: {path: /healthz, port: 8080}}
          ${i % 4 === 0 ? '' : 'lifecycle: {preStop: {exec: {command: ["/bin/sh", "-c", "sleep 40"]}}}'}
---
apiVersion: v1
kind: Service
metadata: {name: app-${i}, namespace: ${ns}}
spec:
  selector: {app: app-${i}}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app-${i}
  namespace: ${ns}
  annotations:
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/healthcheck-path: /healthz
    ${i % 2 === 0 ? 'alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=30,stickiness.enabled=false' : ''}
spec:
  ingressClassName: alb
  rules:
    - http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: app-${i}, port: {number: 80}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app-${i}-config, namespace: ${ns}}
data: {LOG_LEVEL: info}
`;
}

const dir = await mkdtemp(join(tmpdir(), 'alb-rollout-bench-'));
try {
  const namespaces = Array.from({ length: 50 }, (_, i) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-${i}\n  labels: {elbv2.k8s.aws/pod-readiness-gate-inject: enabled}\n`);
  await writeFile(join(dir, '00-namespaces.yaml'), namespaces.join('---\n'));
  for (let f = 0; f < 25; f++) {
    const docs: string[] = [];
    for (let i = f * (APPS / 25); i < (f + 1) * (APPS / 25); i++) docs.push(app(i));
    await writeFile(join(dir, `apps-${String(f).padStart(2, '0')}.yaml`), docs.join('---\n'));
  }
  const objects = APPS * 4 + 50;
  const options = parseOptions({ manifests: [dir], baseDir: dir, tune: 'auto' }, { tune: 'auto' }, RULES.map((r) => r.id));
  // One warm-up run, then the measured runs.
  await preflight(options, {});
  const runs = 3;
  const started = process.hrtime.bigint();
  let findings = 0;
  for (let r = 0; r < runs; r++) findings = (await preflight(options, {})).lint.findings.length;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9 / runs;
  report([
    { name: 'plan+lint+tune throughput (5,050 objects)', value: Math.round(objects / seconds), unit: 'objects/s', target: '>= 5000' },
    { name: 'plan+lint+tune wall time (5,050 objects)', value: Math.round(seconds * 1000), unit: 'ms', target: '<= 1010' },
    { name: 'plan+lint+tune peak memory (5,050 objects)', value: peakRssMb(), unit: 'MB', target: '< 200' },
    { name: 'plan+lint findings on the generated set', value: findings, unit: 'findings', target: 'informational' },
  ]);
} finally {
  await rm(dir, { recursive: true, force: true });
}
