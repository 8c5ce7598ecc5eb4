import { lintManifests, type LintReport } from '../lint/index.js';
import { loadManifests } from '../manifests/load.js';
import { buildModel, type AppModel } from '../manifests/model.js';
import type { ManifestSet } from '../manifests/types.js';
import type { Options } from '../options.js';
import { tuneManifests, type TimerPlan, type TuneResult, type TuningChange } from '../tune/index.js';
import { estimateRollouts, type RolloutEstimate } from './estimate.js';
import { buildPhases, namespacesThatMustExist, type PlanPhase, type PlanRoute } from './phases.js';

export interface Plan {
  phases: PlanPhase[];
  changes: TuningChange[];
  estimates: RolloutEstimate[];
  mustExist: Array<{ name: string; referencedBy: string[] }>;
  timers: TimerPlan[];
  /** Namespaces whose workloads sit behind ip target groups: the ones that need the readiness-gate label. */
  gateNamespaces: string[];
}

/** Everything that needs no cluster: the manifests as loaded and as tuned, their model, lint findings and the plan. */
export interface Preflight {
  original: ManifestSet;
  /** What would be applied: the tuned manifests with `tune auto`, else the originals. */
  set: ManifestSet;
  model: AppModel;
  tune: TuneResult;
  lint: LintReport;
  plan: Plan;
}

export interface PreflightIo {
  readStdin?: () => Promise<string>;
}

export async function preflight(options: Options, io: PreflightIo): Promise<Preflight> {
  const original = await loadManifests({
    paths: options.manifests,
    defaultNamespace: options.namespace,
    baseDir: options.baseDir,
    ...(io.readStdin ? { readStdin: io.readStdin } : {}),
  });
  const tune = tuneManifests(original, {
    mode: options.tune,
    shutdownSeconds: options.shutdownSeconds,
    addPreStop: options.addPreStop,
  });
  const set = tune.set;
  const model = buildModel(set);
  const lint = lintManifests(set, {
    severity: options.severity,
    readinessGates: options.readinessGates,
    shutdownSeconds: options.shutdownSeconds,
  });
  const estimates = estimateRollouts(model, {});
  const routes = planRoutes(model);
  const gated = gateNamespaces(model, routes);
  const phases = buildPhases({
    objects: set.objects,
    routes,
    gateNamespaces: gated,
    readinessGates: options.readinessGates,
    workloads: model.deployments.map((d) => ({
      kind: d.loaded.ref.kind,
      namespace: d.namespace,
      name: d.name,
      routes: routes.filter((r) => d.services.some((s) => s.namespace === r.service.namespace && s.name === r.service.name)),
    })),
  });
  return {
    original,
    set,
    model,
    tune,
    lint,
    plan: { phases, changes: tune.changes, estimates, mustExist: namespacesThatMustExist(set.objects), timers: tune.timers, gateNamespaces: gated },
  };
}

function planRoutes(model: AppModel): PlanRoute[] {
  return model.targetGroups.map((tg) => ({
    ingress: { namespace: tg.ingress.namespace, name: tg.ingress.name },
    service: { namespace: tg.service.namespace, name: tg.service.name },
    port: tg.port,
    targetType: tg.targetType,
  }));
}

function gateNamespaces(model: AppModel, routes: PlanRoute[]): string[] {
  const ns = new Set(routes.filter((r) => r.targetType === 'ip').map((r) => r.service.namespace));
  return [...ns].filter((n) => model.deployments.some((d) => d.namespace === n)).sort();
}
