/**
 * Basic validation (422 Invalid) with the real server's field paths and wording, for what the lab's users
 * get wrong most: names, selectors vs template labels, containers, Service ports.
 */
import type { JsonObject, JsonValue, KubeObject } from '../../manifests/types.js';
import { isObject } from './patch.js';
import type { ResourceDescriptor } from './resources.js';
import { labelSelectorObject } from './selectors.js';
import type { FieldError } from './status.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

function nameErrors(name: string, rule: ResourceDescriptor['nameRule'], field: string): FieldError[] {
  if (rule === 'path') {
    if (name === '.' || name === '..' || name.includes('/') || name.includes('%')) {
      return [{ field, type: 'FieldValueInvalid', value: name, detail: 'may not contain "/" or "%", and may not be "." or ".."' }];
    }
    return [];
  }
  if (rule === 'label') {
    if (name.length > 63 || !DNS1123_LABEL.test(name)) {
      return [
        {
          field,
          type: 'FieldValueInvalid',
          value: name,
          detail:
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        },
      ];
    }
    return [];
  }
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    return [
      {
        field,
        type: 'FieldValueInvalid',
        value: name,
        detail:
          "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
      },
    ];
  }
  return [];
}

function labelErrors(labels: JsonValue | undefined, field: string): FieldError[] {
  if (labels === undefined || labels === null) return [];
  if (!isObject(labels)) return [{ field, type: 'FieldValueInvalid', value: labels, detail: 'must be a map of strings' }];
  const out: FieldError[] = [];
  for (const [k, v] of Object.entries(labels)) {
    const slash = k.lastIndexOf('/');
    const name = slash >= 0 ? k.slice(slash + 1) : k;
    const prefix = slash >= 0 ? k.slice(0, slash) : '';
    if (!QUALIFIED_NAME.test(name) || name.length > 63 || (prefix && !DNS1123_SUBDOMAIN.test(prefix))) {
      out.push({ field, type: 'FieldValueInvalid', value: k, detail: "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character" });
    }
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) {
      out.push({ field: `${field}`, type: 'FieldValueInvalid', value: v, detail: "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character" });
    }
  }
  return out;
}

function containerErrors(containers: JsonValue | undefined, field: string, required: boolean): FieldError[] {
  if (!Array.isArray(containers) || containers.length === 0) {
    return required ? [{ field, type: 'FieldValueRequired', detail: '' }] : [];
  }
  const out: FieldError[] = [];
  const names = new Set<string>();
  containers.forEach((c, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(c)) {
      out.push({ field: at, type: 'FieldValueInvalid', value: c, detail: 'must be an object' });
      return;
    }
    if (typeof c.name !== 'string' || c.name === '') out.push({ field: `${at}.name`, type: 'FieldValueRequired', detail: '' });
    else {
      out.push(...nameErrors(c.name, 'label', `${at}.name`));
      if (names.has(c.name)) out.push({ field: `${at}.name`, type: 'FieldValueDuplicate', value: c.name, detail: '' });
      names.add(c.name);
    }
    if (typeof c.image !== 'string' || c.image.trim() === '') out.push({ field: `${at}.image`, type: 'FieldValueRequired', detail: '' });
    if (Array.isArray(c.ports)) {
      c.ports.forEach((p, j) => {
        const port = isObject(p) ? p.containerPort : undefined;
        if (typeof port !== 'number' || port < 1 || port > 65535 || !Number.isInteger(port)) {
          out.push({ field: `${at}.ports[${j}].containerPort`, type: port === undefined ? 'FieldValueRequired' : 'FieldValueInvalid', value: port, detail: port === undefined ? '' : 'must be between 1 and 65535, inclusive' });
        }
      });
    }
  });
  return out;
}

function podSpecErrors(spec: JsonValue | undefined, field: string): FieldError[] {
  if (!isObject(spec)) return [{ field: `${field}.containers`, type: 'FieldValueRequired', detail: '' }];
  const out = [...containerErrors(spec.containers, `${field}.containers`, true), ...containerErrors(spec.initContainers, `${field}.initContainers`, false)];
  const grace = spec.terminationGracePeriodSeconds;
  if (grace !== undefined && (typeof grace !== 'number' || grace < 0)) {
    out.push({ field: `${field}.terminationGracePeriodSeconds`, type: 'FieldValueInvalid', value: grace, detail: 'must be greater than or equal to 0' });
  }
  return out;
}

function intOrPercent(v: JsonValue | undefined): boolean {
  return v === undefined || (typeof v === 'number' && Number.isInteger(v) && v >= 0) || (typeof v === 'string' && /^\d+%$/.test(v));
}

function workloadErrors(o: KubeObject): FieldError[] {
  const spec = o.spec;
  if (!isObject(spec)) return [{ field: 'spec.selector', type: 'FieldValueRequired', detail: '' }];
  const out: FieldError[] = [];
  const template = isObject(spec.template) ? spec.template : {};
  const tmeta: JsonObject = isObject(template.metadata) ? template.metadata : {};
  const tlabels = (isObject(tmeta.labels) ? tmeta.labels : {}) as Record<string, string>;
  const sel = spec.selector;
  if (!isObject(sel) || (Object.keys(isObject(sel.matchLabels) ? sel.matchLabels : {}).length === 0 && !(Array.isArray(sel.matchExpressions) && sel.matchExpressions.length > 0))) {
    out.push({ field: 'spec.selector', type: 'FieldValueRequired', detail: '' });
    if (isObject(sel)) out.push({ field: 'spec.selector', type: 'FieldValueInvalid', value: sel, detail: 'empty selector is invalid for deployment' });
  } else {
    out.push(...labelErrors(sel.matchLabels, 'spec.selector.matchLabels'));
    const matches = labelSelectorObject(sel);
    if (matches && !matches(tlabels)) {
      out.push({ field: 'spec.template.metadata.labels', type: 'FieldValueInvalid', value: tlabels, detail: '`selector` does not match template `labels`' });
    }
  }
  out.push(...labelErrors(tmeta.labels, 'spec.template.metadata.labels'));
  const replicas = spec.replicas;
  if (replicas !== undefined && (typeof replicas !== 'number' || replicas < 0 || !Number.isInteger(replicas))) {
    out.push({ field: 'spec.replicas', type: 'FieldValueInvalid', value: replicas, detail: 'must be greater than or equal to 0' });
  }
  out.push(...podSpecErrors(template.spec, 'spec.template.spec'));
  if (o.kind === 'Deployment' && isObject(spec.strategy)) {
    const type = spec.strategy.type;
    if (type !== undefined && type !== 'RollingUpdate' && type !== 'Recreate') {
      out.push({ field: 'spec.strategy.type', type: 'FieldValueNotSupported', value: type, detail: 'supported values: "Recreate", "RollingUpdate"' });
    }
    const ru = spec.strategy.rollingUpdate;
    if (isObject(ru)) {
      if (type === 'Recreate') out.push({ field: 'spec.strategy.rollingUpdate', type: 'FieldValueForbidden', detail: 'may not be specified when strategy `type` is \'Recreate\'' });
      for (const k of ['maxSurge', 'maxUnavailable']) {
        if (!intOrPercent(ru[k])) out.push({ field: `spec.strategy.rollingUpdate.${k}`, type: 'FieldValueInvalid', value: ru[k], detail: 'must be an integer or percentage (e.g \'5%\')' });
      }
      if ((ru.maxSurge === 0 || ru.maxSurge === '0%') && (ru.maxUnavailable === 0 || ru.maxUnavailable === '0%')) {
        out.push({ field: 'spec.strategy.rollingUpdate.maxUnavailable', type: 'FieldValueInvalid', value: ru.maxUnavailable, detail: 'may not be 0 when `maxSurge` is 0' });
      }
    }
  }
  return out;
}

function serviceErrors(o: KubeObject): FieldError[] {
  const spec = isObject(o.spec) ? o.spec : {};
  const out: FieldError[] = [];
  const type = spec.type ?? 'ClusterIP';
  if (!['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'].includes(String(type))) {
    out.push({ field: 'spec.type', type: 'FieldValueNotSupported', value: type, detail: 'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"' });
  }
  const ports = Array.isArray(spec.ports) ? spec.ports : [];
  const headless = spec.clusterIP === 'None';
  if (ports.length === 0 && type !== 'ExternalName' && !headless) out.push({ field: 'spec.ports', type: 'FieldValueRequired', detail: '' });
  const seen = new Set<string>();
  ports.forEach((p, i) => {
    const at = `spec.ports[${i}]`;
    if (!isObject(p)) return;
    const port = p.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      out.push({ field: `${at}.port`, type: port === undefined ? 'FieldValueRequired' : 'FieldValueInvalid', value: port, detail: port === undefined ? '' : 'must be between 1 and 65535, inclusive' });
    }
    if (ports.length > 1 && (typeof p.name !== 'string' || p.name === '')) out.push({ field: `${at}.name`, type: 'FieldValueRequired', detail: '' });
    const protocol = p.protocol ?? 'TCP';
    if (!['TCP', 'UDP', 'SCTP'].includes(String(protocol))) {
      out.push({ field: `${at}.protocol`, type: 'FieldValueNotSupported', value: protocol, detail: 'supported values: "SCTP", "TCP", "UDP"' });
    }
    const id = `${String(port)}/${String(protocol)}`;
    if (seen.has(id)) out.push({ field: `${at}`, type: 'FieldValueDuplicate', value: p, detail: '' });
    seen.add(id);
    const tp = p.targetPort;
    if (typeof tp === 'number' && (tp < 1 || tp > 65535)) {
      out.push({ field: `${at}.targetPort`, type: 'FieldValueInvalid', value: tp, detail: 'must be between 1 and 65535, inclusive' });
    }
  });
  out.push(...labelErrors(spec.selector, 'spec.selector'));
  return out;
}

function ingressErrors(o: KubeObject): FieldError[] {
  const spec = isObject(o.spec) ? o.spec : {};
  const out: FieldError[] = [];
  const rules = Array.isArray(spec.rules) ? spec.rules : [];
  if (rules.length === 0 && !isObject(spec.defaultBackend)) out.push({ field: 'spec.rules', type: 'FieldValueRequired', detail: 'either `defaultBackend` or `rules` must be specified' });
  rules.forEach((r, i) => {
    const paths = isObject(r) && isObject(r.http) && Array.isArray(r.http.paths) ? r.http.paths : [];
    paths.forEach((p, j) => {
      const at = `spec.rules[${i}].http.paths[${j}]`;
      if (!isObject(p)) return;
      if (p.pathType === undefined) out.push({ field: `${at}.pathType`, type: 'FieldValueRequired', detail: 'pathType must be specified' });
      else if (!['Exact', 'Prefix', 'ImplementationSpecific'].includes(String(p.pathType))) {
        out.push({ field: `${at}.pathType`, type: 'FieldValueNotSupported', value: p.pathType, detail: 'supported values: "Exact", "ImplementationSpecific", "Prefix"' });
      }
      if (!isObject(p.backend)) out.push({ field: `${at}.backend`, type: 'FieldValueRequired', detail: '' });
    });
  });
  return out;
}

/** Validation errors of an object about to be stored (empty when valid). */
export function validateObject(r: ResourceDescriptor, o: KubeObject): FieldError[] {
  const out: FieldError[] = [];
  const name = o.metadata.name;
  if (typeof name !== 'string' || name === '') {
    out.push({ field: 'metadata.name', type: 'FieldValueRequired', detail: 'name or generateName is required' });
  } else out.push(...nameErrors(name, r.nameRule, 'metadata.name'));
  out.push(...labelErrors(o.metadata.labels, 'metadata.labels'));
  if (o.metadata.annotations !== undefined && !isObject(o.metadata.annotations)) {
    out.push({ field: 'metadata.annotations', type: 'FieldValueInvalid', value: o.metadata.annotations, detail: 'must be a map of strings' });
  }
  switch (r.kind) {
    case 'Deployment':
    case 'ReplicaSet':
      out.push(...workloadErrors(o));
      break;
    case 'Pod':
      out.push(...podSpecErrors(o.spec, 'spec'));
      break;
    case 'Service':
      out.push(...serviceErrors(o));
      break;
    case 'Ingress':
      out.push(...ingressErrors(o));
      break;
    default:
      break;
  }
  return out;
}
