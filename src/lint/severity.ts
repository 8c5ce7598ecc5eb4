import { idOf } from '../manifests/model.js';
import type { LoadedObject } from '../manifests/types.js';
import { RULE_IDS, type Finding, type LintOptions, type RawFinding, type RuleId, type Severity } from './types.js';

/**
 * Final severities. Precedence, most specific first:
 *   1. annotations on the object the finding is about (`alb-rollout.dev/lint-disable: "rule-a,rule-b"` or `all`;
 *      `alb-rollout.dev/lint-severity: "rule-a=warning,rule-b=off"`), then on the extra objects a rule names
 *      (the Deployment, for namespace-level findings);
 *   2. the run's options (`--severity rule=level`, `--disable rule`);
 *   3. the rule's own severity in context.
 */

export const LINT_DISABLE_ANNOTATION = 'alb-rollout.dev/lint-disable';
export const LINT_SEVERITY_ANNOTATION = 'alb-rollout.dev/lint-severity';

const LEVELS = new Set(['error', 'warning', 'info', 'off']);

export function finalizeFindings(raw: RawFinding[], options: LintOptions): Finding[] {
  const out: Finding[] = [];
  const seen = new Set<string>();
  for (const r of raw) {
    const severity = resolveSeverity(r, options);
    if (severity === 'off') continue;
    const where = r.at.locate(r.path);
    const finding: Finding = {
      rule: r.rule,
      severity,
      message: r.message,
      fix: r.fix,
      file: where.file,
      line: where.line,
      object: r.object ?? idOf(r.at),
    };
    const key = `${finding.rule}\u0000${finding.file}\u0000${finding.line}\u0000${finding.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(finding);
  }
  return out.sort(compareFindings);
}

export function compareFindings(a: Finding, b: Finding): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0);
}

function resolveSeverity(r: RawFinding, options: LintOptions): Severity | 'off' {
  for (const o of [r.at, ...(r.alsoAnnotatedOn ?? [])]) {
    const fromObject = objectOverride(o, r.rule);
    if (fromObject) return fromObject;
  }
  return options.severity?.[r.rule] ?? r.severity;
}

function objectOverride(o: LoadedObject, rule: RuleId): Severity | 'off' | undefined {
  const annotations = o.object.metadata.annotations ?? {};
  const disabled = (annotations[LINT_DISABLE_ANNOTATION] ?? '').split(',').map((s) => s.trim());
  if (disabled.includes('all') || disabled.includes(rule)) return 'off';
  for (const entry of (annotations[LINT_SEVERITY_ANNOTATION] ?? '').split(',')) {
    const [id, level] = entry.split('=').map((s) => s.trim());
    if (id === rule && RULE_IDS.has(id) && level && LEVELS.has(level)) return level as Severity | 'off';
  }
  return undefined;
}
