import * as core from '@actions/core';
import type { Preflight } from '../preflight/index.js';
import type { DeployResult } from '../rollout/deploy.js';
import { buildRolloutChart } from '../report/chart.js';
import { renderMermaidGantt } from '../report/mermaid.js';
import { escapeHtml, guardHtml } from '../report/html.js';

type Summary = typeof core.summary;

/** The job summary after a plan-only run: the plan, the tuning changes and the lint findings (and, on a pull request, where the comment went). */
export async function writePlanSummary(result: Preflight, failed: boolean, note?: string): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  const s = core.summary.addHeading(`alb-rollout plan ${failed ? '❌' : '✅'}`, 2);
  if (note) s.addRaw(`<p>${esc(note)}</p>`, true);
  addPlan(s, result);
  addTuning(s, result);
  addEstimates(s, result);
  addFindings(s, result);
  await s.write();
}

/** The job summary after a deploy: result, per-phase durations, tuning, the target timeline, then the plan. */
export async function writeDeploySummary(pre: Preflight, r: DeployResult): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  const icon = r.result === 'succeeded' ? '✅' : r.result === 'unverified' ? '⚠️' : r.result === 'paused' ? '⏸️' : '❌';
  const s = core.summary.addHeading(`alb-rollout deploy ${icon} ${r.result}`, 2);
  s.addTable([
    [{ data: 'Revision', header: true }, { data: 'Duration', header: true }, { data: 'Load balancer', header: true }, { data: 'Target groups', header: true }],
    [esc(`${r.previousRevision || '(new)'} → ${r.revision || '?'}`), `${r.durationSeconds}s`, esc(r.loadBalancerHostnames.join(', ')), esc(r.targetGroupArns.join(', '))],
  ]);
  if (r.error) s.addQuote(esc(`failed in phase ${r.failedPhase ?? '?'}: ${r.error}`));
  if (r.unverified) s.addQuote(esc(`unverified: ${r.unverified}`));
  if (r.paused) s.addQuote(esc(`paused: ${r.paused}`));
  for (const rb of r.rollbacks ?? []) s.addQuote(esc(`rollback: ${rb.message}`));
  addChart(s, r, 'deploy');
  if (r.guard) {
    s.addHeading('Guard', 3);
    s.addRaw(`<p>${esc(`${r.guard.decision.verdict}: ${r.guard.decision.reason}`)}</p>${guardHtml(r.guard)}`, true);
  }
  s.addHeading('Phases', 3);
  s.addTable([[{ data: 'Phase', header: true }, { data: 'Started', header: true }, { data: 'Seconds', header: true }], ...r.phases.map((p) => [p.name, p.startedAt, String(p.durationSeconds ?? '')])]);
  addTuning(s, pre);
  const targets = r.timeline.filter((e) => ['target-state', 'pod-created', 'pod-ready', 'pod-deleted', 'target-group-binding', 'load-balancer', 'attribute-verified', 'warning', 'error'].includes(e.kind));
  if (targets.length > 0) {
    s.addHeading('Timeline of pods and targets', 3);
    s.addTable([[{ data: 't (s)', header: true }, { data: 'Event', header: true }], ...targets.slice(0, 300).map((e) => [String(e.t), esc(e.message)])]);
    if (targets.length > 300) s.addRaw(`<p>… ${targets.length - 300} more entries in the --report JSON</p>`);
  }
  const calls = (m: Record<string, number>): string =>
    Object.entries(m)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  s.addDetails('API calls', esc(`Kubernetes: ${calls(r.apiCalls.kubernetes)}; ELBv2: ${calls(r.apiCalls.elbv2)}`));
  s.addDetails('Plan', planHtml(pre));
  addFindings(s, pre);
  await s.write();
}

/** The job summary after mode: rollback. */
export async function writeRollbackSummary(r: DeployResult): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  const ok = !r.error;
  const s = core.summary.addHeading(`alb-rollout rollback ${ok ? '✅' : '❌'} ${r.result}`, 2);
  s.addTable([
    [{ data: 'Revision', header: true }, { data: 'Duration', header: true }, { data: 'Target groups', header: true }],
    [esc(`${r.previousRevision || '?'} → ${r.revision || '?'}`), `${r.durationSeconds}s`, esc(r.targetGroupArns.join(', '))],
  ]);
  if (r.error) s.addQuote(esc(r.error));
  addChart(s, r, 'rollback');
  const events = r.timeline.filter((e) => ['target-state', 'pod-created', 'pod-ready', 'pod-deleted', 'rollback', 'error'].includes(e.kind));
  if (events.length > 0) s.addTable([[{ data: 't (s)', header: true }, { data: 'Event', header: true }], ...events.slice(0, 300).map((e) => [String(e.t), esc(e.message)])]);
  await s.write();
}

/** The run as a Mermaid gantt (GitHub renders it): phases, batches, targets, the guard and the rollback. */
function addChart(s: Summary, r: DeployResult, what: string): void {
  if (r.phases.length === 0) return;
  s.addHeading('Rollout', 3);
  s.addRaw(`\n${renderMermaidGantt(buildRolloutChart(r), `alb-rollout ${what}: ${r.result}`)}\n`, true);
}

function planRows(result: Preflight): string[][] {
  const rows: string[][] = [];
  result.plan.phases.forEach((p, i) => {
    for (const o of p.objects) rows.push([`${i + 1}. ${p.name}`, 'apply', esc(`${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`), esc(`${o.file}:${o.line}`)]);
    for (const w of p.waitFor) rows.push([`${i + 1}. ${p.name}`, 'wait', esc(w.description), '']);
  });
  return rows;
}

function addPlan(s: Summary, result: Preflight): void {
  s.addTable([[{ data: 'Phase', header: true }, { data: 'Step', header: true }, { data: 'What', header: true }, { data: 'Source', header: true }], ...planRows(result)]);
}

function planHtml(result: Preflight): string {
  return `<table><tr><th>Phase</th><th>Step</th><th>What</th><th>Source</th></tr>${planRows(result)
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</table>`;
}

function addTuning(s: Summary, result: Preflight): void {
  if (result.plan.changes.length === 0) return;
  s.addHeading('Timer tuning', 3);
  s.addTable([
    [{ data: 'Object', header: true }, { data: 'Field', header: true }, { data: 'From', header: true }, { data: 'To', header: true }, { data: 'Why', header: true }],
    ...result.plan.changes.map((c) => [esc(`${c.object.kind} ${c.object.namespace}/${c.object.name}`), esc(c.field), esc(String(c.from ?? '(unset)')), esc(String(c.to)), esc(c.reason)]),
  ]);
}

function addEstimates(s: Summary, result: Preflight): void {
  if (result.plan.estimates.length === 0) return;
  s.addHeading('Rollout time estimates', 3);
  s.addList(result.plan.estimates.map((e) => esc(`${e.deployment.namespace}/${e.deployment.name}: ~${Math.round(e.seconds)} s (${e.replicas} replicas, ${e.batches} batches)`)));
}

function addFindings(s: Summary, result: Preflight): void {
  const findings = result.lint.findings;
  s.addHeading(`Lint: ${findings.filter((f) => f.severity === 'error').length} error(s), ${findings.filter((f) => f.severity === 'warning').length} warning(s)`, 3);
  if (findings.length === 0) return;
  s.addTable([
    [{ data: 'Severity', header: true }, { data: 'Rule', header: true }, { data: 'Where', header: true }, { data: 'What happens', header: true }, { data: 'Fix', header: true }],
    ...findings.map((f) => [f.severity, f.rule, esc(`${f.file}:${f.line}`), esc(f.message), esc(f.fix)]),
  ]);
}

/** core.summary does not escape table cells. */
const esc = escapeHtml;
