/** The real-tier Argo Rollouts setup shared by the Argo e2e files: what they need built, or why they skip. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { requireBinary } from '../../src/lab/controlplane/build.js';
import { ARGO_ROLLOUTS_COMPONENT, requireComponent, requiredModuleDir } from '../../src/lab/gobuild.js';
import { root, testTiers } from './helpers.js';

export const NS = 'shop';

export async function argoSetup(): Promise<{ skip: string } | { binary: string; argo: { binary: string; moduleDir: string } }> {
  if (!testTiers().includes('real')) return { skip: 'needs the real control plane tier (ALB_ROLLOUT_TEST_TIER=real or both): the embedded one runs no Argo Rollouts controller and no Job controller (the Rollout checks are unit-tested in test/plan/argo-rollout.test.ts)' };
  if (!existsSync(join(root, 'dist', 'cli.js'))) return { skip: 'dist/cli.js is missing: run `npm run bundle` (the analysis pod runs the bundled CLI)' };
  try {
    const binary = (await requireBinary(root, process.env)).path;
    const argoBinary = (await requireComponent(ARGO_ROLLOUTS_COMPONENT, root, process.env)).path;
    return { binary, argo: { binary: argoBinary, moduleDir: await requiredModuleDir(ARGO_ROLLOUTS_COMPONENT, root, process.env) } };
  } catch (err) {
    return { skip: `${(err as Error).message} — build it with \`npx alb-rollout lab build --control-plane real --argo-rollouts\`` };
  }
}

/** The Job metric that runs `alb-rollout analyze --rollout` (the image: the analysis image, any registry or tag). */
export function jobMetric(image: string, windowAndFlags: string): string {
  return `  metrics:
    - name: alb-5xx
      count: 1
      failureLimit: 0
      provider:
        job:
          spec:
            backoffLimit: 0
            template:
              spec:
                restartPolicy: Never
                serviceAccountName: alb-rollout-analysis
                containers:
                  - name: analyze
                    image: ${image}
                    args: [analyze, --namespace, "{{args.namespace}}", --rollout, "{{args.rollout}}", --window, ${windowAndFlags}]
`;
}

/** The namespace's Services (stable, canary, the Ingress's root), the ALB Ingress Argo writes its action into, the analysis RBAC and template. */
export function manifests(): string {
  const svc = (name: string): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${NS}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
`;
  return [
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n`,
    svc('web-stable'),
    svc('web-canary'),
    svc('web-root'),
    `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: ${NS}
  annotations:
    alb.ingress.kubernetes.io/scheme: internet-facing
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/healthcheck-path: /healthz
spec:
  ingressClassName: alb
  rules:
    - http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: web-root, port: {name: use-annotation}}}
`,
    // What examples/argo-rollouts/rbac.yaml grants, in this namespace.
    `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: alb-rollout-analysis, namespace: ${NS}}\n`,
    `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: alb-rollout-analysis, namespace: ${NS}}
rules:
  - {apiGroups: [argoproj.io], resources: [rollouts], verbs: [get]}
  - {apiGroups: [networking.k8s.io], resources: [ingresses], verbs: [get, list, watch]}
  - {apiGroups: [""], resources: [services], verbs: [get, list]}
  - {apiGroups: [""], resources: [pods, events], verbs: [get, list, watch]}
  - {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [get, list, watch]}
  - {apiGroups: [elbv2.k8s.aws], resources: [targetgroupbindings], verbs: [get, list, watch]}
`,
    `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alb-rollout-analysis, namespace: ${NS}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: alb-rollout-analysis}
subjects: [{kind: ServiceAccount, name: alb-rollout-analysis, namespace: ${NS}}]
`,
    `apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: alb-rollout-5xx, namespace: ${NS}}
spec:
  args: [{name: namespace}, {name: rollout}]
${jobMetric('ghcr.io/example/alb-rollout:0.1.0', '15s, --probe-rate, "20", --max-error-rate, "5%"')}`,
  ].join('---\n');
}


/** The canary Rollout `web` (2 replicas, ALB traffic routing on Ingress web through web-root) with these steps. */
export function rolloutYaml(image: string, steps: string, behavior = 'healthy', managedRoutes: string[] = []): string {
  return `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: ${NS}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: ${image}
          env: [{name: LAB_BEHAVIOR, value: ${behavior}}]
          ports: [{containerPort: 8080}]
          readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        alb: {ingress: web, rootService: web-root, servicePort: 80}
${managedRoutes.length > 0 ? `        managedRoutes: [${managedRoutes.map((n) => `{name: ${n}}`).join(', ')}]\n` : ''}      steps:
${steps}`;
}

/** Canary steps: setWeight 20 → the alb-rollout analysis (AnalysisTemplate alb-rollout-5xx) → setWeight 100. */
export const ANALYSIS_STEPS = `        - setWeight: 20
        - analysis:
            templates: [{templateName: alb-rollout-5xx}]
            args:
              - {name: namespace, value: ${NS}}
              - {name: rollout, value: web}
        - setWeight: 100
`;
