import { awsClock, type AwsClock } from '../aws/clock.js';
import { CloudWatchReader } from '../aws/cloudwatch.js';
import { Elbv2Reader, type AwsConnection } from '../aws/elbv2.js';
import { InputError } from '../errors.js';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import { str, type FlagValues } from './args.js';
import type { CliIo } from './commands.js';
import { readLabTarget } from './lab-target.js';

/** Flags that say where the cluster and AWS are (deploy, analyze, rollback). */
export const CONNECTION_FLAGS = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  region: { type: 'string' },
  lab: { type: 'string' },
  'time-scale': { type: 'string' },
  'time-origin': { type: 'string' },
} as const;

export const CONNECTION_HELP = `  --kubeconfig PATH          (default: KUBECONFIG, ~/.kube/config, or in-cluster)
  --context NAME             kubeconfig context (default: the current one)
  --region REGION            AWS region (default: the SDK's chain, e.g. AWS_REGION)
  --lab DIR                  talk to \`alb-rollout lab up --state-dir DIR\` (kubeconfig, AWS endpoints, clock)`;

export interface Connections {
  kube: KubeClient;
  elbv2: Elbv2Reader;
  cloudwatch: CloudWatchReader;
  clock: AwsClock;
  /** Maps an ALB hostname to the URL to probe (the lab's loopback data plane); undefined against AWS. */
  probeUrlFor?: (hostname: string) => Promise<string | undefined>;
  close(): void;
}

/** Builds the clients once, at the edge, from flags and the environment the edge sees. */
export async function connect(values: FlagValues, io: Pick<CliIo, 'cwd' | 'env'>): Promise<Connections> {
  const labDir = str(values, 'lab');
  const lab = labDir ? await readLabTarget(labDir, io.cwd) : undefined;
  const number = (name: string): number | undefined => {
    const v = str(values, name);
    if (v === undefined || v.trim() === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw InputError.single(`--${name} "${v}" is not a number`, `leave --${name} unset for real clusters; the lab prints the value to use`);
    return n;
  };
  const scale = number('time-scale') ?? lab?.timeScale ?? 1;
  const origin = number('time-origin') ?? lab?.timeOrigin ?? 0;
  const kubeconfigPath = str(values, 'kubeconfig') ?? lab?.kubeconfigPath;
  const context = str(values, 'context');
  const kube = new KubeClient(loadKubeConfig({ ...(kubeconfigPath ? { kubeconfigPath } : {}), ...(context ? { context } : {}) }, io.env));
  const region = str(values, 'region') ?? lab?.region;
  const base: AwsConnection = {
    ...(region ? { region } : {}),
    ...(lab ? { credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' } } : {}),
  };
  const clock = awsClock(scale, origin);
  const elbv2 = new Elbv2Reader({ ...base, ...(lab ? { endpoint: lab.elbv2Endpoint } : {}) });
  const cloudwatch = new CloudWatchReader({ ...base, ...(lab ? { endpoint: lab.cloudwatchEndpoint } : {}) }, { now: () => clock.now() });
  return {
    kube,
    elbv2,
    cloudwatch,
    clock,
    ...(lab ? { probeUrlFor: (h: string) => lab.probeUrlFor(h) } : {}),
    close: () => {
      elbv2.destroy();
      cloudwatch.destroy();
    },
  };
}
