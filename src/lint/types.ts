import type { AppModel, ObjectId } from '../manifests/model.js';
import type { FieldPath, LoadedObject, ManifestSet } from '../manifests/types.js';

export type Severity = 'error' | 'warning' | 'info';

export type RuleId =
  | 'readiness-gate-label'
  | 'target-type-ip'
  | 'readiness-probe'
  | 'prestop-missing'
  | 'grace-period-too-short'
  | 'deregistration-delay'
  | 'recreate-strategy'
  | 'max-unavailable'
  | 'selector-mismatch'
  | 'backend-missing'
  | 'healthcheck-path'
  | 'progress-deadline'
  | 'replicas-with-hpa'
  | 'keep-alive-timeout';

export interface Finding {
  rule: RuleId;
  severity: Severity;
  message: string;
  fix: string;
  file: string;
  line: number;
  object: { kind: string; namespace: string; name: string };
}

export interface LintOptions {
  severity?: Partial<Record<RuleId, Severity | 'off'>>;
  readinessGates: 'inject' | 'require' | 'off';
  /** The application's own shutdown time after SIGTERM (default 5). */
  shutdownSeconds: number;
}

export interface LintReport {
  /** Sorted by file, line, rule. */
  findings: Finding[];
}

export const RULES: ReadonlyArray<{ id: RuleId; defaultSeverity: Severity; summary: string }> = [
  { id: 'readiness-gate-label', defaultSeverity: 'error', summary: 'namespace of an ip-routed workload lacks elbv2.k8s.aws/pod-readiness-gate-inject=enabled' },
  { id: 'target-type-ip', defaultSeverity: 'error', summary: 'target type is instance (the default): readiness gates cannot work' },
  { id: 'readiness-probe', defaultSeverity: 'error', summary: 'serving container has no readinessProbe' },
  { id: 'prestop-missing', defaultSeverity: 'error', summary: 'serving container has no preStop sleep' },
  { id: 'grace-period-too-short', defaultSeverity: 'error', summary: 'terminationGracePeriodSeconds < preStop sleep + shutdown time' },
  { id: 'deregistration-delay', defaultSeverity: 'error', summary: "deregistration delay ≥ preStop sleep, or left at AWS's 300 s" },
  { id: 'recreate-strategy', defaultSeverity: 'error', summary: 'strategy Recreate removes every target at once' },
  { id: 'max-unavailable', defaultSeverity: 'error', summary: 'maxUnavailable allows zero available pods' },
  { id: 'selector-mismatch', defaultSeverity: 'error', summary: 'Ingress-backend Service selects no pod template' },
  { id: 'backend-missing', defaultSeverity: 'error', summary: 'Ingress backend names a Service or port that does not exist' },
  { id: 'healthcheck-path', defaultSeverity: 'warning', summary: 'ALB health-check path differs from the readinessProbe path' },
  { id: 'progress-deadline', defaultSeverity: 'warning', summary: 'progressDeadlineSeconds shorter than the estimated rollout time' },
  { id: 'replicas-with-hpa', defaultSeverity: 'warning', summary: 'spec.replicas is set although a HorizontalPodAutoscaler scales the workload' },
  { id: 'keep-alive-timeout', defaultSeverity: 'error', summary: "the app's declared keep-alive timeout (alb-rollout.dev/keep-alive-timeout) is not above the ALB idle timeout" },
];

export const RULE_IDS: ReadonlySet<string> = new Set(RULES.map((r) => r.id));

/** A finding as a rule produces it: still attached to its object, before overrides are applied. */
export interface RawFinding {
  rule: RuleId;
  /** The rule's severity in this context (may differ from the default, e.g. downgraded when deploy fixes it). */
  severity: Severity;
  message: string;
  fix: string;
  /** Where to point (file:line of `path`, or its nearest existing ancestor); its `alb-rollout.dev/lint-*` annotations apply. */
  at: LoadedObject;
  path: FieldPath;
  /** The object the finding is about when it is not `at` (a namespace that is not in the manifests). */
  object?: ObjectId;
  /** Further objects whose lint annotations apply (the Deployment, for namespace-level findings). */
  alsoAnnotatedOn?: LoadedObject[];
}

export interface RuleContext {
  set: ManifestSet;
  model: AppModel;
  options: LintOptions;
}

export type RuleFamily = (ctx: RuleContext) => RawFinding[];
