import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Connections } from '../connect/index.js';
import type { GuardOptions } from '../guard/index.js';
import type { DeployRunOptions, Options } from '../options.js';
import type { Preflight } from '../plan/index.js';
import { renderDeployJson } from '../report/deploy.js';
import type { Logger } from '../report/log.js';
import { runDeploy, type DeployResult } from './deploy.js';

/** Runs a deploy with the edge's parsed options and clients: the one path shared by the CLI and the Action. */
export async function executeDeploy(
  pre: Preflight,
  options: Options,
  run: DeployRunOptions,
  guard: GuardOptions,
  conns: Connections,
  log: Logger,
  cwd: string,
): Promise<DeployResult> {
  const result = await runDeploy(
    pre,
    {
      dryRun: run.dryRun,
      forceConflicts: run.forceConflicts,
      readinessGates: options.readinessGates,
      timeouts: { routingSeconds: run.routingTimeoutSeconds, rolloutSeconds: run.rolloutTimeoutSeconds },
      timeScale: conns.clock.scale,
      guard,
      rollback: run.rollback,
    },
    {
      kube: conns.kube,
      elbv2: conns.elbv2,
      cloudwatch: conns.cloudwatch,
      clock: conns.clock,
      log,
      now: Date.now,
      ...(conns.probeUrlFor ? { probeUrlFor: conns.probeUrlFor } : {}),
    },
  );
  if (run.reportPath) await writeFile(resolve(cwd, run.reportPath), renderDeployJson(result));
  return result;
}
