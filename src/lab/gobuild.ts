/**
 * Binaries the lab builds from Go modules kept in this repository (`lab/<component>/`: go.mod, go.sum and a small
 * main or a tools file): each goes into `${XDG_CACHE_HOME:-~/.cache}/alb-rollout/<component>/<version>-<hash>/`,
 * keyed by the pinned version and a hash of the module's files, so a second build takes milliseconds.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildEnv, lastLines, runGo } from './controlplane/build.js';

export interface GoComponent {
  /** Folder under lab/ and under the cache: `lbc`. */
  name: string;
  /** Human name for progress and errors: `the AWS Load Balancer Controller`. */
  title: string;
  binary: string;
  /** The package to build (`.` for a main in the module itself). */
  pkg: string;
  /** The module whose required version names the build (read from go.mod). */
  versionModule: string;
  /** Linker flags for that version (`-s -w` and any `-X`). */
  ldflags(version: string): string;
  /** The `lab build` flag that builds it, for the fix in "not built" errors. */
  buildFlag: string;
  /**
   * One-literal changes to files of `versionModule`, applied at build time to a copy of the module beside the
   * binary (built through `-modfile` with a `replace` to it; the module cache and this repository keep the upstream
   * text). Each `from` must occur exactly once, or the build stops.
   */
  patches?: SourcePatch[];
}

export interface SourcePatch {
  /** Path inside the module, e.g. `controller/controller.go`. */
  file: string;
  from: string;
  to: string;
  /** Why, for the build log and the docs. */
  why: string;
}

export interface GoSource {
  dir: string;
  version: string;
  /** sha256 of the module's go.mod, go.sum and .go files, first 12 hex digits. */
  hash: string;
}

export interface GoBuildResult {
  path: string;
  source: GoSource;
  cached: boolean;
  seconds: number;
}

/** A setup problem the user fixes (no Go, no module proxy, not built yet): exit code 2, no stack trace. */
export class GoSetupError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
    this.name = 'GoSetupError';
  }
}

/** lab/<name> in the working directory, else the one shipped beside this code (src/ or dist/). */
export function findModuleDir(component: Pick<GoComponent, 'name'>, cwd: string): string {
  const local = join(cwd, 'lab', component.name);
  if (existsSync(join(local, 'go.mod'))) return local;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'lab', component.name);
    if (existsSync(join(candidate, 'go.mod'))) return candidate;
    dir = dirname(dir);
  }
  throw new GoSetupError(`the Go module lab/${component.name}/go.mod was not found from ${cwd}`, 'run alb-rollout from a checkout of the repository');
}

export async function readGoSource(component: GoComponent, dir: string): Promise<GoSource> {
  const files = (await readdir(dir)).filter((f) => f === 'go.mod' || f === 'go.sum' || f.endsWith('.go')).sort();
  const hash = createHash('sha256');
  let goMod = '';
  for (const f of files) {
    const text = await readFile(join(dir, f), 'utf8');
    if (f === 'go.mod') goMod = text;
    hash.update(`${f}\0${text}\0`);
  }
  for (const p of component.patches ?? []) hash.update(`patch\0${p.file}\0${p.from}\0${p.to}\0`);
  const version = new RegExp(`^\\s*(?:require\\s+)?${component.versionModule.replace(/[.]/g, '\\.')}\\s+(v\\S+)`, 'm').exec(goMod)?.[1];
  if (!version) throw new GoSetupError(`${join(dir, 'go.mod')} does not require ${component.versionModule}`, `restore lab/${component.name}/go.mod from git`);
  return { dir, version, hash: hash.digest('hex').slice(0, 12) };
}

/** `${XDG_CACHE_HOME:-~/.cache}/alb-rollout/<name>` */
export function componentCacheRoot(component: Pick<GoComponent, 'name'>, env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.trim() !== '' ? env.XDG_CACHE_HOME : join(env.HOME ?? homedir(), '.cache');
  return join(base, 'alb-rollout', component.name);
}

export function componentBinaryPath(component: GoComponent, source: GoSource, env: NodeJS.ProcessEnv): string {
  return join(componentCacheRoot(component, env), `${source.version}-${source.hash}`, component.binary);
}

async function executable(path: string): Promise<boolean> {
  try {
    const st = await stat(path);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** The cached binary `lab up` runs; a clear setup error when `lab build` has not run. */
export async function requireComponent(component: GoComponent, cwd: string, env: NodeJS.ProcessEnv): Promise<{ path: string; source: GoSource }> {
  const source = await readGoSource(component, findModuleDir(component, cwd));
  const path = componentBinaryPath(component, source, env);
  if (await executable(path)) return { path, source };
  throw new GoSetupError(
    `${component.title} (${source.version}) is not built: ${path} does not exist`,
    `run \`npx alb-rollout lab build ${component.buildFlag}\` first (needs Go and the Go module proxy; minutes the first time, seconds after)`,
  );
}

export interface GoBuildOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  progress: (line: string) => void;
  now?: () => number;
}

export async function buildComponent(component: GoComponent, options: GoBuildOptions): Promise<GoBuildResult> {
  const now = options.now ?? Date.now;
  const started = now();
  const source = await readGoSource(component, findModuleDir(component, options.cwd));
  const target = componentBinaryPath(component, source, options.env);
  if (await executable(target)) return { path: target, source, cached: true, seconds: (now() - started) / 1000 };

  const goEnv = buildEnv(options.env);
  const goVersion = await runGo(['version'], source.dir, goEnv).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') {
      throw new GoSetupError('Go is not installed: `go` is not on PATH', 'install Go 1.26 or newer (Debian: apt-get install golang), or leave the real component out');
    }
    throw err;
  });
  options.progress(`building ${component.title} ${source.version} (${goVersion.stdout.trim()})`);
  options.progress('1/3 downloading Go modules…');
  const download = await runGo(['mod', 'download'], source.dir, goEnv);
  if (download.code !== 0) {
    throw new GoSetupError(
      `Go could not download the modules of lab/${component.name} (GOPROXY=${goEnv.GOPROXY ?? 'default'}): ${lastLines(download.stderr)}`,
      'check network access to the Go module proxy (GOPROXY), or fill the module cache on a machine that has it',
    );
  }
  await mkdir(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${component.binary}.${process.pid}.tmp`);
  const modfile = component.patches?.length ? await patchedModfile(component, options, source, dirname(target)) : undefined;
  options.progress(`2/3 compiling ${component.pkg} (go build -p 2; several minutes cold on 2 cores)…`);
  let compiled = 0;
  let lastReport = now();
  const modfileArgs = modfile ? [`-modfile=${modfile}`] : [];
  const build = await runGo(['build', '-p', '2', '-v', '-trimpath', ...modfileArgs, '-ldflags', component.ldflags(source.version), '-o', tmp, component.pkg], source.dir, goEnv, (line) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    compiled++;
    if (now() - lastReport > 30_000) {
      lastReport = now();
      options.progress(`   …${compiled} packages compiled (${Math.round((now() - started) / 1000)}s)`);
    }
  });
  if (build.code !== 0) {
    await rm(tmp, { force: true });
    throw new GoSetupError(`go build of lab/${component.name} failed (exit ${build.code}): ${lastLines(build.stderr, 12)}`, 'read the compiler output above; a Go older than go.mod asks for needs GOTOOLCHAIN set to a newer release');
  }
  options.progress('3/3 installing into the cache');
  await chmod(tmp, 0o755);
  await rename(tmp, target);
  return { path: target, source, cached: false, seconds: (now() - started) / 1000 };
}

/**
 * A copy of `versionModule` beside the binary with `component.patches` applied, and a go.mod/go.sum pair
 * (`-modfile`) that is lab/<name>/go.mod plus a `replace` to that copy. (`go build -overlay` cannot replace files in
 * the module cache; the module cache and this repository keep upstream's text.)
 */
async function patchedModfile(component: GoComponent, options: GoBuildOptions, source: GoSource, dir: string): Promise<string> {
  const moduleDir = await requiredModuleDir(component, options.cwd, options.env);
  const copy = join(dir, 'src', `${component.versionModule.split('/').pop() ?? component.name}@${source.version}`);
  await rm(copy, { recursive: true, force: true });
  await cp(moduleDir, copy, { recursive: true });
  for (const p of component.patches ?? []) {
    const file = join(copy, p.file);
    const text = await readFile(file, 'utf8');
    const count = text.split(p.from).length - 1;
    if (count !== 1) {
      throw new GoSetupError(
        `the build patch of ${component.versionModule} ${p.file} (${p.why}) expects ${JSON.stringify(p.from)} once, found it ${count} times`,
        `the pinned release changed: update the patch in src/lab/gobuild.ts (${component.name}) to the new source`,
      );
    }
    await chmod(file, 0o644);
    await writeFile(file, text.replace(p.from, p.to));
    options.progress(`   patch ${p.file}: ${p.why}`);
  }
  const modfile = join(dir, 'build.mod');
  const goMod = await readFile(join(source.dir, 'go.mod'), 'utf8');
  await writeFile(modfile, `${goMod}\n// Added by lab build: the patched copy (see src/lab/gobuild.ts).\nreplace ${component.versionModule} => ${copy}\n`);
  await cp(join(source.dir, 'go.sum'), join(dir, 'build.sum'));
  return modfile;
}

/** Where the Go module cache holds a required module's files (the LBC's CRDs and webhook manifests). */
export async function requiredModuleDir(component: GoComponent, cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  const dir = findModuleDir(component, cwd);
  const out = await runGo(['list', '-m', '-f', '{{.Dir}}', component.versionModule], dir, buildEnv(env));
  const path = out.stdout.trim();
  if (out.code !== 0 || !path) {
    throw new GoSetupError(`Go could not locate ${component.versionModule} in the module cache: ${lastLines(out.stderr)}`, `run \`npx alb-rollout lab build ${component.buildFlag}\` (it downloads the module)`);
  }
  return path;
}

/** The AWS Load Balancer Controller, built from the module `lab/lbc/go.mod` pins (its main package is the module root). */
export const LBC_COMPONENT: GoComponent = {
  name: 'lbc',
  title: 'the AWS Load Balancer Controller',
  binary: 'aws-load-balancer-controller',
  pkg: 'sigs.k8s.io/aws-load-balancer-controller',
  versionModule: 'sigs.k8s.io/aws-load-balancer-controller',
  buildFlag: '--lbc real',
  ldflags: (version) => {
    const commit = /-([0-9a-f]{12})$/.exec(version)?.[1] ?? '';
    const pkg = 'sigs.k8s.io/aws-load-balancer-controller/pkg/version';
    return ['-s', '-w', `-X ${pkg}.GitVersion=${version}`, ...(commit ? [`-X ${pkg}.GitCommit=${commit}`] : [])].join(' ');
  },
};

/** The Argo Rollouts controller, built from the release `lab/argo/go.mod` pins (its CRDs come from the same module). */
export const ARGO_ROLLOUTS_COMPONENT: GoComponent = {
  name: 'argo-rollouts',
  title: 'the Argo Rollouts controller',
  binary: 'rollouts-controller',
  pkg: 'github.com/argoproj/argo-rollouts/cmd/rollouts-controller',
  versionModule: 'github.com/argoproj/argo-rollouts',
  buildFlag: '--argo-rollouts',
  ldflags: (version) => ['-s', '-w', `-X github.com/argoproj/argo-rollouts/utils/version.version=${version.replace(/^v/, '')}`].join(' '),
  patches: [
    {
      file: 'controller/controller.go',
      from: 'listenAddr                         = "0.0.0.0:%d"',
      to: 'listenAddr                         = "127.0.0.1:%d"',
      why: 'the metrics and healthz servers listen on loopback only (upstream: a constant 0.0.0.0, no flag)',
    },
  ],
};
