/** A generated manifest tree: 50 namespaces and 1,250 apps of 4 objects each (5,050 objects in 26 files). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const APPS = 1250;

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


export const GENERATED_OBJECTS = APPS * 4 + 50;

/** `apps` apps (4 objects each) in 25 files plus 50 namespaces: 1,250 apps = 5,050 objects, 12,500 = 50,050. */
export async function generateManifestTree(dir: string, apps = APPS): Promise<number> {
  const namespaces = Array.from({ length: 50 }, (_, i) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-${i}\n  labels: {elbv2.k8s.aws/pod-readiness-gate-inject: enabled}\n`);
  await writeFile(join(dir, '00-namespaces.yaml'), namespaces.join('---\n'));
  for (let f = 0; f < 25; f++) {
    const docs: string[] = [];
    for (let i = f * (apps / 25); i < (f + 1) * (apps / 25); i++) docs.push(app(i));
    await writeFile(join(dir, `apps-${String(f).padStart(2, '0')}.yaml`), docs.join('---\n'));
  }
  return apps * 4 + 50;
}
