import * as core from '@actions/core';
import { ExitCode, InputError, exitCodeOf, UnreachableError } from '../errors.js';
import type { Finding } from '../lint/index.js';
import { RULES } from '../lint/index.js';
import { connect, type Connections } from '../connect/index.js';
import { GUARD_FLAGS, parseGuardOptions, type GuardOptions, type RawGuardOptions } from '../guard/index.js';
import {
  parseConnectionOptions,
  parseDeployOptions,
  parseOptions,
  parseRollbackOptions,
  type ConnectionOptions,
  type DeployRunOptions,
  type Options,
  type RawConnectionOptions,
  type RawDeployOptions,
  type RawOptions,
} from '../options.js';
import { preflight, type Preflight } from '../preflight/index.js';
import { renderPlanJson } from '../report/plan.js';
import type { Logger } from '../report/log.js';
import { executeDeploy, executeRollback } from '../rollout/execute.js';
import type { DeployResult } from '../rollout/deploy.js';
import { renderPlanMarkdown } from '../report/markdown.js';
import { writeDeploySummary, writePlanSummary, writeRollbackSummary } from './summary.js';
import { deploymentStateFor, startDeploymentStatus, type DeploymentStatusReporter } from './deployment-status.js';
import { githubClient, readGitHubRun, type ClientOptions, type GitHubRun } from './github.js';
import { environmentUrl } from './outputs.js';
import { changedLines, commentMarker, isChanged, upsertStickyComment } from './pull-request.js';

export const ACTION_MODES = ['deploy', 'plan', 'rollback'] as const;
export type ActionMode = (typeof ACTION_MODES)[number];

/** The Action's edge: inputs are read here, once, into the same typed options the CLI builds. */
export interface ActionInputs {
  mode: ActionMode;
  raw: RawOptions;
  deploy: RawDeployOptions;
  connection: RawConnectionOptions;
  guard: RawGuardOptions;
  rollbackTarget: { deployment: string; toRevision: string };
  failOn: 'error' | 'warning' | 'none';
}

export function readInputs(workspace: string): ActionInputs {
  const failOn = core.getInput('fail-on') || 'error';
  if (!['error', 'warning', 'none'].includes(failOn)) {
    throw InputError.single(`input fail-on "${failOn}" is not one of error, warning, none`, 'set fail-on to error, warning or none');
  }
  const mode = core.getInput('mode') || 'deploy';
  if (!(ACTION_MODES as readonly string[]).includes(mode)) {
    throw InputError.single(`input mode "${mode}" is not one of ${ACTION_MODES.join(', ')}`, `set mode to ${ACTION_MODES.join(' or ')}`);
  }
  return {
    mode: mode as ActionMode,
    raw: {
      manifests: core.getMultilineInput('manifests'),
      namespace: core.getInput('namespace'),
      baseDir: workspace,
      tune: core.getInput('tune') || 'auto',
      readinessGates: core.getInput('readiness-gates'),
      shutdownSeconds: core.getInput('shutdown-seconds'),
      addPreStop: core.getInput('add-prestop'),
      severity: [core.getInput('severity')],
      disable: [core.getInput('disable')],
    },
    deploy: {
      dryRun: core.getInput('dry-run') || 'false',
      forceConflicts: core.getInput('force-conflicts') || 'false',
      routingTimeout: core.getInput('routing-timeout'),
      rolloutTimeout: core.getInput('rollout-timeout'),
      rollback: core.getInput('rollback'),
      argoPauses: core.getInput('argo-pauses'),
      report: core.getInput('report'),
      reportHtml: core.getInput('report-html'),
    },
    connection: {
      kubeconfig: core.getInput('kubeconfig'),
      context: core.getInput('context'),
      region: core.getInput('aws-region'),
      lab: core.getInput('lab'),
      timeScale: core.getInput('time-scale'),
      timeOrigin: core.getInput('time-origin'),
    },
    guard: readGuardInputs(),
    rollbackTarget: { deployment: core.getInput('deployment'), toRevision: core.getInput('to-revision') },
    failOn: failOn as ActionInputs['failOn'],
  };
}

/** Every guard flag is an input of the same name (empty = the default); probe-url and probe-header are multiline. */
function readGuardInputs(): RawGuardOptions {
  const raw: RawGuardOptions = {};
  for (const name of GUARD_FLAGS) {
    if (name === 'probe-url' || name === 'probe-header') {
      const values = core.getMultilineInput(name);
      if (values.length > 0) raw[name] = values;
    } else {
      const v = core.getInput(name);
      if (v !== '') raw[name] = v;
    }
  }
  return raw;
}

/** Log lines go to the Actions log; waits print progress at most every few seconds; phases are collapsible groups. */
export function actionLogger(): Logger {
  let last = 0;
  return {
    info: (m) => core.info(m),
    warn: (m) => core.warning(m),
    error: (m) => core.error(m),
    progress: (m) => {
      const now = Date.now();
      if (now - last < 3000) return;
      last = now;
      core.info(`… ${m}`);
    },
    group: (name, fn) => core.group(name, fn),
  };
}

/** The GitHub side of a run: the runner's context and, with `github-token`, a client (tests shorten its retry backoff). */
export interface ActionGitHub {
  run?: GitHubRun;
  token: string;
  client: ClientOptions;
}

export async function runAction(workspace: string, env: Record<string, string | undefined> = process.env, clientOptions: ClientOptions = {}): Promise<number> {
  try {
    const inputs = readInputs(workspace);
    const token = core.getInput('github-token');
    if (token) core.setSecret(token);
    const gh: ActionGitHub = { token, client: clientOptions, ...(await readGitHubRun(env).then((run) => (run ? { run } : {}))) };
    if (inputs.mode === 'rollback') return await rollback(inputs, env, workspace);
    const options = parseOptions(inputs.raw, { tune: 'auto' }, RULES.map((r) => r.id));
    const run = inputs.mode === 'deploy' ? parseDeployOptions(inputs.deploy) : undefined;
    const guard = parseGuardOptions(inputs.guard);
    const connection = parseConnectionOptions(inputs.connection);
    const pre = await core.group('Preflight: load, tune, lint, plan', () => preflight(options, {}));
    const pr = inputs.mode === 'plan' ? gh.run?.pullRequest : undefined;
    const changed = pr && gh.run && gh.token ? await changedLines(githubClient(gh.token, gh.run, gh.client), gh.run, pr) : undefined;
    const outsideDiff = annotate(pre, changed);
    for (const c of pre.plan.changes) {
      core.info(`tune: ${c.object.kind} ${c.object.namespace}/${c.object.name} ${c.field}: ${c.from ?? '(unset)'} → ${c.to} — ${c.reason}`);
    }
    const errors = pre.lint.findings.filter((f) => f.severity === 'error').length;
    const warnings = pre.lint.findings.filter((f) => f.severity === 'warning').length;
    core.setOutput('lint-error-count', String(errors));
    core.setOutput('lint-warning-count', String(warnings));
    core.setOutput('changes', String(pre.plan.changes.length));
    core.setOutput('plan', renderPlanJson(pre.plan).trim());
    const lintFailed = (inputs.failOn === 'error' && errors > 0) || (inputs.failOn === 'warning' && errors + warnings > 0);
    if (lintFailed || !run) {
      core.setOutput('result', lintFailed ? 'failed' : 'succeeded');
      const note = pr && gh.run ? await planComment(pre, lintFailed, inputs.failOn, gh, outsideDiff) : undefined;
      await writePlanSummary(pre, lintFailed, note);
      if (lintFailed) {
        core.setFailed(`lint found ${errors} error(s) and ${warnings} warning(s) (fail-on: ${inputs.failOn}); nothing was applied — see the annotations on the manifests`);
        return ExitCode.failed;
      }
      return ExitCode.ok;
    }
    return await deploy(pre, options, run, guard, connection, env, workspace, gh);
  } catch (err) {
    core.setOutput('result', 'failed');
    if (err instanceof InputError) {
      for (const p of err.problems) {
        core.error(`${p.message}\nfix: ${p.fix}`, p.source ? { file: p.source.file, startLine: p.source.line, title: 'alb-rollout: invalid input' } : { title: 'alb-rollout: invalid input' });
      }
      core.setFailed(`invalid input, nothing was applied (${err.problems.length} problem(s))`);
    } else if (err instanceof UnreachableError) {
      core.setFailed(err.message);
    } else {
      // Not an input, cluster or AWS problem: a bug. The message for the log; the stack only with step debug logging.
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof Error && err.stack) core.debug(err.stack);
      core.setFailed(`${message}\nthis is unexpected (a bug in alb-rollout): re-run the job with debug logging (ACTIONS_STEP_DEBUG) for the stack trace and report it`);
    }
    return exitCodeOf(err);
  }
}

async function deploy(
  pre: Preflight,
  options: Options,
  run: DeployRunOptions,
  guard: GuardOptions,
  connection: ConnectionOptions,
  env: Record<string, string | undefined>,
  workspace: string,
  gh: ActionGitHub,
): Promise<number> {
  const github = run.dryRun ? undefined : await githubDeployment(gh);
  let result: DeployResult;
  try {
    const conns = await connect(connection, env, workspace);
    maskCredentials(conns);
    try {
      result = await executeDeploy(pre, options, run, guard, conns, actionLogger(), workspace);
    } finally {
      conns.close();
    }
    await github?.finish(
      deploymentStateFor(result.result, result.exitCode),
      `alb-rollout: ${result.result}${result.revision ? ` (revision ${result.revision})` : ''}${result.failedPhase ? ` in phase ${result.failedPhase}` : ''}`,
      environmentUrl(result.timeline, pre.set.objects),
    );
  } catch (err) {
    // An exception (bad kubeconfig, cluster unreachable, a bug): the Deployment still ends in a final state, never in_progress.
    await github?.finish('error', `alb-rollout stopped before a result: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  }
  setDeployOutputs(result);
  await writeDeploySummary(pre, result);
  if (result.result === 'unverified') {
    // Not measured is not healthy: an unverified run fails the step unless on-inconclusive is pass.
    const text = `deploy unverified: ${result.unverified ?? ''}`;
    if (result.exitCode !== ExitCode.ok) core.setFailed(text);
    else core.warning(text);
    return result.exitCode;
  }
  if (result.result === 'paused') {
    // Not a failure: the release is out at the Rollout's pause; a person promotes it (or it waits, --argo-pauses wait).
    core.notice(`deploy paused: ${result.paused ?? ''}`);
    return ExitCode.ok;
  }
  if (result.result !== 'succeeded') {
    core.setFailed(`deploy ${result.result} in phase ${result.failedPhase ?? '?'}: ${result.error ?? ''}`);
    return result.exitCode;
  }
  core.info(`deploy succeeded in ${result.durationSeconds}s: revision ${result.previousRevision || '(new)'} → ${result.revision}`);
  return ExitCode.ok;
}

/** mode: rollback (workflow_dispatch): undo to the previous or a named revision, with the deploy's waits. */
async function rollback(inputs: ActionInputs, env: Record<string, string | undefined>, workspace: string): Promise<number> {
  const request = parseRollbackOptions({
    namespace: inputs.raw.namespace,
    deployment: inputs.rollbackTarget.deployment,
    toRevision: inputs.rollbackTarget.toRevision,
    rolloutTimeout: inputs.deploy.rolloutTimeout,
    readinessGates: inputs.raw.readinessGates,
    report: inputs.deploy.report,
  });
  const conns = await connect(parseConnectionOptions(inputs.connection), env, workspace);
  maskCredentials(conns);
  let result: DeployResult;
  try {
    result = await core.group(`Rollback ${request.namespace}/${request.deployment}`, () => executeRollback(request, conns, actionLogger(), workspace));
  } finally {
    conns.close();
  }
  setDeployOutputs(result);
  await writeRollbackSummary(result);
  if (result.error) {
    core.setFailed(`rollback failed: ${result.error}`);
    return result.exitCode;
  }
  core.info(`rolled back ${request.deployment}: revision ${result.previousRevision} → ${result.revision}`);
  return ExitCode.ok;
}

/** A GitHub Deployment for the run when `github-token` is given (environment URL: the ALB hostname). */
async function githubDeployment(gh: ActionGitHub): Promise<DeploymentStatusReporter | undefined> {
  if (!gh.token) return undefined;
  if (!gh.run || !gh.run.sha) {
    core.warning('github-token is set but GITHUB_REPOSITORY/GITHUB_SHA are not: no GitHub deployment is recorded');
    return undefined;
  }
  return startDeploymentStatus(githubClient(gh.token, gh.run, gh.client), gh.run, core.getInput('environment') || 'production', (m) => core.warning(m));
}

/**
 * mode plan on a pull request: the plan as one sticky comment, or, from a fork or without a token, the job summary
 * only. Returns the line the job summary shows about the comment.
 */
async function planComment(pre: Preflight, failed: boolean, failOn: string, gh: ActionGitHub, outsideDiff: number): Promise<string> {
  const run = gh.run as GitHubRun;
  const pr = run.pullRequest;
  if (!pr) return '';
  if (pr.fromFork) return `Pull request #${pr.number} comes from a fork (${pr.headRepository ?? 'deleted repository'}): its token cannot write comments, so the plan is in this job summary only.`;
  if (!gh.token) return `No github-token input: the plan is in this job summary only. Give the step \`github-token: \${{ github.token }}\` and \`permissions: pull-requests: write\` to get it as a pull-request comment.`;
  const marker = commentMarker(run);
  const body = renderPlanMarkdown(pre, { marker, failed, failOn, sha: pr.headSha || run.sha, ...(run.runUrl ? { runUrl: run.runUrl } : {}), outsideDiff });
  const outcome = await upsertStickyComment(githubClient(gh.token, run, gh.client), run, pr, marker, body);
  if (outcome.action === 'failed') {
    core.warning(`could not write the plan comment on pull request #${pr.number}: ${outcome.reason}. The token needs permissions: pull-requests: write.`);
    return `The plan comment on pull request #${pr.number} could not be written (${outcome.reason}): the plan is in this job summary only.`;
  }
  core.info(`plan comment ${outcome.action} on pull request #${pr.number}${outcome.url ? `: ${outcome.url}` : ''}`);
  return `The plan was ${outcome.action === 'created' ? 'posted' : 'updated'} as a comment on pull request #${pr.number}${outcome.url ? ` (${outcome.url})` : ''}.`;
}

/** Whatever the kubeconfig carries as a secret never appears in the log, even inside an error message. */
function maskCredentials(conns: Connections): void {
  const user = conns.kube.kc.getCurrentUser();
  for (const secret of [user?.token, user?.password, user?.keyData]) if (secret) core.setSecret(secret);
}

function setDeployOutputs(r: DeployResult): void {
  core.setOutput('result', r.result);
  core.setOutput('error-count', String(r.guard?.signals.reduce((a, x) => a + x.errors, 0) ?? 0));
  core.setOutput('revision', r.revision);
  core.setOutput('previous-revision', r.previousRevision);
  core.setOutput('load-balancer-hostname', r.loadBalancerHostnames[0] ?? '');
  core.setOutput('target-group-arns', r.targetGroupArns.join(','));
  core.setOutput('duration-seconds', String(r.durationSeconds));
}

/**
 * Lint findings as annotations on their manifest lines. On a pull request (changed lines known): only the lines it
 * changes, plus the tuning it would apply there; returns how many findings were left to the comment.
 */
function annotate(pre: Preflight, changed?: Map<string, Set<number>>): number {
  let outside = 0;
  for (const f of pre.lint.findings as Finding[]) {
    if (changed && !isChanged(changed, f.file, f.line)) {
      outside++;
      continue;
    }
    const props = { file: f.file, startLine: f.line, title: `alb-rollout ${f.rule}` };
    const text = `${f.message}\nfix: ${f.fix}`;
    if (f.severity === 'error') core.error(text, props);
    else if (f.severity === 'warning') core.warning(text, props);
    else core.notice(text, props);
  }
  if (changed) {
    for (const c of pre.plan.changes) {
      if (isChanged(changed, c.file, c.line)) core.notice(`${c.field}: ${c.from ?? '(unset)'} → ${c.to}\n${c.reason}`, { file: c.file, startLine: c.line, title: 'alb-rollout tuning' });
    }
  }
  return outside;
}
