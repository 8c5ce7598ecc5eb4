import { resolve } from 'node:path';
import { awsClock, type AwsClock } from '../aws/clock.js';
import { CloudWatchReader } from '../aws/cloudwatch.js';
import { Elbv2Reader, type AwsConnection } from '../aws/elbv2.js';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import type { ConnectionOptions } from '../options.js';
import { readLabTarget } from './lab-target.js';

/**
 * The clients for one run, built once from the parsed connection options (CLI flags or Action inputs) and the
 * environment the edge sees. Against the lab (`--lab DIR`) the endpoints, credentials and clock come from lab.json.
 */
export interface Connections {
  kube: KubeClient;
  elbv2: Elbv2Reader;
  cloudwatch: CloudWatchReader;
  clock: AwsClock;
  /** Maps an ALB hostname to the URL to probe (the lab's loopback data plane); undefined against AWS. */
  probeUrlFor?: (hostname: string, listener?: { protocol: string; port: number }) => Promise<string | undefined>;
  close(): void;
}

export async function connect(conn: ConnectionOptions, env: Record<string, string | undefined>, cwd: string): Promise<Connections> {
  // ALB_ROLLOUT_LAB=DIR: running inside the lab (its kubelet sets it for the analysis pods it runs): the lab's AWS
  // endpoints, clock and ALB addresses as with --lab, but the Kubernetes connection as anywhere (in-cluster in a pod).
  const insideLab = conn.labDir ? undefined : env.ALB_ROLLOUT_LAB || undefined;
  const labDir = conn.labDir ?? insideLab;
  const lab = labDir ? await readLabTarget(labDir, cwd) : undefined;
  const clock = awsClock(conn.timeScale ?? lab?.timeScale ?? 1, conn.timeOrigin ?? lab?.timeOrigin ?? 0);
  const kubeconfigPath = conn.kubeconfigPath ? resolve(cwd, conn.kubeconfigPath) : insideLab ? undefined : lab?.kubeconfigPath;
  const kube = new KubeClient(loadKubeConfig({ ...(kubeconfigPath ? { kubeconfigPath } : {}), ...(conn.context ? { context: conn.context } : {}) }, env));
  const region = conn.region ?? lab?.region;
  const base: AwsConnection = {
    ...(region ? { region } : {}),
    ...(lab ? { credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' } } : {}),
  };
  const elbv2 = new Elbv2Reader({ ...base, ...(lab ? { endpoint: lab.elbv2Endpoint } : {}) });
  const cloudwatch = new CloudWatchReader({ ...base, ...(lab ? { endpoint: lab.cloudwatchEndpoint } : {}) }, { now: () => clock.now() });
  return {
    kube,
    elbv2,
    cloudwatch,
    clock,
    ...(lab ? { probeUrlFor: (h: string, listener?: { protocol: string; port: number }) => lab.probeUrlFor(h, listener) } : {}),
    close: () => {
      elbv2.destroy();
      cloudwatch.destroy();
    },
  };
}
