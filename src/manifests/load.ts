import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { Composer, isMap, isPair, isScalar, isSeq, LineCounter, Parser, type Node as YamlNode } from 'yaml';
import { InputError, type InputProblem, type SourceRef } from '../errors.js';
import { LEAF, MAP, NO_KEY, parseFastYaml, SEQ, type FastDocument } from './fast-yaml.js';
import { offlineScope, replacementApiVersion } from './kinds.js';
import type { FieldPath, JsonObject, KubeObject, LoadedObject, ManifestSet, ObjectRef } from './types.js';

export const MAX_FILE_BYTES = 4 * 1024 * 1024;
/** yaml's own guard against "billion laughs" documents: more alias expansions than this is an attack or a mistake. */
const MAX_ALIAS_COUNT = 100;
const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

export interface LoadOptions {
  /** Files, directories (read recursively), glob patterns, or `-` for standard input. */
  paths: string[];
  /** Namespace for namespaced objects that name none (kubectl's `-n`). */
  defaultNamespace: string;
  /** Paths in messages are shown relative to this folder (the repository root in the Action). */
  baseDir: string;
  readStdin?: () => Promise<string>;
}

/**
 * Reads every manifest, validates it, and returns the objects with their source positions.
 * Any problem in any file is collected and thrown together as one InputError: nothing is returned half-valid.
 */
export async function loadManifests(options: LoadOptions): Promise<ManifestSet> {
  const problems: InputProblem[] = [];
  const files = await expandPaths(options.paths, options.baseDir, problems);
  const objects: LoadedObject[] = [];
  for (const file of files) {
    const display = file === '-' ? '<stdin>' : relative(options.baseDir, file) || file;
    let text: string;
    try {
      text = file === '-' ? await readStdinOrFail(options) : await readBounded(file);
    } catch (err) {
      problems.push({
        message: (err as Error).message,
        fix: 'pass manifest files under the size limit that this user can read',
        source: { file: display, line: 1 },
      });
      continue;
    }
    objects.push(...parseManifestText(text, display, options.defaultNamespace, problems));
  }
  checkDuplicates(objects, problems);
  if (objects.length === 0 && problems.length === 0) {
    problems.push({
      message: `no Kubernetes objects found in ${options.paths.join(', ')}`,
      fix: 'point -f at YAML or JSON manifests (files, folders, or globs such as k8s/**/*.yaml)',
    });
  }
  if (problems.length > 0) throw new InputError(problems);
  return { objects, files: files.map((f) => (f === '-' ? '<stdin>' : relative(options.baseDir, f) || f)) };
}

async function readStdinOrFail(options: LoadOptions): Promise<string> {
  if (!options.readStdin) throw new Error('reading manifests from standard input (-f -) is not available here');
  const text = await options.readStdin();
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) {
    throw new Error(`standard input is larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB`);
  }
  return text;
}

async function readBounded(file: string): Promise<string> {
  const info = await stat(file);
  if (info.size > MAX_FILE_BYTES) {
    throw new Error(
      `file is ${(info.size / 1024 / 1024).toFixed(1)} MiB, over the ${MAX_FILE_BYTES / 1024 / 1024} MiB limit for one manifest file`,
    );
  }
  return readFile(file, 'utf8');
}

/** Parses one file's text (multi-document YAML or JSON, `kind: List` expanded) into validated objects. */
export function parseManifestText(
  text: string,
  file: string,
  defaultNamespace: string,
  problems: InputProblem[],
): LoadedObject[] {
  const fast = parseFastYaml(text);
  if (fast) {
    const found: InputProblem[] = [];
    const objects = fromFastDocuments(fast, text, file, defaultNamespace, found);
    // Anything to report, or a List to expand: read it again the full way, which words every problem.
    if (objects && found.length === 0) return objects;
  }
  return parseWithYaml(text, file, defaultNamespace, problems);
}

function fromFastDocuments(
  docs: FastDocument[],
  text: string,
  file: string,
  defaultNamespace: string,
  problems: InputProblem[],
): LoadedObject[] | undefined {
  const lineCounter = new LineCounter();
  lineCounter.addNewLine(0);
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineCounter.addNewLine(i + 1);
  const out: LoadedObject[] = [];
  for (const doc of docs) {
    if (doc.value.kind === 'List') return undefined;
    const positions: Positions = { nodes: Int32Array.from(doc.nodes), keys: doc.keys };
    const validated = validateObject(doc.value, positions, lineCounter, file, defaultNamespace, problems);
    if (validated) out.push(validated);
  }
  return out;
}

function parseWithYaml(text: string, file: string, defaultNamespace: string, problems: InputProblem[]): LoadedObject[] {
  const lineCounter = new LineCounter();
  // Streamed one document at a time (what parseAllDocuments does, without holding every Document): each is
  // converted to plain JSON plus a compact position index and then dropped.
  const docs = new Composer({ prettyErrors: false, uniqueKeys: true }).compose(new Parser(lineCounter.addNewLine).parse(text));
  const at = (offset: number): SourceRef => ({ file, line: lineCounter.linePos(offset).line });
  const out: LoadedObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = lineCounter.linePos(e.pos[0]);
        problems.push({
          message: `YAML syntax error (${e.code}): ${firstLine(e.message)}`,
          fix: 'fix the YAML at this line (indentation, quoting, a missing colon); `yamllint` shows the same spot',
          source: { file, line: pos.line, column: pos.col },
        });
      }
      continue;
    }
    const contents = doc.contents;
    if (contents === null || (isScalar(contents) && contents.value === null)) continue; // empty document
    const docStart = at(contents.range?.[0] ?? 0);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      problems.push({
        message: `document cannot be expanded: ${firstLine((err as Error).message)} (YAML aliases expand to too much data)`,
        fix: 'write the repeated parts out, or use fewer aliases (&anchor / *alias) in this document',
        source: docStart,
      });
      continue;
    }
    if (!isPlainObject(value) || !isMap(contents)) {
      problems.push({
        message: `a document here is a ${describeJsType(value)}, not a Kubernetes object`,
        fix: 'each YAML document (between --- lines) must be a mapping with apiVersion, kind and metadata',
        source: docStart,
      });
      continue;
    }
    checkTemplateMarkers(text, contents, lineCounter, file, value, problems);
    if (value.kind === 'List' && Array.isArray(value.items)) {
      const itemsNode = contents.get('items', true);
      value.items.forEach((item, index) => {
        const itemNode = isSeq(itemsNode) ? (itemsNode.items[index] as YamlNode | undefined) : undefined;
        const validated = validateObject(item, indexPositions(itemNode ?? contents), lineCounter, file, defaultNamespace, problems);
        if (validated) out.push(validated);
      });
      continue;
    }
    const validated = validateObject(value, indexPositions(contents), lineCounter, file, defaultNamespace, problems);
    if (validated) out.push(validated);
  }
  return out;
}

function validateObject(
  value: unknown,
  positions: Positions,
  lineCounter: LineCounter,
  file: string,
  defaultNamespace: string,
  problems: InputProblem[],
): LoadedObject | undefined {
  const locate = (path: FieldPath): SourceRef => ({ file, line: lineCounter.linePos(locateOffset(positions, path)).line });
  const source = locate([]);
  if (!isPlainObject(value)) {
    problems.push({
      message: `a list item here is a ${describeJsType(value)}, not a Kubernetes object`,
      fix: 'every item of a kind: List must be a mapping with apiVersion, kind and metadata',
      source,
    });
    return undefined;
  }
  const missing: string[] = [];
  if (typeof value.apiVersion !== 'string' || value.apiVersion === '') missing.push('apiVersion');
  if (typeof value.kind !== 'string' || value.kind === '') missing.push('kind');
  const metadata = value.metadata;
  const name = isPlainObject(metadata) ? metadata.name : undefined;
  if (typeof name !== 'string' || name === '') missing.push('metadata.name');
  if (missing.length > 0) {
    const hint =
      isPlainObject(metadata) && typeof metadata.generateName === 'string'
        ? ' (generateName cannot be applied idempotently: give the object a fixed metadata.name)'
        : '';
    problems.push({
      message: `object is missing ${missing.join(', ')}${hint}`,
      fix: 'every object needs apiVersion, kind and metadata.name, e.g. apiVersion: apps/v1, kind: Deployment',
      source,
    });
    return undefined;
  }
  const object = value as KubeObject;
  const replacement = replacementApiVersion(object.apiVersion, object.kind);
  if (replacement) {
    problems.push({
      message: `${object.kind} ${name} uses apiVersion ${object.apiVersion}, which ${replacement.removedIn ? `was removed in Kubernetes ${replacement.removedIn}` : 'is deprecated'}`,
      fix: `use apiVersion: ${replacement.use}${replacement.note ? ` (${replacement.note})` : ''}`,
      source: locate(['apiVersion']),
    });
    return undefined;
  }
  const written = typeof object.metadata.namespace === 'string' && object.metadata.namespace !== '';
  const scope = offlineScope(object.apiVersion, object.kind);
  if (scope === 'cluster') delete object.metadata.namespace;
  else if (scope === 'namespaced' && !written) object.metadata.namespace = defaultNamespace;
  const ref: ObjectRef = {
    apiVersion: object.apiVersion,
    kind: object.kind,
    namespace: object.metadata.namespace ?? '',
    name: object.metadata.name,
    ...(scope === 'unknown' ? { scopeUnknown: true, ...(!written ? { defaultNamespace } : {}) } : {}),
  };
  return { object, ref, source, locate };
}

/**
 * Where every node of one object starts, in preorder, so that `locate` needs neither the YAML Document nor its
 * nodes: per node its start offset (the key's for a map entry, the item's for a sequence item), the size of its
 * subtree and whether it is a map or a sequence; `keys` holds each map entry's key (a scalar's value).
 */
export interface Positions {
  /** [offset, subtree size (this node included), LEAF | MAP | SEQ] per node. */
  nodes: Int32Array;
  keys: unknown[];
}

/** The position index of a parsed YAML node (exported for the fast reader's tests). */
export function indexPositions(root: YamlNode): Positions {
  const fields: number[] = [];
  const keys: unknown[] = [];
  const visit = (node: unknown, offset: number, key: unknown): void => {
    const at = keys.length;
    keys.push(key);
    fields.push(offset, 1, isMap(node) ? MAP : isSeq(node) ? SEQ : LEAF);
    if (isMap(node)) {
      for (const pair of node.items) {
        if (isPair(pair) && isScalar(pair.key)) visit(pair.value, pair.key.range?.[0] ?? offset, pair.key.value);
        else visit(undefined, offset, NO_KEY);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) visit(item, (item as YamlNode | null)?.range?.[0] ?? offset, NO_KEY);
    }
    fields[3 * at + 1] = keys.length - at;
  };
  visit(root, root.range?.[0] ?? 0, NO_KEY);
  return { nodes: Int32Array.from(fields), keys };
}

/** The offset of the deepest node along `path` that exists; the key's for map entries. */
function locateOffset({ nodes, keys }: Positions, path: FieldPath): number {
  let node = 0;
  for (const segment of path) {
    const type = nodes[3 * node + 2];
    if (type === LEAF || (type === SEQ && typeof segment !== 'number')) break;
    const end = node + (nodes[3 * node + 1] as number);
    let found = -1;
    for (let child = node + 1, index = 0; child < end; child += nodes[3 * child + 1] as number, index++) {
      if (type === MAP ? keys[child] === segment : index === segment) {
        found = child;
        break;
      }
    }
    if (found < 0) break;
    node = found;
  }
  return nodes[3 * node] as number;
}

const TEMPLATE_MARKER = /\{\{-?\s*([^}]*?)\s*-?\}\}|\{\{|\$\{\{/;
/** Argo Rollouts / Argo Workflows resolve their own `{{args.x}}` markers at run time. */
const ARGO_MARKER = /^\{\{\s*(args|inputs|workflow|metrics|templates|steps|tasks)\./;

function checkTemplateMarkers(
  text: string,
  node: YamlNode,
  lineCounter: LineCounter,
  file: string,
  value: JsonObject,
  problems: InputProblem[],
): void {
  const [start, , end] = node.range ?? [0, 0, text.length];
  const body = text.slice(start, end);
  if (!body.includes('{{')) return;
  const isArgo = typeof value.apiVersion === 'string' && value.apiVersion.startsWith('argoproj.io/');
  const lines = body.split('\n');
  let offset = start;
  for (const line of lines) {
    const content = stripComment(line);
    const match = TEMPLATE_MARKER.exec(content);
    if (match && !(isArgo && ARGO_MARKER.test(content.slice(match.index)))) {
      problems.push({
        message: `unresolved template marker ${JSON.stringify(match[0].slice(0, 40))}: this file is a template, not a manifest`,
        fix: 'render it first (helm template …, envsubst, kustomize build) and pass the rendered output, e.g. `helm template . | alb-rollout deploy -f -`',
        source: { file, line: lineCounter.linePos(offset).line, column: match.index + 1 },
      });
      return;
    }
    offset += line.length + 1;
  }
}

function stripComment(line: string): string {
  const trimmed = line.trimStart();
  if (trimmed.startsWith('#')) return '';
  const hash = line.search(/\s#/);
  return hash >= 0 ? line.slice(0, hash) : line;
}

function checkDuplicates(objects: LoadedObject[], problems: InputProblem[]): void {
  const seen = new Map<string, LoadedObject>();
  for (const o of objects) {
    const group = o.ref.apiVersion.includes('/') ? o.ref.apiVersion.split('/')[0] : '';
    const key = `${group}|${o.ref.kind}|${o.ref.namespace}|${o.ref.name}`;
    const first = seen.get(key);
    if (first) {
      problems.push({
        message: `${o.ref.kind} ${o.ref.namespace ? `${o.ref.namespace}/` : ''}${o.ref.name} is defined twice (first at ${first.source.file}:${first.source.line})`,
        fix: 'keep one definition: the second would silently overwrite the first when applied',
        source: o.source,
      });
    } else {
      seen.set(key, o);
    }
  }
}

async function expandPaths(paths: string[], baseDir: string, problems: InputProblem[]): Promise<string[]> {
  const out: string[] = [];
  for (const raw of paths) {
    if (raw === '-') {
      out.push('-');
      continue;
    }
    if (hasGlob(raw)) {
      const matches = await expandGlob(raw, baseDir);
      if (matches.length === 0) {
        problems.push({
          message: `the pattern ${raw} matches no .yaml, .yml or .json file`,
          fix: 'check the pattern against the repository layout (it is resolved from the working directory)',
        });
      }
      out.push(...matches);
      continue;
    }
    const full = resolve(baseDir, raw);
    let info;
    try {
      info = await stat(full);
    } catch {
      problems.push({
        message: `${raw} does not exist`,
        fix: 'pass existing files or folders with -f (paths are resolved from the working directory)',
      });
      continue;
    }
    if (info.isDirectory()) {
      const found = await walk(full);
      if (found.length === 0) {
        problems.push({ message: `the folder ${raw} holds no .yaml, .yml or .json file`, fix: 'point -f at the folder with the manifests' });
      }
      out.push(...found);
    } else {
      out.push(full);
    }
  }
  return [...new Set(out)];
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile() && MANIFEST_EXTENSIONS.some((ext) => e.name.endsWith(ext))) out.push(p);
  }
  return out;
}

function hasGlob(p: string): boolean {
  return /[*?[\]{}]/.test(p);
}

async function expandGlob(pattern: string, baseDir: string): Promise<string[]> {
  const absolute = resolve(baseDir, pattern);
  const parts = absolute.split(sep);
  const firstGlob = parts.findIndex(hasGlob);
  const root = parts.slice(0, firstGlob).join(sep) || sep;
  const regex = globToRegExp(parts.slice(firstGlob).join('/'));
  let candidates: string[];
  try {
    candidates = await walk(root);
  } catch {
    return [];
  }
  return candidates.filter((f) => regex.test(relative(root, f).split(sep).join('/')));
}

/** Minimal glob: `**` crosses folders, `*` and `?` stay within one, `{a,b}` alternatives, `[abc]` classes. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
        i += glob[i + 2] === '/' ? 2 : 1;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '{') {
      const close = glob.indexOf('}', i);
      if (close < 0) re += '\\{';
      else {
        re += `(?:${glob
          .slice(i + 1, close)
          .split(',')
          .map((s) => s.replace(/[.+^$()|\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
          .join('|')})`;
        i = close;
      }
    } else if (c === '[') {
      const close = glob.indexOf(']', i);
      if (close < 0) re += '\\[';
      else {
        re += glob.slice(i, close + 1);
        i = close;
      }
    } else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeJsType(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v === 'object' ? 'mapping' : `${typeof v} (${JSON.stringify(v).slice(0, 30)})`;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
