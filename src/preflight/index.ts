import { lintManifests, type LintReport } from '../lint/index.js';
import { loadManifests } from '../manifests/load.js';
import { buildModel, type AppModel } from '../manifests/model.js';
import { scopeFromSetCrds } from '../manifests/scope.js';
import type { ManifestSet } from '../manifests/types.js';
import type { Options } from '../options.js';
import { buildPlan, type Plan } from '../plan/index.js';
import { tuneManifests, type TuneResult } from '../tune/index.js';

export type { Plan } from '../plan/index.js';

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
  const loaded = await loadManifests({
    paths: options.manifests,
    defaultNamespace: options.namespace,
    baseDir: options.baseDir,
    ...(io.readStdin ? { readStdin: io.readStdin } : {}),
  });
  const original: ManifestSet = { ...loaded, objects: scopeFromSetCrds(loaded.objects) };
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
  return { original, set, model, tune, lint, plan: buildPlan(set, model, tune, options) };
}
