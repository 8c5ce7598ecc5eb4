import type { JsonObject, KubeObject } from '../../manifests/types.js';
import type { ClusterAccess } from '../cluster.js';
import { o, s } from './util.js';

/** Annotation parsing with LBC's rules and error texts. */

export const ANN = 'alb.ingress.kubernetes.io/';
export const INGRESS_FINALIZER = 'ingress.k8s.aws/resources';
export const TGB_FINALIZER = 'elbv2.k8s.aws/resources';
export const GATE_PREFIX = 'target-health.elbv2.k8s.aws';
export const LEGACY_GATE_PREFIX = 'target-health.alb.ingress.k8s.aws';
export const GATE_INJECT_LABEL = 'elbv2.k8s.aws/pod-readiness-gate-inject';
export const ALB_CONTROLLER = 'ingress.k8s.aws/alb';

export class BuildModelError extends Error {}

/** `k1=v1,k2=v2` (with `\,` escapes): each pair split on the first `=`, trimmed; empty key or no `=` is an error. */
export function parseStringMap(annotation: string, raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch === '\\' && raw[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (ch === ',') {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  for (const p of parts) {
    if (p.trim() === '') continue;
    const eq = p.indexOf('=');
    const k = eq < 0 ? '' : p.slice(0, eq).trim();
    if (eq < 0 || k === '') throw new BuildModelError(`failed to parse stringMap annotation, ${annotation}: ${raw}`);
    out[k] = p.slice(eq + 1).trim();
  }
  return out;
}

/** Service annotations win over Ingress annotations, whole value per key (LBC's MergeStringMap(svc, ing)). */
export function mergedAnnotation(svc: KubeObject | undefined, ing: KubeObject, name: string): string | undefined {
  const full = ANN + name;
  return svc?.metadata.annotations?.[full] ?? ing.metadata.annotations?.[full];
}

export function intAnnotation(svc: KubeObject | undefined, ing: KubeObject, name: string, dflt: number): number {
  const v = mergedAnnotation(svc, ing, name);
  if (v === undefined) return dflt;
  if (!/^-?\d+$/.test(v.trim())) throw new BuildModelError(`failed to parse int64 annotation, ${ANN + name}: ${v}`);
  return Number(v.trim());
}

/** Does this Ingress belong to the ALB controller (ingressClassName, the legacy annotation, or the default class)? */
export function isAlbIngress(store: ClusterAccess, ing: KubeObject): boolean {
  const spec = o(ing.spec);
  const cls = s(spec.ingressClassName);
  if (cls) {
    const ic = store.get('IngressClass', '', cls);
    if (ic) return s(o(ic.spec).controller) === ALB_CONTROLLER;
    return cls === 'alb';
  }
  const ann = ing.metadata.annotations?.['kubernetes.io/ingress.class'];
  if (ann !== undefined) return ann === 'alb';
  return store
    .list('IngressClass')
    .items.some((ic) => ic.metadata.annotations?.['ingressclass.kubernetes.io/is-default-class'] === 'true' && s(o(ic.spec).controller) === ALB_CONTROLLER);
}

export function gateConditionType(tgbName: string): string {
  return `${GATE_PREFIX}/${tgbName}`;
}

export function selectorMatches(selector: JsonObject, labels: Record<string, string> | undefined): boolean {
  const keys = Object.keys(selector);
  if (keys.length === 0) return false; // an empty selector matches nothing (labels.Nothing())
  return keys.every((k) => (labels ?? {})[k] === s(selector[k]));
}
