/**
 * Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), which kubectl ≥ 1.32
 * sends for built-in kinds from its typed clients (`kubectl create namespace|configmap|deployment…`, `run`,
 * `expose`). Only decoding, only the messages those commands produce: the schema below lists field numbers from
 * the Kubernetes API's generated.proto files. A field the schema does not know is refused with 415 (never dropped
 * silently), so the client can be pointed at JSON instead.
 *
 * Envelope: the 4 bytes "k8s\0", then runtime.Unknown { typeMeta(1){apiVersion(1), kind(2)}, raw(2), … }.
 */
import type { JsonObject, JsonValue } from '../../manifests/types.js';
import { ApiError } from './status.js';

/**
 * One line per message: `<number> <jsonName> <type>` separated by ';'. Types: s string, i integer, b bool,
 * y bytes (base64), ms map<string,string>, my map<string,bytes>, mq map<string,Quantity>, t Time, ios IntOrString,
 * q Quantity, x ignored message (decoded as {}), or a message name. Prefix `*` = repeated, `^` = inlined into the
 * parent (Go embedded structs such as ProbeHandler, VolumeSource, LocalObjectReference); suffix `?` = a Go pointer
 * (0/false are values). Protobuf carries Go zero values of plain fields; like JSON's omitempty, "" and (for
 * non-pointers) 0/false are left out.
 */
const SCHEMA: Record<string, string> = {
  ObjectMeta:
    '1 name s; 2 generateName s; 3 namespace s; 4 selfLink s; 5 uid s; 6 resourceVersion s; 7 generation i; 8 creationTimestamp t; 9 deletionTimestamp t; 10 deletionGracePeriodSeconds i?; 11 labels ms; 12 annotations ms; 13 ownerReferences *OwnerReference; 14 finalizers *s; 17 managedFields *x',
  OwnerReference: '1 kind s; 3 name s; 4 uid s; 5 apiVersion s; 6 controller b?; 7 blockOwnerDeletion b?',
  LabelSelector: '1 matchLabels ms; 2 matchExpressions *LabelSelectorRequirement',
  LabelSelectorRequirement: '1 key s; 2 operator s; 3 values *s',
  Namespace: '1 metadata ObjectMeta; 2 spec NamespaceSpec; 3 status x',
  NamespaceSpec: '1 finalizers *s',
  ConfigMap: '1 metadata ObjectMeta; 2 data ms; 3 binaryData my; 4 immutable b?',
  Secret: '1 metadata ObjectMeta; 2 data my; 3 type s; 4 stringData ms; 5 immutable b?',
  ServiceAccount: '1 metadata ObjectMeta; 2 secrets *ObjectReference; 3 imagePullSecrets *LocalObjectReference; 4 automountServiceAccountToken b?',
  ObjectReference: '1 kind s; 2 namespace s; 3 name s; 4 uid s; 5 apiVersion s; 6 resourceVersion s; 7 fieldPath s',
  LocalObjectReference: '1 name s',
  Service: '1 metadata ObjectMeta; 2 spec ServiceSpec; 3 status x',
  ServiceSpec:
    '1 ports *ServicePort; 2 selector ms; 3 clusterIP s; 18 clusterIPs *s; 4 type s; 5 externalIPs *s; 7 sessionAffinity s; 8 loadBalancerIP s; 9 loadBalancerSourceRanges *s; 10 externalName s; 11 externalTrafficPolicy s; 12 healthCheckNodePort i; 13 publishNotReadyAddresses b; 19 ipFamilies *s; 17 ipFamilyPolicy s; 20 allocateLoadBalancerNodePorts b?; 21 loadBalancerClass s; 22 internalTrafficPolicy s; 23 trafficDistribution s',
  ServicePort: '1 name s; 2 protocol s; 6 appProtocol s; 3 port i; 4 targetPort ios; 5 nodePort i',
  Pod: '1 metadata ObjectMeta; 2 spec PodSpec; 3 status x',
  PodTemplateSpec: '1 metadata ObjectMeta; 2 spec PodSpec',
  PodSpec:
    '1 volumes *Volume; 20 initContainers *Container; 2 containers *Container; 3 restartPolicy s; 4 terminationGracePeriodSeconds i?; 5 activeDeadlineSeconds i?; 6 dnsPolicy s; 7 nodeSelector ms; 8 serviceAccountName s; 9 serviceAccount s; 21 automountServiceAccountToken b?; 10 nodeName s; 11 hostNetwork b; 12 hostPID b; 13 hostIPC b; 27 shareProcessNamespace b?; 14 securityContext x; 15 imagePullSecrets *LocalObjectReference; 16 hostname s; 17 subdomain s; 19 schedulerName s; 24 priorityClassName s; 25 priority i?; 28 readinessGates *PodReadinessGate; 29 runtimeClassName s; 30 enableServiceLinks b?; 31 preemptionPolicy s; 35 setHostnameAsFQDN b?',
  PodReadinessGate: '1 conditionType s',
  Container:
    '1 name s; 2 image s; 3 command *s; 4 args *s; 5 workingDir s; 6 ports *ContainerPort; 19 envFrom *EnvFromSource; 7 env *EnvVar; 8 resources ResourceRequirements; 9 volumeMounts *VolumeMount; 10 livenessProbe Probe; 11 readinessProbe Probe; 22 startupProbe Probe; 12 lifecycle Lifecycle; 13 terminationMessagePath s; 20 terminationMessagePolicy s; 14 imagePullPolicy s; 15 securityContext x; 16 stdin b; 17 stdinOnce b; 18 tty b; 24 restartPolicy s',
  ContainerPort: '1 name s; 2 hostPort i; 3 containerPort i; 4 protocol s; 5 hostIP s',
  EnvVar: '1 name s; 2 value s; 3 valueFrom EnvVarSource',
  EnvVarSource: '1 fieldRef ObjectFieldSelector; 3 configMapKeyRef KeySelector; 4 secretKeyRef KeySelector',
  ObjectFieldSelector: '1 apiVersion s; 2 fieldPath s',
  KeySelector: '1 localObjectReference ^LocalObjectReference; 2 key s; 3 optional b?',
  EnvFromSource: '1 prefix s; 2 configMapRef EnvSource; 3 secretRef EnvSource',
  EnvSource: '1 localObjectReference ^LocalObjectReference; 2 optional b?',
  ResourceRequirements: '1 limits mq; 2 requests mq',
  VolumeMount: '1 name s; 2 readOnly b; 3 mountPath s; 4 subPath s; 5 mountPropagation s; 6 subPathExpr s',
  Volume: '1 name s; 2 volumeSource ^VolumeSource',
  VolumeSource: '2 emptyDir EmptyDirVolumeSource; 6 secret SecretVolumeSource; 19 configMap ConfigMapVolumeSource',
  EmptyDirVolumeSource: '1 medium s; 2 sizeLimit q',
  SecretVolumeSource: '1 secretName s; 2 items *KeyToPath; 3 defaultMode i?; 4 optional b?',
  ConfigMapVolumeSource: '1 localObjectReference ^LocalObjectReference; 2 items *KeyToPath; 3 defaultMode i?; 4 optional b?',
  KeyToPath: '1 key s; 2 path s; 3 mode i?',
  Probe: '1 handler ^ProbeHandler; 2 initialDelaySeconds i; 3 timeoutSeconds i; 4 periodSeconds i; 5 successThreshold i; 6 failureThreshold i; 7 terminationGracePeriodSeconds i?',
  ProbeHandler: '1 exec ExecAction; 2 httpGet HTTPGetAction; 3 tcpSocket TCPSocketAction; 4 grpc GRPCAction',
  LifecycleHandler: '1 exec ExecAction; 2 httpGet HTTPGetAction; 3 tcpSocket TCPSocketAction; 4 sleep SleepAction',
  Lifecycle: '1 postStart LifecycleHandler; 2 preStop LifecycleHandler; 3 stopSignal s',
  ExecAction: '1 command *s',
  SleepAction: '1 seconds i',
  HTTPGetAction: '1 path s; 2 port ios; 3 host s; 4 scheme s; 5 httpHeaders *HTTPHeader',
  HTTPHeader: '1 name s; 2 value s',
  TCPSocketAction: '1 port ios; 2 host s',
  GRPCAction: '1 port i; 2 service s',
  Deployment: '1 metadata ObjectMeta; 2 spec DeploymentSpec; 3 status x',
  DeploymentSpec: '1 replicas i?; 2 selector LabelSelector; 3 template PodTemplateSpec; 4 strategy DeploymentStrategy; 5 minReadySeconds i; 6 revisionHistoryLimit i?; 7 paused b; 9 progressDeadlineSeconds i?',
  DeploymentStrategy: '1 type s; 2 rollingUpdate RollingUpdateDeployment',
  RollingUpdateDeployment: '1 maxUnavailable ios; 2 maxSurge ios',
  ReplicaSet: '1 metadata ObjectMeta; 2 spec ReplicaSetSpec; 3 status x',
  ReplicaSetSpec: '1 replicas i?; 4 minReadySeconds i; 2 selector LabelSelector; 3 template PodTemplateSpec',
  Ingress: '1 metadata ObjectMeta; 2 spec IngressSpec; 3 status x',
  IngressSpec: '4 ingressClassName s; 1 defaultBackend IngressBackend; 2 tls *IngressTLS; 3 rules *IngressRule',
  IngressRule: '1 host s; 2 ingressRuleValue ^IngressRuleValue',
  IngressRuleValue: '1 http HTTPIngressRuleValue',
  HTTPIngressRuleValue: '1 paths *HTTPIngressPath',
  HTTPIngressPath: '1 path s; 3 pathType s; 2 backend IngressBackend',
  IngressBackend: '4 service IngressServiceBackend',
  IngressServiceBackend: '1 name s; 2 port ServiceBackendPort',
  ServiceBackendPort: '1 name s; 2 number i',
  IngressTLS: '1 hosts *s; 2 secretName s',
  IngressClass: '1 metadata ObjectMeta; 2 spec IngressClassSpec',
  IngressClassSpec: '1 controller s',
  PodDisruptionBudget: '1 metadata ObjectMeta; 2 spec PodDisruptionBudgetSpec; 3 status x',
  PodDisruptionBudgetSpec: '1 minAvailable ios; 2 selector LabelSelector; 3 maxUnavailable ios; 4 unhealthyPodEvictionPolicy s',
  Role: '1 metadata ObjectMeta; 2 rules *PolicyRule',
  ClusterRole: '1 metadata ObjectMeta; 2 rules *PolicyRule; 3 aggregationRule AggregationRule',
  AggregationRule: '1 clusterRoleSelectors *LabelSelector',
  PolicyRule: '1 verbs *s; 2 apiGroups *s; 3 resources *s; 4 resourceNames *s; 5 nonResourceURLs *s',
  RoleBinding: '1 metadata ObjectMeta; 2 subjects *Subject; 3 roleRef RoleRef',
  ClusterRoleBinding: '1 metadata ObjectMeta; 2 subjects *Subject; 3 roleRef RoleRef',
  Subject: '1 kind s; 2 apiGroup s; 3 name s; 4 namespace s',
  RoleRef: '1 apiGroup s; 2 kind s; 3 name s',
};

interface Field {
  name: string;
  type: string;
  repeated: boolean;
  inline: boolean;
  pointer: boolean;
}

const MESSAGES = new Map<string, Map<number, Field>>(
  Object.entries(SCHEMA).map(([msg, spec]) => [
    msg,
    new Map(
      spec.split(';').map((part) => {
        const [num, name, rawType] = part.trim().split(/\s+/) as [string, string, string];
        const repeated = rawType.startsWith('*');
        const inline = rawType.startsWith('^');
        const pointer = rawType.endsWith('?');
        return [Number(num), { name, type: rawType.replace(/^[*^]/, '').replace(/\?$/, ''), repeated, inline, pointer }];
      }),
    ),
  ]),
);

function unsupported(detail: string): ApiError {
  return new ApiError(
    415,
    'UnsupportedMediaType',
    `the lab API server cannot decode this protobuf body (${detail}); send application/json instead (kubectl apply / kubectl create -f do)`,
  );
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw unsupported('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw unsupported('varint too long');
    }
  }
  bytes(): Buffer {
    const len = Number(this.varint());
    if (this.pos + len > this.buf.length) throw unsupported('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw unsupported(`wire type ${wire}`);
  }
}

function toInt(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

/** Iterates the fields of one message. */
function* fields(buf: Buffer): Generator<{ num: number; wire: number; r: Reader }> {
  const r = new Reader(buf);
  while (!r.done) {
    const tag = Number(r.varint());
    yield { num: tag >>> 3, wire: tag & 7, r };
  }
}

function mapEntry(buf: Buffer, valueType: 's' | 'y' | 'q'): [string, JsonValue] {
  let key = '';
  let value: JsonValue = valueType === 'y' ? '' : '';
  for (const { num, wire, r } of fields(buf)) {
    if (num === 1 && wire === 2) key = r.bytes().toString('utf8');
    else if (num === 2 && wire === 2) {
      const b = r.bytes();
      value = valueType === 's' ? b.toString('utf8') : valueType === 'y' ? b.toString('base64') : quantity(b);
    } else r.skip(wire);
  }
  return [key, value];
}

function quantity(buf: Buffer): string {
  for (const { num, wire, r } of fields(buf)) {
    if (num === 1 && wire === 2) return r.bytes().toString('utf8');
    r.skip(wire);
  }
  return '0';
}

/** metav1.Time; an empty message (how Go marshals the zero time) or year 1 means unset. */
function time(buf: Buffer): string | null {
  let seconds: number | undefined;
  for (const { num, wire, r } of fields(buf)) {
    if (num === 1 && wire === 0) seconds = toInt(r.varint());
    else r.skip(wire);
  }
  if (seconds === undefined || seconds <= -62135596800) return null;
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function intOrString(buf: Buffer): JsonValue {
  let type = 0;
  let intVal = 0;
  let strVal = '';
  for (const { num, wire, r } of fields(buf)) {
    if (num === 1 && wire === 0) type = toInt(r.varint());
    else if (num === 2 && wire === 0) intVal = toInt(r.varint());
    else if (num === 3 && wire === 2) strVal = r.bytes().toString('utf8');
    else r.skip(wire);
  }
  return type === 1 ? strVal : intVal;
}

function scalar(type: string, wire: number, r: Reader, where: string): JsonValue {
  const expectWire = (w: number): void => {
    if (wire !== w) throw unsupported(`${where}: wire type ${wire}, expected ${w}`);
  };
  switch (type) {
    case 's':
      expectWire(2);
      return r.bytes().toString('utf8');
    case 'y':
      expectWire(2);
      return r.bytes().toString('base64');
    case 'i':
      expectWire(0);
      return toInt(r.varint());
    case 'b':
      expectWire(0);
      return r.varint() !== 0n;
    case 't':
      expectWire(2);
      return time(r.bytes());
    case 'ios':
      expectWire(2);
      return intOrString(r.bytes());
    case 'q':
      expectWire(2);
      return quantity(r.bytes());
    case 'x':
      expectWire(2);
      r.bytes();
      return {};
    default:
      expectWire(2);
      return decodeMessage(type, r.bytes());
  }
}

function decodeMessage(name: string, buf: Buffer): JsonObject {
  const schema = MESSAGES.get(name);
  if (!schema) throw unsupported(`message ${name}`);
  const out: JsonObject = {};
  for (const { num, wire, r } of fields(buf)) {
    const f = schema.get(num);
    if (!f) throw unsupported(`field ${num} of ${name}`);
    const where = `${name}.${f.name}`;
    if (f.type === 'ms' || f.type === 'my' || f.type === 'mq') {
      if (wire !== 2) throw unsupported(`${where}: wire type ${wire}`);
      const [k, v] = mapEntry(r.bytes(), f.type === 'ms' ? 's' : f.type === 'my' ? 'y' : 'q');
      const m = (out[f.name] ??= {}) as JsonObject;
      m[k] = v;
      continue;
    }
    if (f.repeated) {
      const list = (out[f.name] ??= []) as JsonValue[];
      if (f.type === 'i' && wire === 2) {
        const packed = new Reader(r.bytes());
        while (!packed.done) list.push(toInt(packed.varint()));
      } else list.push(scalar(f.type, wire, r, where));
      continue;
    }
    const v = scalar(f.type, wire, r, where);
    if (v === '' || v === null || ((v === 0 || v === false) && !f.pointer)) continue;
    if (f.inline && v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, v);
    else out[f.name] = v;
  }
  return out;
}

export const PROTOBUF_MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Decodes a protobuf-encoded object into its JSON form (apiVersion and kind from the envelope). */
export function decodeProtobufObject(body: Buffer): JsonObject {
  if (body.length < 4 || !body.subarray(0, 4).equals(PROTOBUF_MAGIC)) throw unsupported('missing the k8s protobuf envelope');
  let apiVersion = '';
  let kind = '';
  let raw: Buffer | undefined;
  for (const { num, wire, r } of fields(body.subarray(4))) {
    if (num === 1 && wire === 2) {
      for (const t of fields(r.bytes())) {
        if (t.num === 1 && t.wire === 2) apiVersion = t.r.bytes().toString('utf8');
        else if (t.num === 2 && t.wire === 2) kind = t.r.bytes().toString('utf8');
        else t.r.skip(t.wire);
      }
    } else if (num === 2 && wire === 2) raw = r.bytes();
    else r.skip(wire);
  }
  if (!kind || !MESSAGES.has(kind) || !raw) throw unsupported(`kind ${JSON.stringify(kind)}`);
  return { apiVersion, kind, ...decodeMessage(kind, raw) };
}

// ------------------------------------------------------------------------------------------ encoding

/**
 * A minimal protobuf writer (proto3 wire format): varint (wire type 0) and length-delimited (wire type 2)
 * fields, enough for string, bool, repeated string and nested messages. Proto3 defaults ("" and false) are
 * left out, as the reference encoder does. Used for the gnostic OpenAPI v2 document (openapi-v2.ts).
 */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  private static varint(n: number): Buffer {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`ProtoWriter: varint must be a non-negative safe integer, got ${n}`);
    const bytes: number[] = [];
    let v = n;
    while (v >= 0x80) {
      bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    bytes.push(v);
    return Buffer.from(bytes);
  }

  private tag(field: number, wire: 0 | 2): void {
    this.parts.push(ProtoWriter.varint(field * 8 + wire));
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.parts.push(ProtoWriter.varint(value.length), Buffer.from(value));
    return this;
  }

  /** A string field; '' and undefined are omitted (proto3 default). */
  string(field: number, value: string | undefined): this {
    if (value === undefined || value === '') return this;
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  strings(field: number, values: readonly string[] | undefined): this {
    for (const v of values ?? []) this.bytes(field, Buffer.from(v, 'utf8'));
    return this;
  }

  /** A bool field; false and undefined are omitted (proto3 default). */
  bool(field: number, value: boolean | undefined): this {
    if (!value) return this;
    this.tag(field, 0);
    this.parts.push(ProtoWriter.varint(1));
    return this;
  }

  /** A nested message, written even when empty (presence matters, e.g. Schema.properties). */
  message(field: number, inner: ProtoWriter): this {
    return this.bytes(field, inner.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}
