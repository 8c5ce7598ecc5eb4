import type { FieldPath, JsonObject, JsonValue, LoadedObject, ManifestSet } from './types.js';

/**
 * The application model: the relations among the user's objects that matter for a rollout behind an ALB
 * (namespace → Deployment → Service → Ingress → target group), with the AWS Load Balancer Controller's
 * defaults and precedence rules applied. Pure: built from the manifests alone, no cluster.
 *
 * Every model keeps its LoadedObject (and field paths) so that lint and tune can point at file:line.
 */

export const GATE_LABEL = 'elbv2.k8s.aws/pod-readiness-gate-inject';
export const ALB_PREFIX = 'alb.ingress.kubernetes.io/';
export const TG_ATTRIBUTES_ANNOTATION = `${ALB_PREFIX}target-group-attributes`;
export const DEREGISTRATION_DELAY_KEY = 'deregistration_delay.timeout_seconds';
/** What AWS uses when no deregistration delay was ever set on the target group. */
export const AWS_DEFAULT_DEREGISTRATION_DELAY = 300;
export const DEREGISTRATION_DELAY_RANGE = { min: 0, max: 3600 } as const;
export const DEFAULT_GRACE_PERIOD_SECONDS = 30;
export const DEFAULT_PROGRESS_DEADLINE_SECONDS = 600;

/** `alb.ingress.kubernetes.io/*` keys that LBC also reads from a Service (Location "Ingress,Service"); the Service's value wins. */
const SERVICE_OVERRIDABLE = new Set(
  [
    'target-type',
    'backend-protocol',
    'backend-protocol-version',
    'target-group-attributes',
    'healthcheck-port',
    'healthcheck-protocol',
    'healthcheck-path',
    'healthcheck-interval-seconds',
    'healthcheck-timeout-seconds',
    'healthy-threshold-count',
    'unhealthy-threshold-count',
    'success-codes',
    'target-node-labels',
    'auth-type',
    'auth-idp-cognito',
    'auth-idp-oidc',
    'auth-on-unauthenticated-request',
    'auth-scope',
    'auth-session-cookie',
    'auth-session-timeout',
  ].map((k) => ALB_PREFIX + k),
);

export interface ObjectId {
  kind: string;
  namespace: string;
  name: string;
}

export interface NamespaceModel {
  name: string;
  labels: Record<string, string>;
  /** The Namespace object when the manifests hold it; otherwise it must already exist in the cluster. */
  loaded?: LoadedObject;
  /** Whether the namespace carries `elbv2.k8s.aws/pod-readiness-gate-inject: enabled` (only knowable when in the manifests). */
  gateLabel: boolean;
}

export type PreStopModel =
  | { kind: 'none' }
  /** A hook that sleeps: the `sleep` action, or `exec` running `sleep N`. */
  | { kind: 'sleep'; form: 'sleep-action' | 'exec'; seconds: number }
  /** A hook whose duration cannot be read (a script, an HTTP call). */
  | { kind: 'unknown'; description: string };

export interface ProbeModel {
  handler: 'httpGet' | 'tcpSocket' | 'exec' | 'grpc' | 'unknown';
  path?: string;
  port?: number | string;
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
}

export interface ContainerModel {
  name: string;
  index: number;
  /** Path of the container inside its object, e.g. ['spec','template','spec','containers',0]. */
  path: FieldPath;
  ports: Array<{ name?: string; containerPort: number }>;
  preStop: PreStopModel;
  readinessProbe?: ProbeModel;
}

export type IntOrString = number | string;

export interface StrategyModel {
  /** RollingUpdate | Recreate for Deployments; Canary | BlueGreen for Argo Rollouts; RollingUpdate | OnDelete for StatefulSets and DaemonSets. */
  type: string;
  maxSurge: IntOrString;
  maxUnavailable: IntOrString;
}

export interface DeploymentModel {
  loaded: LoadedObject;
  kind: 'Deployment' | 'Rollout' | 'StatefulSet' | 'DaemonSet';
  namespace: string;
  name: string;
  /** spec.replicas; without it, the HPA's minReplicas when an HPA scales it, else Kubernetes's default 1. */
  replicas: number;
  /** Whether spec.replicas is written (an HPA then fights the manifest on every apply). */
  replicasExplicit: boolean;
  /** The HorizontalPodAutoscaler that scales it (set by buildModel, or by the caller from the cluster). */
  hpa?: HpaModel;
  templateLabels: Record<string, string>;
  /** ['spec','template','spec']: where pod-level fields live. */
  podSpecPath: FieldPath;
  containers: ContainerModel[];
  terminationGracePeriodSeconds: number;
  /** False when the default (30 s) applies. */
  gracePeriodExplicit: boolean;
  strategy: StrategyModel;
  minReadySeconds: number;
  progressDeadlineSeconds: number;
  /** Services in the same namespace whose selector the pod template satisfies. */
  services: Array<{ namespace: string; name: string }>;
}

export interface HpaModel {
  loaded: LoadedObject;
  namespace: string;
  name: string;
  /** autoscaling/v2 default: 1. */
  minReplicas: number;
  maxReplicas?: number;
  target: { kind: string; name: string };
}

export interface ServicePortModel {
  name?: string;
  port: number;
  /** Defaults to `port`. A string names a container port. */
  targetPort: IntOrString;
  index: number;
}

export interface ServiceModel {
  loaded: LoadedObject;
  namespace: string;
  name: string;
  type: string;
  /** Absent or empty: the Service selects no pods (endpoints are managed by hand). */
  selector?: Record<string, string>;
  ports: ServicePortModel[];
  annotations: Record<string, string>;
  /** Deployments in the same namespace whose pod template the selector matches. */
  deployments: Array<{ namespace: string; name: string }>;
}

export interface IngressBackendModel {
  serviceName: string;
  port: { number?: number; name?: string };
  /** Path of the `backend` node in the Ingress. */
  path: FieldPath;
  /** Set when the backend is a forward action (`port.name: use-annotation`) naming this Service. */
  viaAction?: string;
}

export interface IngressModel {
  loaded: LoadedObject;
  namespace: string;
  name: string;
  ingressClass?: string;
  /** Handled by the AWS Load Balancer Controller (class `alb`, an IngressClass with controller ingress.k8s.aws/alb, or no class and alb annotations). */
  isAlb: boolean;
  annotations: Record<string, string>;
  backends: IngressBackendModel[];
}

/** An annotation value with the object that supplies it (LBC: the Service's value beats the Ingress's). */
export interface AnnotationSource {
  key: string;
  value: string;
  from: LoadedObject;
}

export interface HealthCheckModel {
  path: string;
  port: string;
  protocol: string;
  intervalSeconds: number;
  timeoutSeconds: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  successCodes: string;
  /** Where the path comes from; undefined when LBC's default applies. */
  pathSource?: AnnotationSource;
}

/** One target group as LBC builds it: one per (Ingress, Service, Service port). */
export interface TargetGroupModel {
  /** "ns/ingress → svc:port", for messages. */
  key: string;
  ingress: IngressModel;
  service: ServiceModel;
  /** The port as the Ingress names it (number or name). */
  port: IntOrString;
  servicePort?: ServicePortModel;
  targetType: string;
  targetTypeSource?: AnnotationSource | { key: 'IngressClassParams.spec.targetType'; value: string; from: LoadedObject };
  healthCheck: HealthCheckModel;
  /** The effective target-group-attributes (whole value from the Service, else the Ingress), parsed. */
  attributes: Record<string, string>;
  attributesSource?: AnnotationSource;
  /** Set when the attributes annotation cannot be parsed (LBC rejects it). */
  attributesError?: string;
  /** Explicit value; undefined means AWS's default (300 s) or whatever was set before. */
  deregistrationDelaySeconds?: number;
  /** Set when the deregistration delay value is not an integer in 0–3600. */
  deregistrationDelayError?: string;
  /** Deployments the Service selects. */
  deployments: DeploymentModel[];
  backendPaths: FieldPath[];
}

/** An explicit TargetGroupBinding in the manifests (a target group created outside LBC's Ingress handling). */
export interface TargetGroupBindingModel {
  loaded: LoadedObject;
  namespace: string;
  name: string;
  serviceName: string;
  port?: IntOrString;
  targetType?: string;
  service?: ServiceModel;
  deployments: DeploymentModel[];
}

export interface AppModel {
  namespaces: NamespaceModel[];
  deployments: DeploymentModel[];
  services: ServiceModel[];
  ingresses: IngressModel[];
  targetGroups: TargetGroupModel[];
  bindings: TargetGroupBindingModel[];
}

/**
 * Models already built, by the identity of the objects array: preflight, tune and lint all ask for the model of the
 * same set. Manifest sets are treated as immutable (tune rewrites copies), so a set's model never goes stale.
 */
const built = new WeakMap<readonly LoadedObject[], AppModel>();

export function buildModel(set: ManifestSet): AppModel {
  const cached = built.get(set.objects);
  if (cached) return cached;
  const model = buildModelUncached(set.objects);
  built.set(set.objects, model);
  return model;
}

function buildModelUncached(objects: LoadedObject[]): AppModel {
  const deployments = objects.filter(isWorkload).map(buildDeployment);
  const services = objects.filter((o) => o.ref.kind === 'Service').map(buildService);
  const byLabel = indexByLabel(deployments);
  for (const svc of services) {
    for (const d of selectorCandidates(byLabel, svc)) {
      if (selectorMatches(svc.selector, d.templateLabels)) {
        svc.deployments.push({ namespace: d.namespace, name: d.name });
        d.services.push({ namespace: svc.namespace, name: svc.name });
      }
    }
  }
  applyHpas(deployments, objects.filter((o) => o.ref.kind === 'HorizontalPodAutoscaler').map(buildHpa));
  const ingressClasses = new Map(objects.filter((o) => o.ref.kind === 'IngressClass').map((o) => [o.ref.name, o]));
  const ingresses = objects.filter((o) => o.ref.kind === 'Ingress').map((o) => buildIngress(o, ingressClasses));
  const serviceIndex = new Map(services.map((s) => [`${s.namespace}/${s.name}`, s]));
  const deploymentIndex = new Map(deployments.map((d) => [`${d.namespace}/${d.name}`, d]));
  const deploymentsOf = (svc: ServiceModel): DeploymentModel[] =>
    svc.deployments.map((r) => deploymentIndex.get(`${r.namespace}/${r.name}`)).filter((d): d is DeploymentModel => d !== undefined);
  const classParams = classParamsTargetTypes(objects, ingressClasses);

  const targetGroups: TargetGroupModel[] = [];
  for (const ing of ingresses.filter((i) => i.isAlb)) {
    const byKey = new Map<string, TargetGroupModel>();
    for (const backend of ing.backends) {
      const svc = serviceIndex.get(`${ing.namespace}/${backend.serviceName}`);
      if (!svc) continue;
      const servicePort = findServicePort(svc, backend.port);
      if (!servicePort) continue;
      const portLabel: IntOrString = backend.port.number ?? backend.port.name ?? servicePort.port;
      const key = `${ing.namespace}/${ing.name} → ${svc.name}:${portLabel}`;
      const existing = byKey.get(key);
      if (existing) {
        existing.backendPaths.push(backend.path);
        continue;
      }
      const tg = buildTargetGroup(key, ing, svc, portLabel, servicePort, deploymentsOf(svc), classParams.get(ing.ingressClass ?? ''));
      tg.backendPaths.push(backend.path);
      byKey.set(key, tg);
      targetGroups.push(tg);
    }
  }

  const bindings = objects
    .filter((o) => o.ref.kind === 'TargetGroupBinding' && o.ref.apiVersion.startsWith('elbv2.k8s.aws/'))
    .map((o): TargetGroupBindingModel => {
      const spec = obj(o.object.spec);
      const serviceRef = obj(spec.serviceRef);
      const serviceName = str(serviceRef.name) ?? '';
      const service = serviceIndex.get(`${o.ref.namespace}/${serviceName}`);
      const port = intOrString(serviceRef.port);
      const targetType = str(spec.targetType);
      return {
        loaded: o,
        namespace: o.ref.namespace,
        name: o.ref.name,
        serviceName,
        ...(port !== undefined ? { port } : {}),
        ...(targetType !== undefined ? { targetType } : {}),
        ...(service ? { service } : {}),
        deployments: service ? deploymentsOf(service) : [],
      };
    });

  return { namespaces: buildNamespaces(objects, deployments), deployments, services, ingresses, targetGroups, bindings };
}

// ---------------------------------------------------------------------------------------------------------------
// Namespaces

function buildNamespaces(objects: LoadedObject[], deployments: DeploymentModel[]): NamespaceModel[] {
  const out = new Map<string, NamespaceModel>();
  for (const o of objects.filter((x) => x.ref.kind === 'Namespace')) {
    const labels = stringRecord(o.object.metadata.labels);
    out.set(o.ref.name, { name: o.ref.name, labels, loaded: o, gateLabel: labels[GATE_LABEL] === 'enabled' });
  }
  for (const o of objects) {
    const ns = o.ref.namespace;
    if (ns && !out.has(ns)) out.set(ns, { name: ns, labels: {}, gateLabel: false });
  }
  for (const d of deployments) if (!out.has(d.namespace)) out.set(d.namespace, { name: d.namespace, labels: {}, gateLabel: false });
  return [...out.values()];
}

// ---------------------------------------------------------------------------------------------------------------
// Workloads

function isWorkload(o: LoadedObject): boolean {
  return (
    (o.ref.kind === 'Deployment' && o.ref.apiVersion === 'apps/v1') ||
    (o.ref.kind === 'Rollout' && o.ref.apiVersion.startsWith('argoproj.io/')) ||
    ((o.ref.kind === 'StatefulSet' || o.ref.kind === 'DaemonSet') && o.ref.apiVersion === 'apps/v1')
  );
}

function buildDeployment(o: LoadedObject): DeploymentModel {
  const spec = obj(o.object.spec);
  const template = obj(spec.template);
  const podSpec = obj(template.spec);
  const podSpecPath: FieldPath = ['spec', 'template', 'spec'];
  const containers = arr(podSpec.containers).map((c, index) => buildContainer(obj(c), index, [...podSpecPath, 'containers', index]));
  const grace = num(podSpec.terminationGracePeriodSeconds);
  const kind = o.ref.kind === 'Rollout' || o.ref.kind === 'StatefulSet' || o.ref.kind === 'DaemonSet' ? o.ref.kind : 'Deployment';
  return {
    loaded: o,
    kind,
    namespace: o.ref.namespace,
    name: o.ref.name,
    replicas: num(spec.replicas) ?? 1,
    replicasExplicit: num(spec.replicas) !== undefined,
    templateLabels: stringRecord(obj(template.metadata).labels),
    podSpecPath,
    containers,
    terminationGracePeriodSeconds: grace ?? DEFAULT_GRACE_PERIOD_SECONDS,
    gracePeriodExplicit: grace !== undefined,
    strategy: kind === 'Rollout' ? rolloutStrategy(obj(spec.strategy)) : kind === 'Deployment' ? deploymentStrategy(obj(spec.strategy)) : podByPodStrategy(kind, obj(spec.updateStrategy)),
    minReadySeconds: num(spec.minReadySeconds) ?? 0,
    progressDeadlineSeconds: num(spec.progressDeadlineSeconds) ?? DEFAULT_PROGRESS_DEADLINE_SECONDS,
    services: [],
  };
}

export function buildHpa(o: LoadedObject): HpaModel {
  const spec = obj(o.object.spec);
  const ref = obj(spec.scaleTargetRef);
  const max = num(spec.maxReplicas);
  return {
    loaded: o,
    namespace: o.ref.namespace,
    name: o.ref.name,
    minReplicas: num(spec.minReplicas) ?? 1,
    ...(max !== undefined ? { maxReplicas: max } : {}),
    target: { kind: str(ref.kind) ?? '', name: str(ref.name) ?? '' },
  };
}

/** An HPA owns the replica count of its target: without spec.replicas the workload runs at least minReplicas. */
export function applyHpas(deployments: DeploymentModel[], hpas: HpaModel[]): void {
  const byTarget = new Map(hpas.map((h) => [`${h.namespace}/${h.target.kind}/${h.target.name}`, h]));
  for (const d of deployments) {
    const hpa = byTarget.get(`${d.namespace}/${d.kind}/${d.name}`);
    if (!hpa) continue;
    d.hpa = hpa;
    if (!d.replicasExplicit) d.replicas = Math.max(1, hpa.minReplicas);
  }
}

function deploymentStrategy(strategy: JsonObject): StrategyModel {
  const rolling = obj(strategy.rollingUpdate);
  return {
    type: str(strategy.type) ?? 'RollingUpdate',
    maxSurge: intOrString(rolling.maxSurge) ?? '25%',
    maxUnavailable: intOrString(rolling.maxUnavailable) ?? '25%',
  };
}

/**
 * StatefulSets replace one pod at a time, deleting it before its successor starts (no surge); DaemonSets one pod per
 * node, by default also deleted first (maxUnavailable 1), or surged with maxSurge.
 */
function podByPodStrategy(kind: 'StatefulSet' | 'DaemonSet', strategy: JsonObject): StrategyModel {
  const rolling = obj(strategy.rollingUpdate);
  return {
    type: str(strategy.type) ?? 'RollingUpdate',
    maxSurge: kind === 'DaemonSet' ? (intOrString(rolling.maxSurge) ?? 0) : 0,
    maxUnavailable: intOrString(rolling.maxUnavailable) ?? 1,
  };
}

/** Argo Rollouts: `canary` carries maxSurge/maxUnavailable (defaults 25%/25%); `blueGreen` brings up a full new set first. */
function rolloutStrategy(strategy: JsonObject): StrategyModel {
  if (strategy.blueGreen !== undefined) return { type: 'BlueGreen', maxSurge: '100%', maxUnavailable: 0 };
  const canary = obj(strategy.canary);
  return {
    type: 'Canary',
    maxSurge: intOrString(canary.maxSurge) ?? '25%',
    maxUnavailable: intOrString(canary.maxUnavailable) ?? '25%',
  };
}

function buildContainer(c: JsonObject, index: number, path: FieldPath): ContainerModel {
  const probe = c.readinessProbe === undefined || c.readinessProbe === null ? undefined : buildProbe(obj(c.readinessProbe));
  return {
    name: str(c.name) ?? `#${index}`,
    index,
    path,
    ports: arr(c.ports).map((p) => {
      const port = obj(p);
      const name = str(port.name);
      return { ...(name ? { name } : {}), containerPort: num(port.containerPort) ?? 0 };
    }),
    preStop: parsePreStop(c),
    ...(probe ? { readinessProbe: probe } : {}),
  };
}

function buildProbe(p: JsonObject): ProbeModel {
  const base = {
    initialDelaySeconds: num(p.initialDelaySeconds) ?? 0,
    periodSeconds: num(p.periodSeconds) ?? 10,
    timeoutSeconds: num(p.timeoutSeconds) ?? 1,
    successThreshold: num(p.successThreshold) ?? 1,
    failureThreshold: num(p.failureThreshold) ?? 3,
  };
  if (p.httpGet !== undefined) {
    const h = obj(p.httpGet);
    const port = intOrString(h.port);
    return { handler: 'httpGet', path: str(h.path) ?? '/', ...(port !== undefined ? { port } : {}), ...base };
  }
  if (p.tcpSocket !== undefined) {
    const port = intOrString(obj(p.tcpSocket).port);
    return { handler: 'tcpSocket', ...(port !== undefined ? { port } : {}), ...base };
  }
  if (p.grpc !== undefined) {
    const port = num(obj(p.grpc).port);
    return { handler: 'grpc', ...(port !== undefined ? { port } : {}), ...base };
  }
  if (p.exec !== undefined) return { handler: 'exec', ...base };
  return { handler: 'unknown', ...base };
}

const SLEEP_IN_SHELL = /(?:^|[\s;&|(])sleep\s+(\d+(?:\.\d+)?)([smh]?)(?=$|[\s;&|)])/;

/**
 * Reads a container's `lifecycle.preStop`: the `sleep` action (`sleep.seconds`), an `exec` command that runs
 * `sleep N` (`["sleep","40"]`, `["/bin/sh","-c","sleep 40 && nginx -s quit"]`), anything else is `unknown`.
 */
export function parsePreStop(container: JsonObject): PreStopModel {
  const lifecycle = obj(container.lifecycle);
  if (lifecycle.preStop === undefined || lifecycle.preStop === null) return { kind: 'none' };
  const preStop = obj(lifecycle.preStop);
  if (preStop.sleep !== undefined) {
    const seconds = num(obj(preStop.sleep).seconds);
    return seconds !== undefined
      ? { kind: 'sleep', form: 'sleep-action', seconds }
      : { kind: 'unknown', description: 'sleep action without a numeric seconds' };
  }
  if (preStop.exec !== undefined) {
    const command = arr(obj(preStop.exec).command).map((x) => String(x));
    const match = SLEEP_IN_SHELL.exec(command.join(' '));
    if (match) {
      const factor = match[2] === 'm' ? 60 : match[2] === 'h' ? 3600 : 1;
      return { kind: 'sleep', form: 'exec', seconds: Math.ceil(Number(match[1]) * factor) };
    }
    return { kind: 'unknown', description: `exec ${JSON.stringify(command)}` };
  }
  if (preStop.httpGet !== undefined) return { kind: 'unknown', description: 'httpGet hook' };
  if (preStop.tcpSocket !== undefined) return { kind: 'unknown', description: 'tcpSocket hook' };
  return { kind: 'unknown', description: 'unrecognised preStop handler' };
}

/**
 * Resolves a Deployment's maxSurge/maxUnavailable the way Kubernetes does: integers as they are, percentages of
 * `total` rounded up (maxSurge, `roundUp`) or down (maxUnavailable). Use `resolveRollingUpdate` for the pair,
 * which also applies "both zero ⇒ maxUnavailable 1".
 */
export function resolveIntOrPercent(value: IntOrString, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value);
  if (!m) {
    const n = Number(value);
    return Number.isFinite(n) ? n : 0;
  }
  const scaled = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(scaled) : Math.floor(scaled);
}

/** Kubernetes' resolveFenceposts: maxSurge rounds up, maxUnavailable down; if both end up 0, maxUnavailable is 1. */
export function resolveRollingUpdate(strategy: Pick<StrategyModel, 'maxSurge' | 'maxUnavailable'>, replicas: number): { maxSurge: number; maxUnavailable: number } {
  const maxSurge = resolveIntOrPercent(strategy.maxSurge, replicas, true);
  let maxUnavailable = resolveIntOrPercent(strategy.maxUnavailable, replicas, false);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable };
}

/** The containers that receive the Service port's traffic: matched by targetPort number or name; the first container otherwise. */
export function servingContainers(d: DeploymentModel, port?: ServicePortModel): ContainerModel[] {
  if (d.containers.length === 0) return [];
  if (port) {
    const t = port.targetPort;
    const matched = d.containers.filter((c) => c.ports.some((p) => (typeof t === 'number' ? p.containerPort === t : p.name === t)));
    if (matched.length > 0) return matched;
  }
  return [d.containers[0] as ContainerModel];
}

// ---------------------------------------------------------------------------------------------------------------
// Services

function buildService(o: LoadedObject): ServiceModel {
  const spec = obj(o.object.spec);
  const selector = spec.selector === undefined || spec.selector === null ? undefined : stringRecord(spec.selector);
  return {
    loaded: o,
    namespace: o.ref.namespace,
    name: o.ref.name,
    type: str(spec.type) ?? 'ClusterIP',
    ...(selector ? { selector } : {}),
    ports: arr(spec.ports).map((p, index) => {
      const port = obj(p);
      const number = num(port.port) ?? 0;
      const name = str(port.name);
      return { ...(name ? { name } : {}), port: number, targetPort: intOrString(port.targetPort) ?? number, index };
    }),
    annotations: stringRecord(o.object.metadata.annotations),
    deployments: [],
  };
}

/** Workloads by namespace and template label (`ns\0key\0value`), in input order: selectors are matched against few. */
function indexByLabel(deployments: DeploymentModel[]): Map<string, DeploymentModel[]> {
  const out = new Map<string, DeploymentModel[]>();
  for (const d of deployments) {
    for (const [k, v] of Object.entries(d.templateLabels)) {
      const key = `${d.namespace}\0${k}\0${v}`;
      const list = out.get(key);
      if (list) list.push(d);
      else out.set(key, [d]);
    }
  }
  return out;
}

/** The workloads that carry the rarest of the selector's labels (a superset of those it matches, in input order). */
function selectorCandidates(byLabel: Map<string, DeploymentModel[]>, svc: ServiceModel): DeploymentModel[] {
  let best: DeploymentModel[] | undefined;
  for (const [k, v] of Object.entries(svc.selector ?? {})) {
    const list = byLabel.get(`${svc.namespace}\0${k}\0${v}`) ?? [];
    if (!best || list.length < best.length) best = list;
  }
  return best ?? [];
}

/** A Service selector matches a pod when every selector label is on the pod; an empty selector matches nothing here. */
export function selectorMatches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

export function findServicePort(svc: ServiceModel, port: { number?: number; name?: string }): ServicePortModel | undefined {
  if (port.number !== undefined) return svc.ports.find((p) => p.port === port.number);
  if (port.name !== undefined) return svc.ports.find((p) => p.name === port.name);
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Ingresses

const ALB_CONTROLLER = 'ingress.k8s.aws/alb';

function buildIngress(o: LoadedObject, classes: Map<string, LoadedObject>): IngressModel {
  const spec = obj(o.object.spec);
  const annotations = stringRecord(o.object.metadata.annotations);
  const ingressClass = str(spec.ingressClassName) ?? annotations['kubernetes.io/ingress.class'];
  const classObject = ingressClass ? classes.get(ingressClass) : undefined;
  const hasAlbAnnotations = Object.keys(annotations).some((k) => k.startsWith(ALB_PREFIX));
  const isAlb =
    ingressClass === 'alb' ||
    (classObject !== undefined && str(obj(classObject.object.spec).controller) === ALB_CONTROLLER) ||
    (classObject === undefined && hasAlbAnnotations);
  const backends: IngressBackendModel[] = [];
  const addBackend = (node: JsonValue | undefined, path: FieldPath): void => {
    const service = obj(obj(node).service);
    const name = str(service.name);
    if (!name) return;
    const port = obj(service.port);
    const number = num(port.number);
    const portName = str(port.name);
    if (portName === 'use-annotation') {
      backends.push(...actionBackends(annotations[`${ALB_PREFIX}actions.${name}`], name, path));
      return;
    }
    backends.push({
      serviceName: name,
      port: { ...(number !== undefined ? { number } : {}), ...(portName !== undefined ? { name: portName } : {}) },
      path,
    });
  };
  if (spec.defaultBackend !== undefined) addBackend(spec.defaultBackend, ['spec', 'defaultBackend']);
  arr(spec.rules).forEach((rule, r) => {
    arr(obj(obj(rule).http).paths).forEach((p, i) => addBackend(obj(p).backend, ['spec', 'rules', r, 'http', 'paths', i, 'backend']));
  });
  return {
    loaded: o,
    namespace: o.ref.namespace,
    name: o.ref.name,
    ...(ingressClass ? { ingressClass } : {}),
    isAlb,
    annotations,
    backends,
  };
}

/** `alb.ingress.kubernetes.io/actions.<name>` forward actions: each Service target group becomes a backend. */
function actionBackends(raw: string | undefined, action: string, path: FieldPath): IngressBackendModel[] {
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return [];
  }
  const forward = obj(obj(parsed as JsonValue).forwardConfig);
  return arr(forward.targetGroups)
    .map((tg) => obj(tg))
    .filter((tg) => typeof tg.serviceName === 'string')
    .map((tg) => {
      const port = intOrString(tg.servicePort);
      const asNumber = typeof port === 'number' ? port : port !== undefined && /^\d+$/.test(port) ? Number(port) : undefined;
      return {
        serviceName: tg.serviceName as string,
        port: asNumber !== undefined ? { number: asNumber } : port !== undefined ? { name: String(port) } : {},
        path,
        viaAction: action,
      };
    });
}

/** IngressClass name → targetType of the IngressClassParams it references (it overrides every annotation). */
function classParamsTargetTypes(objects: LoadedObject[], classes: Map<string, LoadedObject>): Map<string, { value: string; from: LoadedObject }> {
  const params = new Map(objects.filter((o) => o.ref.kind === 'IngressClassParams').map((o) => [o.ref.name, o]));
  const out = new Map<string, { value: string; from: LoadedObject }>();
  for (const [name, cls] of classes) {
    const ref = obj(obj(cls.object.spec).parameters);
    if (str(ref.kind) !== 'IngressClassParams') continue;
    const p = params.get(str(ref.name) ?? '');
    const targetType = p ? str(obj(p.object.spec).targetType) : undefined;
    if (p && targetType) out.set(name, { value: targetType, from: p });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Target groups

/** LBC's rule: for keys allowed on Services, the Service annotation (whole value) beats the Ingress annotation. */
export function effectiveAnnotation(key: string, svc: ServiceModel | undefined, ing: IngressModel): AnnotationSource | undefined {
  if (svc && SERVICE_OVERRIDABLE.has(key) && svc.annotations[key] !== undefined) {
    return { key, value: svc.annotations[key] as string, from: svc.loaded };
  }
  const v = ing.annotations[key];
  return v !== undefined ? { key, value: v, from: ing.loaded } : undefined;
}

function buildTargetGroup(
  key: string,
  ing: IngressModel,
  svc: ServiceModel,
  port: IntOrString,
  servicePort: ServicePortModel,
  deployments: DeploymentModel[],
  classTargetType: { value: string; from: LoadedObject } | undefined,
): TargetGroupModel {
  const ann = (k: string): AnnotationSource | undefined => effectiveAnnotation(ALB_PREFIX + k, svc, ing);
  const targetTypeAnn = ann('target-type');
  const targetTypeSource = classTargetType
    ? { key: 'IngressClassParams.spec.targetType' as const, value: classTargetType.value, from: classTargetType.from }
    : targetTypeAnn;
  const grpc = (ann('backend-protocol-version')?.value ?? '').toUpperCase() === 'GRPC';
  const pathAnn = ann('healthcheck-path');
  const intAnn = (k: string, dflt: number): number => {
    const v = ann(k)?.value;
    const n = v === undefined ? NaN : Number(v.trim());
    return Number.isInteger(n) ? n : dflt;
  };
  const healthCheck: HealthCheckModel = {
    path: pathAnn?.value ?? (grpc ? '/AWS.ALB/healthcheck' : '/'),
    port: ann('healthcheck-port')?.value ?? 'traffic-port',
    protocol: ann('healthcheck-protocol')?.value ?? ann('backend-protocol')?.value ?? 'HTTP',
    intervalSeconds: intAnn('healthcheck-interval-seconds', 15),
    timeoutSeconds: intAnn('healthcheck-timeout-seconds', 5),
    healthyThreshold: intAnn('healthy-threshold-count', 2),
    unhealthyThreshold: intAnn('unhealthy-threshold-count', 2),
    successCodes: ann('success-codes')?.value ?? (grpc ? '12' : '200'),
    ...(pathAnn ? { pathSource: pathAnn } : {}),
  };
  const tg: TargetGroupModel = {
    key,
    ingress: ing,
    service: svc,
    port,
    servicePort,
    targetType: targetTypeSource?.value.trim() ?? 'instance',
    ...(targetTypeSource ? { targetTypeSource } : {}),
    healthCheck,
    attributes: {},
    deployments,
    backendPaths: [],
  };
  const attrs = ann('target-group-attributes');
  if (attrs) {
    tg.attributesSource = attrs;
    try {
      tg.attributes = parseStringMap(attrs.value);
    } catch (err) {
      tg.attributesError = (err as Error).message;
    }
    const delay = tg.attributes[DEREGISTRATION_DELAY_KEY];
    if (delay !== undefined) {
      const parsed = parseDeregistrationDelay(delay);
      if (typeof parsed === 'number') tg.deregistrationDelaySeconds = parsed;
      else tg.deregistrationDelayError = parsed.error;
    }
  }
  return tg;
}

export function parseDeregistrationDelay(value: string): number | { error: string } {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isInteger(n)) return { error: `${DEREGISTRATION_DELAY_KEY}=${value} is not a whole number of seconds` };
  if (n < DEREGISTRATION_DELAY_RANGE.min || n > DEREGISTRATION_DELAY_RANGE.max) {
    return { error: `${DEREGISTRATION_DELAY_KEY}=${value} is outside AWS's range ${DEREGISTRATION_DELAY_RANGE.min}–${DEREGISTRATION_DELAY_RANGE.max}` };
  }
  return n;
}

/** The effective deregistration delay: the explicit value, or AWS's default when none is set. */
export function effectiveDeregistrationDelay(tg: Pick<TargetGroupModel, 'deregistrationDelaySeconds'>): number {
  return tg.deregistrationDelaySeconds ?? AWS_DEFAULT_DEREGISTRATION_DELAY;
}

// ---------------------------------------------------------------------------------------------------------------
// Routes: which Deployments sit behind which target groups

/** One way traffic reaches a Deployment through a load-balancer target group: an Ingress backend or an explicit TargetGroupBinding. */
export interface Route {
  deployment: DeploymentModel;
  service: ServiceModel;
  servicePort?: ServicePortModel;
  /** `ip`, `instance`, or `unknown` for a binding that leaves it to AWS. */
  targetType: string;
  /** "ns/ingress → svc:port" or "TargetGroupBinding ns/name". */
  label: string;
  targetGroup?: TargetGroupModel;
  binding?: TargetGroupBindingModel;
}

export function routesOf(model: AppModel): Route[] {
  const out: Route[] = [];
  for (const tg of model.targetGroups) {
    for (const deployment of tg.deployments) {
      out.push({
        deployment,
        service: tg.service,
        ...(tg.servicePort ? { servicePort: tg.servicePort } : {}),
        targetType: tg.targetType,
        label: tg.key,
        targetGroup: tg,
      });
    }
  }
  for (const b of model.bindings) {
    if (!b.service) continue;
    const port = b.port === undefined ? undefined : findServicePort(b.service, typeof b.port === 'number' ? { number: b.port } : { name: b.port });
    for (const deployment of b.deployments) {
      out.push({
        deployment,
        service: b.service,
        ...(port ? { servicePort: port } : {}),
        targetType: b.targetType ?? 'unknown',
        label: `TargetGroupBinding ${b.namespace}/${b.name}`,
        binding: b,
      });
    }
  }
  return out;
}

export interface RoutedDeployment {
  deployment: DeploymentModel;
  routes: Route[];
  /** Containers that receive traffic on any route, in container order. */
  serving: ContainerModel[];
}

/** routedDeployments by model: tune and every lint rule ask for those of the same (never modified) model. */
const routed = new WeakMap<AppModel, RoutedDeployment[]>();

/** Deployments that sit behind at least one target group, with the containers that serve it. */
export function routedDeployments(model: AppModel): RoutedDeployment[] {
  const cached = routed.get(model);
  if (cached) return cached;
  const result = routedDeploymentsUncached(model);
  routed.set(model, result);
  return result;
}

function routedDeploymentsUncached(model: AppModel): RoutedDeployment[] {
  const byDeployment = new Map<DeploymentModel, Route[]>();
  for (const r of routesOf(model)) {
    const list = byDeployment.get(r.deployment) ?? [];
    list.push(r);
    byDeployment.set(r.deployment, list);
  }
  return [...byDeployment].map(([deployment, routes]) => {
    const serving = new Set<ContainerModel>();
    for (const r of routes) for (const c of servingContainers(deployment, r.servicePort)) serving.add(c);
    return { deployment, routes, serving: [...serving].sort((a, b) => a.index - b.index) };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// stringMap annotations (LBC's parser: split on unescaped ',', each pair on the first '=', trimmed)

/** Parses `k1=v1,k2=v2` as LBC does; `\,` is a literal comma. Throws on an empty key or a pair without `=`. Keeps key order. */
export function parseStringMap(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw.trim() === '') return out;
  const pairs: string[] = raw.includes('\\') ? splitUnescaped(raw) : raw.split(',');
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? '' : pair.slice(0, eq).trim();
    if (eq < 0 || key === '') throw new Error(`failed to parse stringMap annotation: "${pair.trim()}" in "${raw}" is not key=value`);
    out[key] = pair.slice(eq + 1).trim();
  }
  return out;
}

/** `raw` split on the commas not written as `\,` (which become plain commas). */
function splitUnescaped(raw: string): string[] {
  const pairs: string[] = [];
  let current = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c === '\\' && raw[i + 1] === ',') {
      current += ',';
      i++;
    } else if (c === ',') {
      pairs.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  pairs.push(current);
  return pairs;
}

/** The inverse of parseStringMap, in the map's key order; commas in values are escaped. */
export function formatStringMap(map: Record<string, string>): string {
  return Object.entries(map)
    .map(([k, v]) => `${k}=${v.replace(/,/g, '\\,')}`)
    .join(',');
}

// ---------------------------------------------------------------------------------------------------------------
// Small readers over plain JSON

export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

export function idOf(o: LoadedObject): ObjectId {
  return { kind: o.ref.kind, namespace: o.ref.namespace, name: o.ref.name };
}

export function obj(v: JsonValue | undefined): JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {};
}

function arr(v: JsonValue | undefined): JsonValue[] {
  return Array.isArray(v) ? v : [];
}

function str(v: JsonValue | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: JsonValue | undefined): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\s*\d+\s*$/.test(v)) return Number(v);
  return undefined;
}

function intOrString(v: JsonValue | undefined): IntOrString | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v !== '') return v;
  return undefined;
}

function stringRecord(v: JsonValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(obj(v))) {
    if (val === undefined || val === null) continue;
    out[k] = typeof val === 'string' ? val : String(val);
  }
  return out;
}
