import { buildModel } from '../manifests/model.js';
import type { ManifestSet } from '../manifests/types.js';
import { readinessRules } from './readiness.js';
import { routingRules } from './routing.js';
import { finalizeFindings } from './severity.js';
import { strategyRules } from './strategy.js';
import { terminationRules } from './termination.js';
import { transportRules } from './transport.js';
import type { LintOptions, LintReport, RuleFamily } from './types.js';

export { RULES, type Finding, type LintOptions, type LintReport, type RuleId, type Severity } from './types.js';
export { LINT_DISABLE_ANNOTATION, LINT_SEVERITY_ANNOTATION } from './severity.js';

/** One file per rule family; each turns the application model into raw findings. */
const FAMILIES: RuleFamily[] = [readinessRules, terminationRules, strategyRules, routingRules, transportRules];

/** Finds zero-downtime pitfalls in the manifests. Pure: no cluster, no AWS. Findings are sorted by file, line, rule. */
export function lintManifests(set: ManifestSet, options: LintOptions): LintReport {
  const model = buildModel(set);
  const ctx = { set, model, options };
  return { findings: finalizeFindings(FAMILIES.flatMap((family) => family(ctx)), options) };
}
