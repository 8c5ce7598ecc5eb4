import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { DescribeTargetHealthCommand, ElasticLoadBalancingV2Client, type TargetHealthDescription } from '@aws-sdk/client-elastic-load-balancing-v2';
import { startLab, type Lab, type LabOptions, type LoadBalancerInfo } from '../../src/lab/index.js';

/**
 * One lab per suite for the load-balancer shapes (IngressGroups, user TargetGroupBindings, NLB Services), driven the
 * way a user drives it: the real @kubernetes/client-node (server-side apply) and kubectl against the API server,
 * the unmodified AWS SDK against the ELBv2 endpoint, and plain HTTP/TCP through the data planes.
 */

export interface ShapesLab {
  lab: Lab;
  dir: string;
  kc: k8s.KubeConfig;
  objects: k8s.KubernetesObjectApi;
  elbv2: ElasticLoadBalancingV2Client;
  apply(...objs: object[]): Promise<void>;
  kubectl(args: string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  labJson(): Promise<LabJson>;
  targetHealth(tgArn: string): Promise<TargetHealthDescription[]>;
  stop(): Promise<void>;
}

export interface LabJson {
  albs: Array<{ ingress: string; hostname: string; url: string; responses: Record<string, number> }>;
  loadBalancers: LoadBalancerInfo[];
}

export async function shapesLab(options: LabOptions = {}): Promise<ShapesLab> {
  const dir = await mkdtemp(join(tmpdir(), 'alb-shapes-'));
  const lab = await startLab({ stateDir: join(dir, 'state'), timings: { timeScale: 40 }, ...options });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(lab.kubeconfigPath!);
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const elbv2 = new ElasticLoadBalancingV2Client({
    region: lab.region,
    endpoint: lab.aws.elbv2Url,
    credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' },
    maxAttempts: 5,
  });
  return {
    lab,
    dir,
    kc,
    objects,
    elbv2,
    apply: async (...objs) => {
      for (const o of objs) await objects.patch(o as k8s.KubernetesObject, undefined, undefined, 'shapes-test', true, k8s.PatchStrategy.ServerSideApply);
    },
    kubectl: (args, timeoutMs = 60_000) =>
      new Promise((resolve) => {
        const child = spawn('kubectl', ['--kubeconfig', lab.kubeconfigPath!, ...args], { env: { PATH: process.env.PATH ?? '', HOME: dir } });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code: code ?? -1, stdout, stderr });
        });
      }),
    labJson: async () => {
      await lab.writeState();
      return JSON.parse(await readFile(join(dir, 'state', 'lab.json'), 'utf8')) as LabJson;
    },
    targetHealth: async (tgArn) => (await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn }))).TargetHealthDescriptions ?? [],
    stop: async () => {
      elbv2.destroy();
      await lab.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function namespace(name: string): object {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'elbv2.k8s.aws/pod-readiness-gate-inject': 'enabled' } } };
}

export function deployment(ns: string, name: string, opts: { replicas?: number; port?: number; env?: Record<string, string> } = {}): object {
  const port = opts.port ?? 8080;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns },
    spec: {
      replicas: opts.replicas ?? 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'app',
              image: `lab/${name}:1`,
              ports: [{ name: 'http', containerPort: port }],
              readinessProbe: { httpGet: { path: '/healthz', port }, periodSeconds: 2 },
              ...(opts.env ? { env: Object.entries(opts.env).map(([n, value]) => ({ name: n, value })) } : {}),
            },
          ],
        },
      },
    },
  };
}

export function service(ns: string, name: string, opts: { port?: number; targetPort?: number; annotations?: Record<string, string>; type?: string; loadBalancerClass?: string } = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: ns, ...(opts.annotations ? { annotations: opts.annotations } : {}) },
    spec: {
      ...(opts.type ? { type: opts.type } : {}),
      ...(opts.loadBalancerClass ? { loadBalancerClass: opts.loadBalancerClass } : {}),
      selector: { app: name },
      ports: [{ name: 'http', port: opts.port ?? 80, targetPort: opts.targetPort ?? 8080, protocol: 'TCP' }],
    },
  };
}

export function ingress(ns: string, name: string, svc: string, path: string, annotations: Record<string, string> = {}): object {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace: ns, annotations: { 'alb.ingress.kubernetes.io/target-type': 'ip', ...annotations } },
    spec: {
      ingressClassName: 'alb',
      rules: [{ http: { paths: [{ path, pathType: 'Prefix', backend: { service: { name: svc, port: { number: 80 } } } }] } }],
    },
  };
}
