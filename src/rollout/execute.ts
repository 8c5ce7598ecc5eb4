import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Elbv2Reader } from '../aws/elbv2.js';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import type { DeployRunOptions, Options } from '../options.js';
import type { Preflight } from '../plan/index.js';
import { renderDeployJson } from '../report/deploy.js';
import type { Logger } from '../report/log.js';
import { runDeploy, type DeployResult } from './deploy.js';

/**
 * Builds the clients from the parsed options and runs a deploy: the one path shared by the CLI and the Action.
 * `env` is the process environment as the edge sees it (KUBECONFIG, in-cluster variables).
 */
export async function executeDeploy(
  pre: Preflight,
  options: Options,
  run: DeployRunOptions,
  env: Record<string, string | undefined>,
  log: Logger,
  cwd: string,
): Promise<DeployResult> {
  const kube = new KubeClient(
    loadKubeConfig({ ...(run.kubeconfigPath ? { kubeconfigPath: resolve(cwd, run.kubeconfigPath) } : {}), ...(run.context ? { context: run.context } : {}) }, env),
  );
  const elbv2 = new Elbv2Reader({ ...(run.region ? { region: run.region } : {}) });
  try {
    const result = await runDeploy(
      pre,
      {
        dryRun: run.dryRun,
        forceConflicts: run.forceConflicts,
        readinessGates: options.readinessGates,
        timeouts: { routingSeconds: run.routingTimeoutSeconds, rolloutSeconds: run.rolloutTimeoutSeconds },
        timeScale: run.timeScale,
      },
      { kube, elbv2, log, now: Date.now },
    );
    if (run.reportPath) await writeFile(resolve(cwd, run.reportPath), renderDeployJson(result));
    return result;
  } finally {
    elbv2.destroy();
  }
}
