/**
 * Runs the real AWS Load Balancer Controller out of cluster against a lab: its kubeconfig, the lab's EC2 and
 * ELBv2 endpoints, leader election and the WAF/WAFv2/Shield add-ons off, Gateway API and Global Accelerator
 * controllers off (the lab serves no such CRDs), metrics and health probes on loopback, and a webhook serving
 * certificate signed by the lab CA. Its CRDs and IngressClass are applied before it starts, its webhook
 * configurations once its webhook port answers (otherwise the API server would reject objects while it starts).
 *
 * Known limit: the controller's webhook server listens on every interface (its `pkg/config/runtime_config.go`
 * sets only a port on controller-runtime's webhook options; no flag sets the host), unlike every server of the
 * lab. See docs/real-lbc.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import type { KubeObject } from '../../manifests/types.js';
import { spawnLogged } from '../child.js';
import { readLbcManifests } from './manifests.js';

export interface RealLbcOptions {
  binary: string;
  /** The controller's module directory in the Go module cache (CRDs, webhook manifests). */
  moduleDir: string;
  kubeconfigPath: string;
  /** Certificates and the controller's log go here. */
  dir: string;
  clusterName: string;
  region: string;
  vpcId: string;
  ec2Url: string;
  elbv2Url: string;
  /** AWS SDK environment: dummy credentials, IMDS off. */
  awsEnv: Record<string, string>;
  /** PEM of the CA the API server trusts for the webhook (caBundle). */
  caPem: string;
  /** Serving certificate for 127.0.0.1, signed by that CA. */
  serverCert: { certPem: string; keyPem: string };
  /** Creates one object in the cluster (CRDs wait until Established). */
  apply(object: KubeObject): Promise<void>;
  log: (line: string) => void;
  /** How long to wait for the webhook port (default 60 s). */
  readyTimeoutMs?: number;
  /**
   * The lab's time scale: the controller's 15 s requeue (registering pods whose containers became ready,
   * re-reading target health for gates) is real time, so it is divided by this to stay 15 simulated seconds.
   */
  timeScale?: number;
}

export interface RealLbc {
  pid: number;
  webhookUrl: string;
  logPath: string;
  stop(): Promise<void>;
}

export interface LbcPorts {
  webhook: number;
  metrics: number;
  health: number;
}

/** The controller's default `--targetgroupbinding-requeue-duration`. */
const REQUEUE_SECONDS = 15;

export function lbcArgs(o: Pick<RealLbcOptions, 'kubeconfigPath' | 'clusterName' | 'region' | 'vpcId' | 'ec2Url' | 'elbv2Url' | 'timeScale'>, certDir: string, ports: LbcPorts): string[] {
  const requeueMs = Math.max(50, Math.round((REQUEUE_SECONDS * 1000) / (o.timeScale ?? 1)));
  return [
    `--kubeconfig=${o.kubeconfigPath}`,
    `--cluster-name=${o.clusterName}`,
    `--aws-region=${o.region}`,
    `--aws-vpc-id=${o.vpcId}`,
    '--enable-leader-election=false',
    '--enable-waf=false',
    '--enable-wafv2=false',
    '--enable-shield=false',
    // service IDs as the AWS SDK for Go names them
    `--aws-api-endpoints=EC2=${o.ec2Url},Elastic Load Balancing v2=${o.elbv2Url}`,
    `--webhook-cert-dir=${certDir}`,
    '--webhook-cert-file=tls.crt',
    '--webhook-key-file=tls.key',
    `--webhook-bind-port=${ports.webhook}`,
    `--metrics-bind-addr=127.0.0.1:${ports.metrics}`,
    `--health-probe-bind-addr=127.0.0.1:${ports.health}`,
    '--feature-gates=ALBGatewayAPI=false,NLBGatewayAPI=false,GlobalAcceleratorController=false',
    `--targetgroupbinding-requeue-duration=${requeueMs}ms`,
  ];
}

export async function startRealLbc(o: RealLbcOptions): Promise<RealLbc> {
  const manifestsTarget = (port: number) => ({ baseUrl: `https://127.0.0.1:${port}`, caPem: o.caPem });
  const [webhook, metrics, health] = await freePorts(3);
  const ports: LbcPorts = { webhook: webhook as number, metrics: metrics as number, health: health as number };
  const manifests = await readLbcManifests(o.moduleDir, manifestsTarget(ports.webhook));
  for (const crd of manifests.crds) await o.apply(crd);
  for (const x of manifests.ingressClass) await o.apply(x);

  const certDir = join(o.dir, 'webhook-certs');
  await mkdir(certDir, { recursive: true });
  await writeFile(join(certDir, 'tls.crt'), o.serverCert.certPem);
  await writeFile(join(certDir, 'tls.key'), o.serverCert.keyPem, { mode: 0o600 });
  const logPath = join(o.dir, 'aws-load-balancer-controller.log');
  const { child, exited, stop } = spawnLogged(o.binary, lbcArgs(o, certDir, ports), { ...process.env, ...o.awsEnv }, logPath);
  try {
    const deadline = Date.now() + (o.readyTimeoutMs ?? 60_000);
    while (!(await portOpen(ports.webhook))) {
      if (exited() !== undefined) throw new Error(`the AWS Load Balancer Controller exited with code ${String(exited())} before serving its webhook; its log: ${logPath}`);
      if (Date.now() > deadline) throw new Error(`the AWS Load Balancer Controller did not serve its webhook on port ${ports.webhook} within ${(o.readyTimeoutMs ?? 60_000) / 1000}s; its log: ${logPath}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const w of manifests.webhooks) await o.apply(w);
  } catch (err) {
    await stop();
    throw err;
  }
  o.log(`aws-load-balancer-controller: pid ${child.pid ?? 0}, webhook https://127.0.0.1:${ports.webhook}, log ${logPath}`);
  return { pid: child.pid ?? 0, webhookUrl: `https://127.0.0.1:${ports.webhook}`, logPath, stop };
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
