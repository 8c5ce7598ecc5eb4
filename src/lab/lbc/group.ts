import type { KubeObject } from '../../manifests/types.js';
import { lbcGroupLoadBalancerName, lbcResourceName } from '../alb/names.js';
import type { ClusterAccess } from '../cluster.js';
import { ANN, INGRESS_FINALIZER, isAlbIngress } from './annotations.js';

/**
 * IngressGroups as LBC loads them (pkg/ingress/group_loader.go, group.go):
 *
 * - an Ingress with `alb.ingress.kubernetes.io/group.name` belongs to the explicit group of that name (one ALB for
 *   every Ingress of the group, in any namespace); without it, it is its own implicit group `<namespace>/<name>`;
 * - a group name must match `^([a-z0-9][-a-z0-9.]*)?[a-z0-9]$` and be at most 63 characters; an Ingress with an
 *   invalid name belongs to no group (it leaves the group it had a finalizer for);
 * - members are sorted by `group.order` (-1000..1000, default 0), then by `<namespace>/<name>`; an order outside the
 *   range or not an int32 fails the load of the whole group;
 * - an Ingress being deleted, moved to another group or no longer of the ALB class is an *inactive* member while it
 *   still carries the group's finalizer (`group.ingress.k8s.aws/<name>` explicit, `ingress.k8s.aws/resources`
 *   implicit): its rules leave the ALB, then the finalizer is removed.
 *
 * Not emulated: IngressClassParams (its `group`, `scheme`, `loadBalancerName`), the `kubernetes.io/ingress.class`
 * annotation taking priority over `ingressClassName`, deletion protection of inactive members.
 * A group key is the group name (explicit, never contains '/') or `<namespace>/<name>` (implicit).
 */

export const GROUP_NAME_ANN = `${ANN}group.name`;
export const GROUP_ORDER_ANN = `${ANN}group.order`;
export const EXPLICIT_GROUP_FINALIZER_PREFIX = 'group.ingress.k8s.aws/';
const GROUP_NAME_RE = /^([a-z0-9][-a-z0-9.]*)?[a-z0-9]$/;

/** A group that cannot be loaded (LBC logs these and retries; no event is recorded). */
export class GroupLoadError extends Error {}

export function isExplicitGroup(key: string): boolean {
  return !key.includes('/');
}

export function groupFinalizer(key: string): string {
  return isExplicitGroup(key) ? `${EXPLICIT_GROUP_FINALIZER_PREFIX}${key}` : INGRESS_FINALIZER;
}

function ingressKey(ing: KubeObject): string {
  return `${ing.metadata.namespace ?? 'default'}/${ing.metadata.name}`;
}

/** LBC's validateGroupName message, or undefined for a valid name. */
export function groupNameProblem(name: string): string | undefined {
  if (!GROUP_NAME_RE.test(name)) return "groupName must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  if (name.length > 63) return 'groupName must be no more than 63 characters';
  return undefined;
}

/** The group an Ingress belongs to: a key, `undefined` (being deleted, not ours), or `{ invalid }` (bad group name). */
export function groupOf(store: ClusterAccess, ing: KubeObject): string | { invalid: string } | undefined {
  if (ing.metadata.deletionTimestamp) return undefined;
  if (!isAlbIngress(store, ing)) return undefined;
  const name = ing.metadata.annotations?.[GROUP_NAME_ANN];
  if (name !== undefined) {
    const problem = groupNameProblem(name);
    return problem ? { invalid: problem } : name;
  }
  return ingressKey(ing);
}

function hasGroupFinalizer(ing: KubeObject, key: string): boolean {
  const fins = (ing.metadata.finalizers as string[] | undefined) ?? [];
  if (!fins.includes(groupFinalizer(key))) return false;
  return isExplicitGroup(key) || ingressKey(ing) === key;
}

/** The groups whose finalizers an Ingress carries (they must reconcile when it changes: it may have left them). */
export function groupsPendingFinalization(ing: KubeObject): string[] {
  const out: string[] = [];
  for (const f of (ing.metadata.finalizers as string[] | undefined) ?? []) {
    if (f === INGRESS_FINALIZER) out.push(ingressKey(ing));
    else if (f.startsWith(EXPLICIT_GROUP_FINALIZER_PREFIX)) out.push(f.slice(EXPLICIT_GROUP_FINALIZER_PREFIX.length));
  }
  return out;
}

export interface IngressGroup {
  key: string;
  /** Active members in LBC's order (group.order, then namespace/name). */
  members: KubeObject[];
  /** Former members that still hold the group finalizer. */
  inactive: KubeObject[];
}

/** Loads one group from all Ingresses of the cluster; throws GroupLoadError with LBC's messages. */
export function loadGroup(store: ClusterAccess, key: string, ingresses: KubeObject[] = store.list('Ingress').items): IngressGroup {
  const members: Array<{ ing: KubeObject; order: number }> = [];
  const inactive: KubeObject[] = [];
  for (const ing of ingresses) {
    const g = groupOf(store, ing);
    if (typeof g === 'string' && g === key) {
      const raw = ing.metadata.annotations?.[GROUP_ORDER_ANN];
      let order = 0;
      if (raw !== undefined) {
        const n = /^[+-]?\d+$/.test(raw) ? Number(raw) : NaN;
        if (!Number.isInteger(n) || n < -2147483648 || n > 2147483647) {
          const why = Number.isNaN(n) ? `strconv.ParseInt: parsing "${raw}": invalid syntax` : `strconv.ParseInt: parsing "${raw}": value out of range`;
          throw new GroupLoadError(`failed to load Ingress group order for ingress: ${ingressKey(ing)}: failed to parse int32 annotation, ${GROUP_ORDER_ANN}: ${raw}: ${why}`);
        }
        if (n < -1000 || n > 1000) {
          throw new GroupLoadError(`explicit Ingress group order must be within [-1000:1000], Ingress: ${ingressKey(ing)}, order: ${n}`);
        }
        order = n;
      }
      members.push({ ing, order });
    } else if (hasGroupFinalizer(ing, key)) {
      inactive.push(ing);
    }
  }
  members.sort((a, b) => a.order - b.order || (ingressKey(a.ing) < ingressKey(b.ing) ? -1 : ingressKey(a.ing) > ingressKey(b.ing) ? 1 : 0));
  return { key, members: members.map((m) => m.ing), inactive };
}

/** The k8s labels LBC puts on a stack's TargetGroupBindings (its tracking provider's StackLabels). */
export function groupStackLabels(key: string): Record<string, string> {
  if (isExplicitGroup(key)) return { 'ingress.k8s.aws/stack': key };
  const [ns, name] = key.split('/') as [string, string];
  return { 'ingress.k8s.aws/stack-namespace': ns, 'ingress.k8s.aws/stack-name': name };
}

/** The ALB name of a group: `k8s-<17 alnum of group name>-<hash>` (explicit) or `k8s-<ns8>-<name8>-<hash>` (implicit). */
export function groupLoadBalancerName(clusterName: string, key: string, scheme: string): string {
  if (isExplicitGroup(key)) return lbcGroupLoadBalancerName(key, [clusterName, key, scheme]);
  const [ns, name] = key.split('/') as [string, string];
  return lbcResourceName(ns, name, [clusterName, key, scheme]);
}
