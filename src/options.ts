import { InputError, type InputProblem } from './errors.js';

/**
 * The one typed options object. The CLI (flags) and the Action (inputs) both produce raw string values;
 * `parseOptions` validates them once, at the edge. Nothing deeper reads flags, inputs or environment variables.
 */

export const TUNE_MODES = ['auto', 'check', 'off'] as const;
export type TuneMode = (typeof TUNE_MODES)[number];

export const OUTPUT_FORMATS = ['text', 'json', 'github'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** inject: deploy labels the namespace; require: the label must already be there; off: gates are not used. */
export const READINESS_GATE_MODES = ['inject', 'require', 'off'] as const;
export type ReadinessGateMode = (typeof READINESS_GATE_MODES)[number];

export const SEVERITY_VALUES = ['error', 'warning', 'info', 'off'] as const;
export type SeverityOverride = (typeof SEVERITY_VALUES)[number];

export interface Options {
  /** Files, folders, globs, or `-` for stdin. */
  manifests: string[];
  /** Namespace for objects that name none. */
  namespace: string;
  /** Folder that paths in messages and annotations are relative to. */
  baseDir: string;
  format: OutputFormat;
  tune: TuneMode;
  readinessGates: ReadinessGateMode;
  /** Seconds the application needs after SIGTERM to finish in-flight work; part of the grace period budget. */
  shutdownSeconds: number;
  /** Whether `tune auto` may add a preStop sleep to containers that have none. */
  addPreStop: boolean;
  /** Per-rule lint severity overrides (`--severity rule=warning`, `--disable rule`). */
  severity: Record<string, SeverityOverride>;
  /** `plan --output-dir`: where the (tuned) manifests are written. */
  outputDir?: string;
}

/** Raw values as both edges deliver them: strings, possibly empty. */
export interface RawOptions {
  manifests?: string[];
  namespace?: string;
  baseDir?: string;
  format?: string;
  tune?: string;
  readinessGates?: string;
  shutdownSeconds?: string;
  addPreStop?: string | boolean;
  severity?: string[];
  disable?: string[];
  outputDir?: string;
}

export interface Defaults {
  tune: TuneMode;
  /** lint judges the manifests as they are (require); plan and deploy add the label themselves (inject). */
  readinessGates?: ReadinessGateMode;
  format?: OutputFormat;
}

export function parseOptions(raw: RawOptions, defaults: Defaults, knownRules: readonly string[]): Options {
  const problems: InputProblem[] = [];
  const manifests = (raw.manifests ?? []).map((m) => m.trim()).filter((m) => m !== '');
  if (manifests.length === 0) {
    problems.push({
      message: 'no manifests given',
      fix: 'pass -f PATH (a file, a folder, a glob such as "k8s/**/*.yaml", or - for stdin); -f may be repeated',
    });
  }
  const format = oneOf('format', raw.format, OUTPUT_FORMATS, defaults.format ?? 'text', problems);
  const tune = oneOf('tune', raw.tune, TUNE_MODES, defaults.tune, problems);
  const readinessGates = oneOf('readiness-gates', raw.readinessGates, READINESS_GATE_MODES, defaults.readinessGates ?? 'inject', problems);
  const shutdownSeconds = nonNegativeInt('shutdown-seconds', raw.shutdownSeconds, 5, problems);
  const addPreStop = bool('add-prestop', raw.addPreStop, true, problems);
  const namespace = (raw.namespace ?? '').trim() || 'default';
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace) || namespace.length > 63) {
    problems.push({
      message: `namespace "${namespace}" is not a valid Kubernetes namespace name`,
      fix: 'use lower-case letters, digits and "-", at most 63 characters, starting and ending with a letter or digit',
    });
  }
  const severity: Record<string, SeverityOverride> = {};
  for (const entry of splitList(raw.severity ?? [])) {
    const [rule, value] = entry.split('=').map((s) => s.trim());
    if (!rule || !value || !(SEVERITY_VALUES as readonly string[]).includes(value)) {
      problems.push({
        message: `--severity "${entry}" is not RULE=LEVEL`,
        fix: `write it like prestop-missing=warning; levels: ${SEVERITY_VALUES.join(', ')}`,
      });
      continue;
    }
    checkRule(rule, knownRules, problems);
    severity[rule] = value as SeverityOverride;
  }
  for (const rule of splitList(raw.disable ?? [])) {
    checkRule(rule, knownRules, problems);
    severity[rule] = 'off';
  }
  if (problems.length > 0) throw new InputError(problems);
  return {
    manifests,
    namespace,
    baseDir: raw.baseDir && raw.baseDir !== '' ? raw.baseDir : process.cwd(),
    format,
    tune,
    readinessGates,
    shutdownSeconds,
    addPreStop,
    severity,
    ...(raw.outputDir ? { outputDir: raw.outputDir } : {}),
  };
}

function checkRule(rule: string, known: readonly string[], problems: InputProblem[]): void {
  if (!known.includes(rule)) {
    problems.push({ message: `unknown lint rule "${rule}"`, fix: `use one of: ${known.join(', ')}` });
  }
}

/** Accepts repeated flags and comma- or newline-separated lists alike. */
export function splitList(values: string[]): string[] {
  return values
    .flatMap((v) => v.split(/[,\n]/))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
  problems: InputProblem[],
): T {
  const v = (value ?? '').trim();
  if (v === '') return fallback;
  if ((allowed as readonly string[]).includes(v)) return v as T;
  problems.push({ message: `${name} "${v}" is not one of ${allowed.join(', ')}`, fix: `set ${name} to one of: ${allowed.join(', ')}` });
  return fallback;
}

function nonNegativeInt(name: string, value: string | undefined, fallback: number, problems: InputProblem[]): number {
  const v = (value ?? '').trim();
  if (v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    problems.push({ message: `${name} "${v}" is not a whole number of seconds`, fix: `set ${name} to a number such as ${fallback}` });
    return fallback;
  }
  return n;
}

function bool(name: string, value: string | boolean | undefined, fallback: boolean, problems: InputProblem[]): boolean {
  if (typeof value === 'boolean') return value;
  const v = (value ?? '').trim().toLowerCase();
  if (v === '') return fallback;
  if (v === 'true') return true;
  if (v === 'false') return false;
  problems.push({ message: `${name} "${value}" is not true or false`, fix: `set ${name} to true or false` });
  return fallback;
}

/** Where the cluster and AWS are: shared by deploy, analyze and rollback. */
export interface ConnectionOptions {
  kubeconfigPath?: string;
  context?: string;
  region?: string;
  /** A running `alb-rollout lab up --state-dir DIR`: kubeconfig, AWS endpoints and clock come from DIR/lab.json. */
  labDir?: string;
  /** Lab only: AWS seconds per real second, and the instant the lab's clock started (from lab.json when --lab). */
  timeScale?: number;
  timeOrigin?: number;
}

export interface RawConnectionOptions {
  kubeconfig?: string;
  context?: string;
  region?: string;
  lab?: string;
  timeScale?: string;
  timeOrigin?: string;
}

export function parseConnectionOptions(raw: RawConnectionOptions): ConnectionOptions {
  const problems: InputProblem[] = [];
  const opt = (v: string | undefined): string | undefined => (v && v.trim() !== '' ? v.trim() : undefined);
  const num = (name: string, v: string | undefined, min: number): number | undefined => {
    const t = opt(v);
    if (t === undefined) return undefined;
    const n = Number(t);
    if (!Number.isFinite(n) || n < min) {
      problems.push({ message: `${name} "${t}" is not a number ≥ ${min}`, fix: `leave ${name} unset for a real cluster; the lab prints the value to use (or use --lab DIR)` });
      return undefined;
    }
    return n;
  };
  const timeScale = num('time-scale', raw.timeScale, 1);
  const timeOrigin = num('time-origin', raw.timeOrigin, 0);
  if (problems.length > 0) throw new InputError(problems);
  const kubeconfigPath = opt(raw.kubeconfig);
  const context = opt(raw.context);
  const region = opt(raw.region);
  const labDir = opt(raw.lab);
  return {
    ...(kubeconfigPath ? { kubeconfigPath } : {}),
    ...(context ? { context } : {}),
    ...(region ? { region } : {}),
    ...(labDir ? { labDir } : {}),
    ...(timeScale !== undefined ? { timeScale } : {}),
    ...(timeOrigin !== undefined ? { timeOrigin } : {}),
  };
}

/** What `deploy` adds to the shared options: how long to wait, and what to do when the guard fails. */
export interface DeployRunOptions {
  dryRun: boolean;
  forceConflicts: boolean;
  routingTimeoutSeconds: number;
  rolloutTimeoutSeconds: number;
  /** On a guard failure: roll back (auto) or only report (off). */
  rollback: 'auto' | 'off';
  /** An Argo Rollout at a pause only a person ends: end the run there with result paused (end) or wait through it (wait). */
  argoPauses: 'end' | 'wait';
  reportPath?: string;
  /** `--report-html FILE`: the run as a self-contained HTML page. */
  reportHtmlPath?: string;
}

export interface RawDeployOptions {
  dryRun?: string | boolean;
  forceConflicts?: string | boolean;
  routingTimeout?: string;
  rolloutTimeout?: string;
  rollback?: string;
  argoPauses?: string;
  report?: string;
  reportHtml?: string;
}

export function parseDeployOptions(raw: RawDeployOptions): DeployRunOptions {
  const problems: InputProblem[] = [];
  const routingTimeoutSeconds = positiveSeconds('routing-timeout', raw.routingTimeout, 600, problems);
  const rolloutTimeoutSeconds = positiveSeconds('rollout-timeout', raw.rolloutTimeout, 1800, problems);
  const dryRun = bool('dry-run', raw.dryRun, false, problems);
  const forceConflicts = bool('force-conflicts', raw.forceConflicts, false, problems);
  const rollback = oneOf('rollback', raw.rollback, ['auto', 'off'] as const, 'auto', problems);
  const argoPauses = oneOf('argo-pauses', raw.argoPauses, ['end', 'wait'] as const, 'end', problems);
  if (problems.length > 0) throw new InputError(problems);
  const reportPath = raw.report && raw.report.trim() !== '' ? raw.report.trim() : undefined;
  const reportHtmlPath = raw.reportHtml && raw.reportHtml.trim() !== '' ? raw.reportHtml.trim() : undefined;
  return { dryRun, forceConflicts, routingTimeoutSeconds, rolloutTimeoutSeconds, rollback, argoPauses, ...(reportPath ? { reportPath } : {}), ...(reportHtmlPath ? { reportHtmlPath } : {}) };
}

/** A positive duration in whole seconds (rounded up), in the one duration grammar: 90, 90s, 10m, 1m30s. */
function positiveSeconds(name: string, value: string | undefined, fallback: number, problems: InputProblem[]): number {
  const v = (value ?? '').trim();
  if (v === '') return fallback;
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) {
    problems.push({ message: `${name} "${v}" is not a duration`, fix: `write it as seconds (600), or with a unit: 600s, 10m, 1h, 1m30s` });
    return fallback;
  }
  return Math.ceil(ms / 1000);
}

/** What `rollback` (CLI verb, Action mode) needs: which Deployment, which revision, how long to wait. */
export interface RollbackRequest {
  namespace: string;
  deployment: string;
  /** Default: the previous revision. */
  toRevision?: number;
  rolloutTimeoutSeconds: number;
  readinessGates: ReadinessGateMode;
  reportPath?: string;
}

export interface RawRollbackOptions {
  namespace?: string;
  deployment?: string;
  toRevision?: string;
  rolloutTimeout?: string;
  readinessGates?: string;
  report?: string;
}

export function parseRollbackOptions(raw: RawRollbackOptions): RollbackRequest {
  const problems: InputProblem[] = [];
  const deployment = (raw.deployment ?? '').trim();
  if (deployment === '') {
    problems.push({ message: 'rollback needs the Deployment to roll back', fix: 'name it with deployment (CLI: --deployment NAME), and its namespace' });
  }
  const toText = (raw.toRevision ?? '').trim();
  const toRevision = toText === '' ? undefined : Number(toText);
  if (toRevision !== undefined && (!Number.isInteger(toRevision) || toRevision < 1)) {
    problems.push({
      message: `to-revision "${toText}" is not a revision number`,
      fix: 'use a number from `kubectl rollout history deployment/NAME`, or leave it out for the previous revision',
    });
  }
  const rolloutTimeoutSeconds = positiveSeconds('rollout-timeout', raw.rolloutTimeout, 1800, problems);
  const readinessGates = oneOf('readiness-gates', raw.readinessGates, READINESS_GATE_MODES, 'inject', problems);
  if (problems.length > 0) throw new InputError(problems);
  const reportPath = raw.report && raw.report.trim() !== '' ? raw.report.trim() : undefined;
  return {
    namespace: (raw.namespace ?? '').trim() || 'default',
    deployment,
    ...(toRevision !== undefined ? { toRevision } : {}),
    rolloutTimeoutSeconds,
    readinessGates,
    ...(reportPath ? { reportPath } : {}),
  };
}

/** "500ms", "2s", "5m", "1h", "1m30s", or a plain number of seconds → milliseconds. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3600_000;
    matched = re.lastIndex;
  }
  return matched === s.length && s.length > 0 ? total : undefined;
}

/** "5%" → 0.05; "0.05" → 0.05. */
export function parseRate(text: string): number | undefined {
  const s = text.trim();
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(s);
  if (pct) return Number(pct[1]) / 100;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  return undefined;
}
