import type { Finding, Severity } from './types.js';

/** Findings as text for a terminal: grouped by file, one `file:line severity rule  message` line and a fix line each. */
export function renderFindingsText(findings: Finding[]): string {
  const out: string[] = [];
  let file: string | undefined;
  for (const f of findings) {
    if (file !== undefined && f.file !== file) out.push('');
    file = f.file;
    out.push(`${f.file}:${f.line} ${f.severity} ${f.rule}  ${f.message}`, `  fix: ${f.fix}`);
  }
  if (out.length > 0) out.push('');
  out.push(countLine(findings));
  return `${out.join('\n')}\n`;
}

function countLine(findings: Finding[]): string {
  const count = (s: Severity): number => findings.filter((f) => f.severity === s).length;
  const errors = count('error');
  const warnings = count('warning');
  return `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}, ${count('info')} info`;
}

/** The stable JSON shape: {"findings":[{rule, severity, message, fix, file, line, object:{kind, namespace, name}}]}. */
export function renderFindingsJson(findings: Finding[]): string {
  const shaped = findings.map((f) => ({
    rule: f.rule,
    severity: f.severity,
    message: f.message,
    fix: f.fix,
    file: f.file,
    line: f.line,
    object: { kind: f.object.kind, namespace: f.object.namespace, name: f.object.name },
  }));
  return `${JSON.stringify({ findings: shaped })}\n`;
}

const GITHUB_LEVEL: Record<Severity, string> = { error: 'error', warning: 'warning', info: 'notice' };

/** GitHub workflow commands (`::error file=…,line=…,title=…::message`), which become annotations on the manifest lines. */
export function renderFindingsGithub(findings: Finding[]): string {
  return findings
    .map((f) => {
      const props = `file=${escapeProperty(f.file)},line=${f.line},title=${escapeProperty(`alb-rollout ${f.rule}`)}`;
      return `::${GITHUB_LEVEL[f.severity]} ${props}::${escapeData(`${f.message} (fix: ${f.fix})`)}\n`;
    })
    .join('');
}

/** GitHub's escaping for a command's message. */
export function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/** GitHub's escaping for a command's properties: as for data, plus `:` and `,`. */
export function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}
