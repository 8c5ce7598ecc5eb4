import { ExitCode } from '../errors.js';
import { KubeApiError } from '../kube/client.js';
import { Informer } from '../kube/informer.js';
import type { JsonObject, KubeObject, LoadedObject } from '../manifests/types.js';
import { crdKindOf, crdKinds, withScope } from '../manifests/scope.js';
import { argoManagedServices, selectorIsArgos, withoutSelector } from '../plan/checks/argo-rollout.js';
import { checkCrdsEstablished } from '../plan/checks/crd.js';
import type { PlanStep } from '../plan/steps.js';
import type { RunContext } from './context.js';
import { DeployError, GATE_LABEL, type DeployOptions, type DeployDeps, type RunState } from './types.js';
import { waitUntil } from './wait.js';
import { unsyncedMessage } from './workload.js';

/** The steps that write objects: preflight (lint gate, server-side dry-run), apply, labels, CRDs established. */

export function id(o: LoadedObject): string {
  return o.ref.namespace ? `${o.ref.kind} ${o.ref.namespace}/${o.ref.name}` : `${o.ref.kind} ${o.ref.name}`;
}

/** Lint errors stop the run; then a server-side dry-run of every object (those in namespaces the run creates: right after they exist). */
export async function runPreflight(ctx: RunContext): Promise<void> {
  const { pre, options, deps, state, rec } = ctx;
  rec.enter('preflight');
  const errors: string[] = [];
  for (const f of pre.lint.findings.filter((x) => x.severity === 'error')) {
    let extra = '';
    if (f.rule === 'readiness-gate-label') {
      // The label may have been added outside these manifests (kubectl label, as the fix says): the cluster decides.
      const ns = f.object.name;
      const live = await deps.kube.get('v1', 'Namespace', '', ns);
      if (live?.metadata.labels?.[GATE_LABEL] === 'enabled') {
        state.labelledInCluster.add(ns);
        deps.log.info(`namespace ${ns} carries ${GATE_LABEL}=enabled in the cluster (not in the manifests): readiness gates will be injected; the label is kept on apply`);
        continue;
      }
      if (live) extra = `\n    or label the existing namespace now: kubectl label namespace ${ns} ${GATE_LABEL}=enabled (then re-run; the label is kept), or re-run with --readiness-gates inject to let alb-rollout add it`;
    }
    errors.push(`  ${f.file}:${f.line} ${f.rule}: ${f.message}\n    fix: ${f.fix}${extra}`);
  }
  if (errors.length > 0) {
    throw new DeployError(`lint found ${errors.length} error(s); nothing was applied:\n${errors.join('\n')}`, 'preflight');
  }
  await resolveScopes(ctx);
  await findArgoSelectors(ctx);
  // Custom resources of kinds a CRD in this set defines cannot be dry-run before the CRD is Established.
  const crd = crdKinds(pre.set.objects);
  const customResources = pre.set.objects.filter((o) => crd.has(crdKindOf(o)));
  if (customResources.length > 0) {
    const msg = `${customResources.length} custom resource(s) of kinds this set's CustomResourceDefinitions define are validated by the API server once those CRDs are Established${options.dryRun ? ' (not in this dry-run: the CRDs do not exist yet)' : ''}`;
    if (options.dryRun) rec.warn(msg);
    else deps.log.info(msg);
  }
  const missingNamespaces = await dryRunAll(pre.set.objects.filter((o) => !crd.has(crdKindOf(o))), options, deps, undefined, (o) => bodyToApply(o, state));
  if (missingNamespaces.size > 0) {
    const waiting = pre.set.objects.filter((o) => o.ref.kind !== 'Namespace' && missingNamespaces.has(o.ref.namespace));
    if (options.dryRun) {
      const msg = `${waiting.length} object(s) in namespace(s) ${[...missingNamespaces].join(', ')} were not validated by the API server: those namespaces do not exist yet (a dry-run creates nothing); a real run validates them right after creating the namespaces, before applying anything else`;
      rec.warn(msg);
    } else {
      deps.log.info(`server-side dry-run of objects in ${[...missingNamespaces].join(', ')} runs after those namespaces are created`);
    }
  }
  if (options.dryRun) {
    const validated = pre.set.objects.filter((o) => !missingNamespaces.has(o.ref.namespace) || o.ref.kind === 'Namespace').length;
    rec.note('applied', `dry-run: ${validated} of ${pre.set.objects.length} object(s) validated by the API server; nothing was applied`);
  }
}

/** A field path from an API Status cause (".spec.replicas", "spec.template.spec.containers[0].image", `containers[name="app"]`). */
function fieldPath(field: string, obj: KubeObject): Array<string | number> {
  const out: Array<string | number> = [];
  let node: unknown = obj;
  for (const part of field.replace(/^\./, '').split('.').filter(Boolean)) {
    const m = /^([^[]+)((?:\[[^\]]*\])*)$/.exec(part);
    if (!m) break;
    out.push(m[1] as string);
    node = (node as JsonObject | undefined)?.[m[1] as string];
    for (const sel of (m[2] ?? '').match(/\[[^\]]*\]/g) ?? []) {
      const inner = sel.slice(1, -1);
      let index = /^\d+$/.test(inner) ? Number(inner) : -1;
      const kv = /^(\w+)="?([^"]*)"?$/.exec(inner);
      if (kv && Array.isArray(node)) index = (node as JsonObject[]).findIndex((x) => String(x?.[kv[1] as string]) === kv[2]);
      if (index < 0) return out;
      out.push(index);
      node = Array.isArray(node) ? node[index] : undefined;
    }
  }
  return out;
}

/** "file:line" of the field an API error names (its first cause with a field), else of the object. */
function whereRejected(o: LoadedObject, err: KubeApiError): string {
  const causes = (((err.status?.details as JsonObject | undefined)?.causes ?? []) as JsonObject[]).filter((c) => typeof c.field === 'string' && c.field !== '');
  const first = causes[0];
  const at = first ? o.locate(fieldPath(String(first.field), o.object)) : o.source;
  return `${at.file}:${at.line}`;
}

export async function dryRunAll(
  objects: LoadedObject[],
  options: Pick<DeployOptions, 'forceConflicts'>,
  deps: DeployDeps,
  onlyNamespaces?: Set<string>,
  bodyOf: (o: LoadedObject) => KubeObject = (o) => o.object,
): Promise<Set<string>> {
  const missing = new Set<string>();
  const existing = new Map<string, boolean>();
  const manifestNamespaces = new Set(objects.filter((o) => o.ref.kind === 'Namespace').map((o) => o.ref.name));
  const problems: string[] = [];
  let invalid = false;
  const conflicts: string[] = [];
  for (const o of objects) {
    const ns = o.ref.namespace;
    if (onlyNamespaces && !onlyNamespaces.has(ns)) continue;
    // A namespace-scoped deployer may not read Namespaces (403): the dry-run itself then says whether it exists.
    if (ns && !existing.has(ns)) existing.set(ns, await deps.kube.get('v1', 'Namespace', '', ns).then((n) => n !== undefined, (err: unknown) => (err instanceof KubeApiError && err.code === 403 ? true : Promise.reject(err))));
    if (ns && !existing.get(ns)) {
      if (manifestNamespaces.has(ns)) {
        missing.add(ns);
        continue;
      }
      invalid = true;
      problems.push(`${o.source.file}:${o.source.line} ${id(o)}: expected namespace ${ns} to exist, but it does not and the manifests do not create it. Fix: add a Namespace manifest or create it first (kubectl create namespace ${ns}).`);
      continue;
    }
    try {
      await deps.kube.apply(bodyOf(o), { dryRun: true, force: options.forceConflicts });
    } catch (err) {
      if (!(err instanceof KubeApiError)) throw err;
      if (err.code === 409) {
        conflicts.push(id(o));
        problems.push(`${whereRejected(o, err)} ${id(o)}: another field manager owns fields this apply would change: ${err.message}`);
      } else {
        // 400/404/422: the object itself is wrong (schema, validation, a kind the cluster does not serve).
        if (err.code === 400 || err.code === 404 || err.code === 422) invalid = true;
        problems.push(`${whereRejected(o, err)} ${id(o)}: the API server rejects it: ${err.message}`);
      }
    }
  }
  if (problems.length > 0) {
    const fixes: string[] = [];
    if (conflicts.length > 0) {
      fixes.push(
        'Fix the conflicts: remove those fields from the manifests (let the other manager own them), or re-run with --force-conflicts to take ownership ' +
          '(the other manager — often kubectl, a Helm release or an autoscaler — is overruled and may change them back).',
      );
    }
    if (invalid) fixes.push('Fix the manifests at the lines named above and re-run (`alb-rollout deploy --dry-run` checks them without applying).');
    throw new DeployError(
      `server-side dry-run failed; nothing was applied:\n${problems.map((p) => `  ${p}`).join('\n')}\n${fixes.join('\n')}`,
      'preflight',
      invalid ? ExitCode.invalidInput : ExitCode.failed,
    );
  }
  return missing;
}

/** Server-side apply of one step's objects, in the plan's order (Namespaces get the gate label the plan asks for). */
export async function applyStep(step: Extract<PlanStep, { type: 'apply' }>, ctx: RunContext): Promise<void> {
  const { pre, options, state, rec } = ctx;
  rec.enter(step.phase);
  const label = new Set(step.labelNamespaces);
  for (const i of step.index) {
    const o = pre.set.objects[i] as LoadedObject;
    let obj = bodyToApply(o, state);
    const keepLabel = options.readinessGates !== 'off' && state.labelledInCluster.has(o.ref.name);
    if (o.ref.kind === 'Namespace' && (label.has(o.ref.name) || keepLabel)) {
      obj = { ...obj, metadata: { ...obj.metadata, labels: { ...(obj.metadata.labels ?? {}), [GATE_LABEL]: 'enabled' } } };
    }
    await applyOne(o, obj, ctx);
  }
}

/** Objects in namespaces that did not exist at preflight: dry-run them now, before any of them is written. */
export async function deferredDryRun(step: Extract<PlanStep, { type: 'deferred-dry-run' }>, ctx: RunContext): Promise<void> {
  ctx.rec.enter(step.phase);
  const created = new Set(step.namespaces);
  const crd = crdKinds(ctx.pre.set.objects);
  const objects = ctx.pre.set.objects.filter((o) => o.ref.kind !== 'Namespace' && (created.has(o.ref.namespace) || crd.has(crdKindOf(o))));
  await dryRunAll(objects, ctx.options, ctx.deps, undefined, (o) => bodyToApply(o, ctx.state));
}

/** What is applied for an object: the manifest, or for a Service whose selector Argo keeps, the manifest without it. */
export function bodyToApply(o: LoadedObject, state: Pick<RunState, 'argoSelectors'>): KubeObject {
  return o.ref.kind === 'Service' && state.argoSelectors.has(`${o.ref.namespace}/${o.ref.name}`) ? withoutSelector(o.object) : o.object;
}

/** The set's Services that its Rollouts route through and whose live selector Argo has taken over (plan/checks/argo-rollout.ts). */
async function findArgoSelectors(ctx: RunContext): Promise<void> {
  const { pre, deps, state } = ctx;
  const managed = argoManagedServices(pre.set.objects.filter((o) => o.ref.kind === 'Rollout' && o.ref.apiVersion.startsWith('argoproj.io/')).map((o) => o.object));
  for (const o of pre.set.objects) {
    const key = `${o.ref.namespace}/${o.ref.name}`;
    if (o.ref.kind !== 'Service' || !managed.has(key)) continue;
    const live = await deps.kube.get('v1', 'Service', o.ref.namespace, o.ref.name);
    if (!selectorIsArgos(o.object, live)) continue;
    state.argoSelectors.add(key);
    deps.log.info(`Service ${key}: its selector is the Rollout's (Argo added rollouts-pod-template-hash and owns it): applied without spec.selector, so Argo keeps routing`);
  }
}

/**
 * Scope from discovery: each kind the cluster serves says whether it is namespaced (the built-in table only guessed
 * offline, and a kind it does not know got no namespace). Kinds the set's CRDs define already took their CRD's
 * scope; kinds the cluster does not serve are left to the dry-run, which names them.
 */
async function resolveScopes(ctx: RunContext): Promise<void> {
  const { pre, deps } = ctx;
  const crd = crdKinds(pre.set.objects);
  const objects = pre.set.objects;
  for (let i = 0; i < objects.length; i++) {
    const o = objects[i] as LoadedObject;
    if (crd.has(crdKindOf(o))) continue;
    let namespaced: boolean;
    try {
      namespaced = (await deps.kube.resource(o.ref.apiVersion, o.ref.kind)).namespaced;
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) continue;
      throw err;
    }
    const resolved = withScope(o, namespaced);
    if (resolved === o) continue;
    // The one place the run changes the set it was given: the cluster knows the scope better than the table.
    objects[i] = resolved;
    if (o.ref.namespace && !namespaced) deps.log.info(`${o.ref.kind} ${o.ref.name} is cluster-scoped in this cluster: applied without the namespace ${o.ref.namespace}`);
  }
}

/** The CRDs the set creates serve their kinds before anything that uses them is dry-run or applied. */
export async function waitForCrds(step: Extract<PlanStep, { type: 'crd-established' }>, ctx: RunContext): Promise<void> {
  const { options, deps, rec } = ctx;
  rec.enter(step.phase);
  const crds = new Informer(deps.kube, { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', namespace: '' });
  crds.start();
  try {
    await waitUntil(
      () => {
        const unsynced = unsyncedMessage([crds]);
        if (unsynced) return { done: false, message: unsynced };
        return checkCrdsEstablished(step.crds, new Map(crds.list().map((c) => [c.metadata.name, c])));
      },
      {
        what: 'waiting for CustomResourceDefinitions to be Established',
        deadlineMs: options.timeouts.routingSeconds * 1000,
        recheckMs: 1000,
        log: deps.log,
        now: deps.now,
        hint: `Fix: kubectl get crd ${step.crds.join(' ')} -o yaml shows the conditions; raise --routing-timeout if the API server is only slow.`,
        subscribe: (fn) => crds.onChange(fn),
      },
    );
    rec.note('applied', `CustomResourceDefinition(s) ${step.crds.join(', ')} Established`);
  } finally {
    await crds.stop();
  }
}

export async function applyOne(o: LoadedObject, obj: KubeObject, ctx: RunContext): Promise<KubeObject> {
  const { options, deps, state, rec } = ctx;
  try {
    const result = await deps.kube.apply(obj, { force: options.forceConflicts });
    state.applied.push(id(o));
    rec.note('applied', `applied ${id(o)}`, { file: o.source.file, line: o.source.line });
    return result;
  } catch (err) {
    if (err instanceof KubeApiError && err.code === 409) {
      throw new DeployError(
        `${whereRejected(o, err)} ${id(o)}: another field manager owns fields this apply changes: ${err.message}. ` +
          'Fix: remove those fields from the manifest, or re-run with --force-conflicts to take ownership (the other manager — often kubectl or a Helm release — will be overruled).',
        rec.currentPhase ?? 'apply',
      );
    }
    throw err;
  }
}

/** Namespaces that hold gated workloads but are not in the manifests: label them (inject) or require the label. */
export async function ensureGateLabels(step: Extract<PlanStep, { type: 'namespace-labels' }>, ctx: RunContext): Promise<void> {
  const { pre, options, deps, rec } = ctx;
  rec.enter(step.phase);
  if (options.readinessGates === 'off') return;
  const inManifests = new Set(pre.set.objects.filter((o) => o.ref.kind === 'Namespace').map((o) => o.ref.name));
  for (const ns of new Set([...step.namespaces, ...ctx.clusterGateNamespaces])) {
    let current: KubeObject | undefined;
    try {
      current = await deps.kube.get('v1', 'Namespace', '', ns);
    } catch (err) {
      if (!(err instanceof KubeApiError && err.code === 403)) throw err;
      // A namespace-scoped deployer may not read Namespaces: the pods decide instead. A new pod without the gate
      // (an unlabelled namespace) stops the workload wait before any old pod is at risk.
      rec.warn(
        `cannot read namespace ${ns} to check its ${GATE_LABEL}=enabled label (403: these credentials are namespace-scoped)${options.readinessGates === 'inject' ? ' or add it' : ''}; ` +
          'the rollout checks instead that every new pod carries its readiness gate, and stops if one does not. ' +
          `Fix if it stops: kubectl label namespace ${ns} ${GATE_LABEL}=enabled (an admin), or grant get/patch on namespaces (examples/rbac, the ClusterRole).`,
      );
      continue;
    }
    if (!current) throw new DeployError(`namespace ${ns} does not exist. Fix: add a Namespace manifest or create it first.`, 'namespaces');
    if (current.metadata.labels?.[GATE_LABEL] === 'enabled') continue;
    if (options.readinessGates === 'require') {
      throw new DeployError(
        `namespace ${ns} lacks the label ${GATE_LABEL}=enabled, so the AWS Load Balancer Controller will not inject readiness gates and old pods would be removed before new targets are healthy. ` +
          `Fix: kubectl label namespace ${ns} ${GATE_LABEL}=enabled (or run with --readiness-gates inject).`,
        'namespaces',
      );
    }
    if (inManifests.has(ns) && step.namespaces.includes(ns)) continue; // applied above with the label
    await deps.kube.patch('v1', 'Namespace', '', ns, { metadata: { labels: { [GATE_LABEL]: 'enabled' } } }, 'merge');
    rec.note('namespace-labelled', `labelled namespace ${ns} ${GATE_LABEL}=enabled (readiness gates are injected into pods created from now on)`);
  }
}

