import type { Preflight } from '../preflight/index.js';
import { escapeHtml } from './html.js';

/**
 * The plan as Markdown for a pull-request comment (and the job summary on pull requests): result, lint findings,
 * the tuning as a diff, the apply order and the estimates. GitHub caps a comment at 65,536 characters.
 */

export const COMMENT_LIMIT = 60_000;

export interface PlanMarkdownOptions {
  /** The hidden marker that makes the comment findable again (first line). */
  marker?: string;
  failed: boolean;
  failOn: string;
  /** Commit the plan was made for, and a link to the run. */
  sha?: string;
  runUrl?: string;
  /** Findings not on lines the pull request changes (not annotated, listed here). */
  outsideDiff?: number;
}

export function renderPlanMarkdown(pre: Preflight, o: PlanMarkdownOptions): string {
  const findings = pre.lint.findings;
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  const out: string[] = [];
  if (o.marker) out.push(o.marker);
  out.push(`### alb-rollout plan ${o.failed ? '❌' : '✅'}`);
  out.push('');
  out.push(
    `**Lint:** ${errors} error(s), ${warnings} warning(s), ${findings.length - errors - warnings} info (fail-on: ${o.failOn}) · **Tuning:** ${pre.plan.changes.length} change(s) · ` +
      `**Objects:** ${pre.set.objects.length}${o.failed ? ' · this would not be applied' : ''}`,
  );
  if (findings.length > 0) {
    out.push('', '#### Lint findings', '', '| Severity | Rule | Where | What happens | Fix |', '| --- | --- | --- | --- | --- |');
    for (const f of findings) out.push(`| ${f.severity} | \`${f.rule}\` | \`${cell(`${f.file}:${f.line}`)}\` | ${cell(f.message)} | ${cell(f.fix)} |`);
    if (o.outsideDiff) out.push('', `_${o.outsideDiff} of these are on lines this pull request does not change (annotated only on changed lines)._`);
  }
  out.push('', '#### Tuning diff', '');
  if (pre.plan.changes.length === 0) out.push('Nothing to change: the timers already fit.');
  else {
    out.push('```diff');
    for (const c of pre.plan.changes) {
      out.push(`@@ ${c.file}:${c.line} ${c.object.kind} ${c.object.namespace ? `${c.object.namespace}/` : ''}${c.object.name} @@`);
      out.push(`- ${c.field}: ${c.from ?? '(unset)'}`);
      out.push(`+ ${c.field}: ${c.to}`);
      out.push(`# ${c.reason}`);
    }
    out.push('```');
  }
  out.push('', '#### Plan', '', '| Phase | Step | What | Source |', '| --- | --- | --- | --- |');
  pre.plan.phases.forEach((p, i) => {
    for (const ob of p.objects) out.push(`| ${i + 1}. ${p.name} | apply | ${cell(`${ob.kind} ${ob.namespace ? `${ob.namespace}/` : ''}${ob.name}`)} | \`${cell(`${ob.file}:${ob.line}`)}\` |`);
    for (const w of p.waitFor) out.push(`| ${i + 1}. ${p.name} | wait | ${cell(w.description)} | |`);
  });
  if (pre.plan.estimates.length > 0) {
    out.push('', '#### Rollout time estimates', '');
    for (const e of pre.plan.estimates) out.push(`- ${cell(`${e.deployment.namespace}/${e.deployment.name}`)}: ~${Math.round(e.seconds)} s (${e.replicas} replicas, ${e.batches} batches)`);
  }
  if (o.sha || o.runUrl) out.push('', `<sub>Plan for ${o.sha ? `\`${o.sha.slice(0, 12)}\`` : 'this commit'}${o.runUrl ? ` · [run](${o.runUrl})` : ''} · updated on every push</sub>`);
  let text = `${out.join('\n')}\n`;
  if (text.length > COMMENT_LIMIT) text = `${text.slice(0, COMMENT_LIMIT)}\n\n… (cut at ${COMMENT_LIMIT} characters; the job summary and \`alb-rollout plan\` have everything)\n`;
  return text;
}

/** A Markdown table cell: no pipes, no line breaks, no HTML. */
function cell(s: string): string {
  return escapeHtml(s).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}
