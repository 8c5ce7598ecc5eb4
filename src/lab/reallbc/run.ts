/**
 * Runs the real AWS Load Balancer Controller out of cluster against a lab: its kubeconfig, the lab's EC2 and
 * ELBv2 endpoints, leader election and the WAF/WAFv2/Shield add-ons off, Gateway API and Global Accelerator
 * controllers off (the lab serves no such CRDs), metrics and health probes on loopback, and a webhook serving
 * certificate signed by the lab CA. Its CRDs and IngressClass are applied before it starts (installRealLbcObjects),
 * its webhook configurations once its webhook answers (otherwise the API server would reject objects while it starts).
 *
 * The controller's webhook server listens on every interface (no flag sets its host), so it runs in a network
 * namespace of its own whose only interface is its loopback, bridged to the lab over Unix sockets (netns.ts).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { KubeObject } from '../../manifests/types.js';
import { spawnLogged } from '../child.js';
import { readLbcManifests } from './manifests.js';
import { bridgeEntry, checkNetns, controllerPidFile, hostForwards, unshareCommand, type NetnsBridgeSpec } from './netns.js';

export { NetnsUnavailableError, checkNetns } from './netns.js';

export interface RealLbcOptions {
  binary: string;
  /** The controller's module directory in the Go module cache (CRDs, webhook manifests). */
  moduleDir: string;
  kubeconfigPath: string;
  /** The API server the kubeconfig names (`https://127.0.0.1:<port>`): bridged into the controller's namespace. */
  apiServerUrl: string;
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
  /** Creates one object in the cluster: the webhook configurations (installRealLbcObjects made the CRDs). */
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

/**
 * The controller's CRDs and its IngressClass `alb`: before the lab's caches watch TargetGroupBindings and before
 * the controller starts (its webhook configurations come once it serves, see startRealLbc).
 */
export async function installRealLbcObjects(moduleDir: string, apply: (object: KubeObject) => Promise<void>): Promise<void> {
  const manifests = await readLbcManifests(moduleDir, { baseUrl: 'https://127.0.0.1:1', caPem: '' });
  for (const crd of manifests.crds) await apply(crd);
  for (const x of manifests.ingressClass) await apply(x);
}

/** Inside the controller's own network namespace every port is free: fixed ones keep its log readable. */
export const NAMESPACE_PORTS: LbcPorts = { webhook: 9443, metrics: 8080, health: 61779 };

function loopbackPort(url: string, what: string): number {
  const u = new URL(url);
  if (!/^127\.\d+\.\d+\.\d+$/.test(u.hostname) || u.port === '') throw new Error(`startRealLbc: ${what} ${url} is not 127.x.y.z:port (a lab bug)`);
  return Number(u.port);
}

export async function startRealLbc(o: RealLbcOptions): Promise<RealLbc> {
  checkNetns();
  const [hostWebhook] = await freePorts(1);
  const webhookUrl = `https://127.0.0.1:${hostWebhook as number}`;
  const manifests = await readLbcManifests(o.moduleDir, { baseUrl: webhookUrl, caPem: o.caPem });

  const certDir = join(o.dir, 'webhook-certs');
  await mkdir(certDir, { recursive: true });
  await writeFile(join(certDir, 'tls.crt'), o.serverCert.certPem);
  await writeFile(join(certDir, 'tls.key'), o.serverCert.keyPem, { mode: 0o600 });
  const logPath = join(o.dir, 'aws-load-balancer-controller.log');

  // Short: Unix socket paths have at most 107 bytes.
  const sockDir = await mkdtemp(join(tmpdir(), 'alb-lbc-'));
  const outbound = [...new Set([loopbackPort(o.apiServerUrl, 'the API server'), loopbackPort(o.ec2Url, 'the EC2 API'), loopbackPort(o.elbv2Url, 'the ELBv2 API')])];
  const spec: NetnsBridgeSpec = { dir: sockDir, outbound, inbound: [NAMESPACE_PORTS.webhook], command: o.binary, args: lbcArgs(o, certDir, NAMESPACE_PORTS) };
  let closeForwards: () => Promise<void> = async () => undefined;
  try {
    closeForwards = await hostForwards(spec, [{ hostPort: hostWebhook as number, port: NAMESPACE_PORTS.webhook }]);
  } catch (err) {
    await rm(sockDir, { recursive: true, force: true });
    throw err;
  }
  const entry = bridgeEntry();
  const cmd = unshareCommand(process.execPath, entry.nodeArgs, entry.script, spec);
  // stdin stays open while the lab runs: the bridge stops the controller when it closes.
  const { child, exited, stop: stopChild } = spawnLogged(cmd.command, cmd.args, { ...process.env, ...o.awsEnv }, logPath, {
    stdinPipe: true,
    // The controller runs under the bridge: if the bridge did not stop it, kill it by the pid the bridge wrote.
    onForceKill: () =>
      void readFile(controllerPidFile(sockDir), 'utf8')
        .then((pid) => process.kill(Number(pid.trim()), 'SIGKILL'))
        .catch(() => undefined),
  });
  const stop = async (): Promise<void> => {
    await stopChild();
    await closeForwards();
    await rm(sockDir, { recursive: true, force: true });
  };
  try {
    const timeoutMs = o.readyTimeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    while (!(await webhookServes(hostWebhook as number, o.caPem))) {
      if (exited() !== undefined) throw new Error(`the AWS Load Balancer Controller exited with code ${String(exited())} before serving its webhook; its log: ${logPath}`);
      if (Date.now() > deadline) throw new Error(`the AWS Load Balancer Controller did not serve its webhook (${webhookUrl}, bridged to port ${NAMESPACE_PORTS.webhook} in its network namespace) within ${timeoutMs / 1000}s; its log: ${logPath}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const w of manifests.webhooks) await o.apply(w);
  } catch (err) {
    await stop();
    throw err;
  }
  o.log(`aws-load-balancer-controller: pid ${child.pid ?? 0} (its own network namespace), webhook ${webhookUrl}, log ${logPath}`);
  return { pid: child.pid ?? 0, webhookUrl, logPath, stop };
}

/** A TLS handshake through the bridge with the lab CA: the controller's webhook server answers (the bridge's listener alone does not). */
function webhookServes(port: number, caPem: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca: caPem, timeout: 5000 });
    s.once('secureConnect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
    s.once('close', () => resolve(false));
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
