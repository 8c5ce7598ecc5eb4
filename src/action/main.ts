import * as core from '@actions/core';
import { ExitCode, InputError, exitCodeOf } from '../errors.js';
import type { Finding } from '../lint/index.js';
import { RULES } from '../lint/index.js';
import { parseOptions, type RawOptions } from '../options.js';
import { preflight, type Preflight } from '../plan/index.js';
import { renderPlanJson } from '../report/plan.js';
import { writePlanSummary } from './summary.js';

/** The Action's edge: inputs are read here, once, into the same options the CLI builds. */
export interface ActionInputs {
  raw: RawOptions;
  failOn: 'error' | 'warning' | 'none';
}

export function readInputs(workspace: string): ActionInputs {
  const failOn = core.getInput('fail-on') || 'error';
  if (!['error', 'warning', 'none'].includes(failOn)) {
    throw InputError.single(`input fail-on "${failOn}" is not one of error, warning, none`, 'set fail-on to error, warning or none');
  }
  return {
    raw: {
      manifests: core.getMultilineInput('manifests', { required: true }),
      namespace: core.getInput('namespace'),
      baseDir: workspace,
      tune: core.getInput('tune') || 'auto',
      readinessGates: core.getInput('readiness-gates'),
      shutdownSeconds: core.getInput('shutdown-seconds'),
      addPreStop: core.getInput('add-prestop'),
      severity: [core.getInput('severity')],
      disable: [core.getInput('disable')],
    },
    failOn: failOn as ActionInputs['failOn'],
  };
}

export async function runAction(workspace: string): Promise<number> {
  try {
    const inputs = readInputs(workspace);
    const options = parseOptions(inputs.raw, { tune: 'auto' }, RULES.map((r) => r.id));
    const result = await core.group('Preflight: load, tune, lint, plan', () => preflight(options, {}));
    annotate(result.lint.findings);
    for (const c of result.plan.changes) {
      core.info(`tune: ${c.object.kind} ${c.object.namespace}/${c.object.name} ${c.field}: ${c.from ?? '(unset)'} → ${c.to} — ${c.reason}`);
    }
    const errors = result.lint.findings.filter((f) => f.severity === 'error').length;
    const warnings = result.lint.findings.filter((f) => f.severity === 'warning').length;
    const failed = (inputs.failOn === 'error' && errors > 0) || (inputs.failOn === 'warning' && errors + warnings > 0);
    setOutputs(result, failed, errors, warnings);
    await writePlanSummary(result, failed);
    if (failed) {
      core.setFailed(`lint found ${errors} error(s) and ${warnings} warning(s) (fail-on: ${inputs.failOn}); see the annotations on the manifests`);
      return ExitCode.failed;
    }
    return ExitCode.ok;
  } catch (err) {
    core.setOutput('result', 'failed');
    if (err instanceof InputError) {
      for (const p of err.problems) {
        core.error(`${p.message}\nfix: ${p.fix}`, p.source ? { file: p.source.file, startLine: p.source.line, title: 'alb-rollout: invalid input' } : { title: 'alb-rollout: invalid input' });
      }
      core.setFailed(`invalid input, nothing was applied (${err.problems.length} problem(s))`);
    } else {
      core.setFailed((err as Error).message);
    }
    return exitCodeOf(err);
  }
}

function annotate(findings: Finding[]): void {
  for (const f of findings) {
    const props = { file: f.file, startLine: f.line, title: `alb-rollout ${f.rule}` };
    const text = `${f.message}\nfix: ${f.fix}`;
    if (f.severity === 'error') core.error(text, props);
    else if (f.severity === 'warning') core.warning(text, props);
    else core.notice(text, props);
  }
}

function setOutputs(result: Preflight, failed: boolean, errors: number, warnings: number): void {
  core.setOutput('result', failed ? 'failed' : 'succeeded');
  core.setOutput('error-count', String(errors));
  core.setOutput('warning-count', String(warnings));
  core.setOutput('changes', String(result.plan.changes.length));
  core.setOutput('plan', renderPlanJson(result.plan).trim());
}
