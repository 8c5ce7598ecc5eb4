import * as core from '@actions/core';
import type { Preflight } from '../plan/index.js';

/** The job summary: the plan, the tuning changes and the lint findings, as GitHub-flavoured HTML tables. */
export async function writePlanSummary(result: Preflight, failed: boolean): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  const s = core.summary.addHeading(`alb-rollout plan ${failed ? '❌' : '✅'}`, 2);
  const rows: string[][] = [];
  result.plan.phases.forEach((p, i) => {
    for (const o of p.objects) rows.push([`${i + 1}. ${p.name}`, 'apply', esc(`${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`), esc(`${o.file}:${o.line}`)]);
    for (const w of p.waitFor) rows.push([`${i + 1}. ${p.name}`, 'wait', esc(w.description), '']);
  });
  s.addTable([[{ data: 'Phase', header: true }, { data: 'Step', header: true }, { data: 'What', header: true }, { data: 'Source', header: true }], ...rows]);
  if (result.plan.changes.length > 0) {
    s.addHeading('Timer tuning', 3);
    s.addTable([
      [{ data: 'Object', header: true }, { data: 'Field', header: true }, { data: 'From', header: true }, { data: 'To', header: true }, { data: 'Why', header: true }],
      ...result.plan.changes.map((c) => [esc(`${c.object.kind} ${c.object.namespace}/${c.object.name}`), esc(c.field), esc(String(c.from ?? '(unset)')), esc(String(c.to)), esc(c.reason)]),
    ]);
  }
  if (result.plan.estimates.length > 0) {
    s.addHeading('Rollout time estimates', 3);
    s.addList(result.plan.estimates.map((e) => esc(`${e.deployment.namespace}/${e.deployment.name}: ~${Math.round(e.seconds)} s (${e.replicas} replicas, ${e.batches} batches)`)));
  }
  const findings = result.lint.findings;
  s.addHeading(`Lint: ${findings.filter((f) => f.severity === 'error').length} error(s), ${findings.filter((f) => f.severity === 'warning').length} warning(s)`, 3);
  if (findings.length > 0) {
    s.addTable([
      [{ data: 'Severity', header: true }, { data: 'Rule', header: true }, { data: 'Where', header: true }, { data: 'What happens', header: true }, { data: 'Fix', header: true }],
      ...findings.map((f) => [f.severity, f.rule, esc(`${f.file}:${f.line}`), esc(f.message), esc(f.fix)]),
    ]);
  }
  await s.write();
}

/** core.summary does not escape table cells. */
function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
