import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError } from '../errors.js';

/**
 * `--lab DIR`: point deploy/analyze/rollback at a running `alb-rollout lab up --state-dir DIR`. This reads the
 * lab's lab.json (a plain file: product code does not import the lab) and yields what a real cluster would get
 * from the kubeconfig, the AWS SDK's environment and DNS.
 */
export interface LabTarget {
  kubeconfigPath: string;
  region: string;
  elbv2Endpoint: string;
  cloudwatchEndpoint: string;
  timeScale: number;
  timeOrigin: number;
  /**
   * The loopback URL of the ALB with this hostname — of its listener with this protocol and port when given (an
   * HTTPS listener has its own TLS server) — lab.json is refreshed every 2 s; waits up to `waitMs`.
   */
  probeUrlFor(hostname: string, listener?: { protocol: string; port: number }, waitMs?: number): Promise<string | undefined>;
}

interface LabJson {
  kubeconfig?: string;
  aws?: { region?: string; elbv2?: string; cloudwatch?: string };
  timeScale?: number;
  timeOrigin?: number;
  albs?: Array<{ hostname?: string; url?: string; listeners?: Array<{ protocol?: string; port?: number; url?: string }> }>;
}

async function readLabJson(file: string): Promise<LabJson> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LabJson;
  } catch (err) {
    throw InputError.single(
      `cannot read ${file}: ${(err as Error).message}`,
      'start the lab first (`alb-rollout lab up --state-dir DIR`) and pass the same DIR to --lab',
    );
  }
}

export async function readLabTarget(dir: string, cwd: string): Promise<LabTarget> {
  const file = join(resolve(cwd, dir), 'lab.json');
  const lab = await readLabJson(file);
  if (!lab.kubeconfig || !lab.aws?.elbv2 || !lab.aws.cloudwatch) {
    throw InputError.single(`${file} lacks kubeconfig or aws endpoints`, 'restart the lab with `alb-rollout lab up` (this file is from another version)');
  }
  return {
    kubeconfigPath: lab.kubeconfig,
    region: lab.aws.region ?? 'us-east-1',
    elbv2Endpoint: lab.aws.elbv2,
    cloudwatchEndpoint: lab.aws.cloudwatch,
    timeScale: lab.timeScale ?? 1,
    timeOrigin: lab.timeOrigin ?? 0,
    probeUrlFor: async (hostname, listener, waitMs = 10_000) => {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const current = await readLabJson(file);
        const alb = current.albs?.find((a) => a.hostname === hostname);
        if (listener) {
          const l = alb?.listeners?.find((x) => x.protocol === listener.protocol && x.port === listener.port);
          if (l?.url) return l.url;
        } else if (alb?.url) return alb.url;
        if (Date.now() > deadline) return undefined;
        await new Promise((r) => setTimeout(r, 250));
      }
    },
  };
}
