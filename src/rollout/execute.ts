import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Connections } from '../connect/index.js';
import type { GuardOptions } from '../guard/index.js';
import type { DeployRunOptions, Options, RollbackRequest } from '../options.js';
import type { Preflight } from '../preflight/index.js';
import { renderDeployJson } from '../report/deploy.js';
import { renderDeployHtml } from '../report/html.js';
import type { Logger } from '../report/log.js';
import { runDeploy, runRollback, type DeployResult } from './deploy.js';

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
      argoPauses: run.argoPauses,
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
  if (run.reportHtmlPath) await writeFile(resolve(cwd, run.reportHtmlPath), renderDeployHtml(result));
  return result;
}

/** Runs a rollback with the edge's parsed request and clients: shared by the CLI verb and the Action's mode. */
export async function executeRollback(request: RollbackRequest, conns: Connections, log: Logger, cwd: string): Promise<DeployResult> {
  const result = await runRollback(
    {
      namespace: request.namespace,
      deployment: request.deployment,
      ...(request.toRevision !== undefined ? { toRevision: request.toRevision } : {}),
      rolloutTimeoutSeconds: request.rolloutTimeoutSeconds,
      readinessGates: request.readinessGates,
      timeScale: conns.clock.scale,
    },
    { kube: conns.kube, elbv2: conns.elbv2, log, now: Date.now, clock: conns.clock },
  );
  if (request.reportPath) await writeFile(resolve(cwd, request.reportPath), renderDeployJson(result));
  return result;
}
