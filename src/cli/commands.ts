import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { connect } from '../connect/index.js';
import { ExitCode, InputError } from '../errors.js';
import { renderAnalyzeText, runAnalyze } from '../guard/analyze.js';
import { parseDuration, parseGuardOptions } from '../guard/index.js';
import { RULES } from '../lint/index.js';
import { renderFindingsGithub, renderFindingsJson, renderFindingsText } from '../lint/render.js';
import { parseConnectionOptions, parseDeployOptions, parseOptions, parseRollbackOptions, type Options } from '../options.js';
import { preflight } from '../preflight/index.js';
import { renderDeploySummaryText } from '../report/deploy.js';
import { streamLogger } from '../report/log.js';
import { renderPlanText, writePlanJson } from '../report/plan.js';
import { executeDeploy, executeRollback } from '../rollout/execute.js';
import { renderManifestsYaml } from '../tune/index.js';
import { list, MANIFEST_FLAGS, manifestRawOptions, parseVerbArgs, str, type FlagValues } from './args.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, connectionRaw, GUARD_FLAG_OPTIONS, GUARD_HELP, guardRaw } from './flags.js';

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  readStdin: () => Promise<string>;
  cwd: string;
  env: Record<string, string | undefined>;
}

export interface Command {
  name: string;
  summary: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

const ruleIds = (): string[] => RULES.map((r) => r.id);

const MANIFEST_FLAGS_HELP = `  -f, --filename PATH        manifest file, folder, glob or - (stdin); repeatable
  -n, --namespace NS         namespace for objects that name none (default: default)
  --tune auto|check|off      timer tuning (deregistration delay < preStop < grace period)
  --readiness-gates inject|require|off   (default: require for lint, inject for plan and deploy)
  --shutdown-seconds N       app shutdown time reserved in the grace period (default: 5)
  --add-prestop true|false   may tune auto add a preStop sleep (default: true)`;

const plan: Command = {
  name: 'plan',
  summary: 'show the safe apply order, waits, timer tuning and rollout-time estimate (no cluster needed)',
  async run(argv, io) {
    const values = parseVerbArgs('plan', argv, MANIFEST_FLAGS);
    if (values.help) {
      io.stdout(`Usage: alb-rollout plan -f PATH… [flags]\n\n${MANIFEST_FLAGS_HELP}\n  -o, --format text|json\n  --output-dir DIR           write the (tuned) manifests there\n`);
      return ExitCode.ok;
    }
    const options = parseOptions(manifestRawOptions(values, io.cwd), { tune: 'auto' }, ruleIds());
    rejectFormat(options, ['text', 'json'], 'plan');
    const result = await preflight(options, { readStdin: io.readStdin });
    if (options.outputDir) await writeTuned(options, result.set, io);
    if (options.format === 'json') writePlanJson(result.plan, io.stdout);
    else io.stdout(renderPlanText(result.plan));
    const errors = result.lint.findings.filter((f) => f.severity === 'error');
    if (options.format === 'text' && errors.length > 0) {
      io.stderr(`\n${errors.length} lint error(s) would stop a deploy; run \`alb-rollout lint\` with the same flags for details.\n`);
    }
    return ExitCode.ok;
  },
};

const lint: Command = {
  name: 'lint',
  summary: 'find zero-downtime pitfalls in manifests (exit 1 on errors)',
  async run(argv, io) {
    const values = parseVerbArgs('lint', argv, MANIFEST_FLAGS);
    if (values.help) {
      io.stdout(
        `Usage: alb-rollout lint -f PATH… [flags]\n\n${MANIFEST_FLAGS_HELP}\n  -o, --format text|json|github\n  --severity RULE=LEVEL       override a rule's severity (error|warning|info|off); repeatable\n  --disable RULE             disable a rule; repeatable\n\nRules:\n${RULES.map((r) => `  ${r.id.padEnd(24)} ${r.defaultSeverity.padEnd(8)} ${r.summary}`).join('\n')}\n`,
      );
      return ExitCode.ok;
    }
    const options = parseOptions(manifestRawOptions(values, io.cwd), { tune: 'check', readinessGates: 'require' }, ruleIds());
    const result = await preflight(options, { readStdin: io.readStdin });
    const findings = result.lint.findings;
    if (options.format === 'json') io.stdout(renderFindingsJson(findings));
    else if (options.format === 'github') io.stdout(renderFindingsGithub(findings));
    else io.stdout(renderFindingsText(findings));
    return findings.some((f) => f.severity === 'error') ? ExitCode.failed : ExitCode.ok;
  },
};

function rejectFormat(options: Options, allowed: string[], verb: string): void {
  if (!allowed.includes(options.format)) {
    throw InputError.single(`--format ${options.format} is not available for ${verb}`, `use --format ${allowed.join(' or ')}`);
  }
}

/** `--format text|json` for the verbs that print either (default text). */
function textOrJson(values: FlagValues): 'text' | 'json' {
  const format = str(values, 'format') ?? 'text';
  if (format !== 'text' && format !== 'json') throw InputError.single(`--format ${format} is not text or json`, 'use --format text or --format json');
  return format;
}

async function writeTuned(options: Options, set: Parameters<typeof renderManifestsYaml>[0], io: CliIo): Promise<void> {
  const outDir = resolve(io.cwd, options.outputDir as string);
  const files = renderManifestsYaml(set);
  for (const [file, text] of files) {
    const target = join(outDir, file.replace(/^(\.\.\/)+/, '').replace(/^\/+/, ''));
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, text);
  }
  io.stderr(`wrote ${files.size} file(s) to ${outDir}\n`);
}

const DEPLOY_FLAGS = {
  ...MANIFEST_FLAGS,
  ...CONNECTION_FLAGS,
  ...GUARD_FLAG_OPTIONS,
  'dry-run': { type: 'boolean' },
  'force-conflicts': { type: 'boolean' },
  'routing-timeout': { type: 'string' },
  'rollout-timeout': { type: 'string' },
  rollback: { type: 'string' },
  'argo-pauses': { type: 'string' },
  report: { type: 'string' },
  'report-html': { type: 'string' },
} as const;

const deploy: Command = {
  name: 'deploy',
  summary: 'apply in the safe order, wait for gates, healthy targets and drained old targets; guard and roll back on 5xx',
  async run(argv, io) {
    const values = parseVerbArgs('deploy', argv, DEPLOY_FLAGS);
    if (values.help) {
      io.stdout(
        `Usage: alb-rollout deploy -f PATH… [flags]\n\n${MANIFEST_FLAGS_HELP}\n${CONNECTION_HELP}\n  --dry-run                  stop after preflight (load, lint, tune, server-side dry-run)\n  --force-conflicts          take ownership of fields another field manager owns\n  --routing-timeout 10m      wait for the ALB and TargetGroupBindings\n  --rollout-timeout 30m      wait for the rollout, gates and targets\n  --argo-pauses end|wait     an Argo Rollout at a pause only a person ends (pause: {}, blue-green awaiting promotion):\n                             end the run there, result paused, exit 0 (end), or wait through it until Healthy (wait)\n  --report FILE.json         write the result, phases, timeline, guard and API call counts\n  --report-html FILE.html    the same run as a self-contained page (the rollout chart, phases, guard, timeline)\n${GUARD_HELP}\n`,
      );
      return ExitCode.ok;
    }
    const options = parseOptions(manifestRawOptions(values, io.cwd), { tune: 'auto' }, ruleIds());
    const run = parseDeployOptions({
      dryRun: values['dry-run'] === true,
      forceConflicts: values['force-conflicts'] === true,
      routingTimeout: str(values, 'routing-timeout'),
      rolloutTimeout: str(values, 'rollout-timeout'),
      rollback: str(values, 'rollback'),
      argoPauses: str(values, 'argo-pauses'),
      report: str(values, 'report'),
      reportHtml: str(values, 'report-html'),
    });
    const guard = parseGuardOptions(guardRaw(values));
    const connection = parseConnectionOptions(connectionRaw(values));
    const log = streamLogger(io.stderr);
    const pre = await preflight(options, { readStdin: io.readStdin });
    for (const c of pre.plan.changes) log.info(`tune: ${c.object.kind} ${c.object.namespace}/${c.object.name} ${c.field}: ${c.from ?? '(unset)'} → ${c.to} (${c.reason})`);
    for (const f of pre.lint.findings.filter((x) => x.severity !== 'info')) log.info(`${f.severity}: ${f.file}:${f.line} ${f.rule}: ${f.message}`);
    const conns = await connect(connection, io.env, io.cwd);
    try {
      const result = await executeDeploy(pre, options, run, guard, conns, log, io.cwd);
      io.stdout(renderDeploySummaryText(result));
      return result.exitCode;
    } finally {
      conns.close();
    }
  },
};

const LAB_FLAGS = {
  'state-dir': { type: 'string' },
  'time-scale': { type: 'string' },
  timings: { type: 'string' },
  seed: { type: 'string' },
  faults: { type: 'string' },
  lab: { type: 'string' },
  'no-webhook': { type: 'boolean' },
  'control-plane': { type: 'string' },
  lbc: { type: 'string' },
  check: { type: 'boolean' },
  'argo-rollouts': { type: 'boolean' },
  'analysis-image': { type: 'string' },
  token: { type: 'string' },
  format: { type: 'string', short: 'o' },
  scenario: { type: 'string', multiple: true },
  rate: { type: 'string' },
  examples: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const LAB_HELP = `Usage:
  alb-rollout lab up [--state-dir DIR] [--time-scale N] [--timings fast|realistic] [--seed N] [--faults SPEC] [--no-webhook] [--token T] [--control-plane embedded|real [--lbc emulated|real] [--argo-rollouts] [--analysis-image NAME]]
      Start the simulated EKS cluster + AWS Load Balancer Controller + ALB on loopback and run until Ctrl-C.
      Writes DIR/kubeconfig, DIR/aws.env and DIR/lab.json (default DIR: .lab).
  alb-rollout lab experiment [--format text|json] [--scenario naive|safe]… [--rate N] [--time-scale N] [--timings fast|realistic] [--seed N] [--control-plane embedded|real] [--lbc emulated|real]
      The seed article's experiment: roll the 2048 image under traffic, naive and with alb-rollout deploy.
  alb-rollout lab fault --lab DIR [SPEC] [--format text|json]
      Change the faults of a running lab (no SPEC: show them). Also at start: lab up --faults SPEC.
      SPEC: elbv2-throttle=P, elbv2-5xx=P, kube-5xx=P (P as 0.2 or 20%), watch-drop=30s|off (world time),
      webhook=down|up, lbc=stop|start|restart, clear — comma-separated; keys not given keep their value.
      kube-5xx and watch-drop need the embedded control plane (a real kube-apiserver has no fault hooks).
  alb-rollout lab build [--control-plane real] [--lbc real] [--argo-rollouts] [--check]
      Build (or find cached) the real control plane: kube-apiserver, kube-controller-manager, kube-scheduler and
      etcd from Go modules (needs Go and the Go module proxy; 15-30 min the first time, seconds when cached);
      --lbc real: the AWS Load Balancer Controller from its Go module (about 30 min cold on 2 cores);
      --argo-rollouts: the Argo Rollouts controller (lab/argo-rollouts/go.mod's release; about 33 min cold; see
      docs/argo-rollouts.md).
      --check: build nothing; exit 0 when cached, 2 (naming the build command) when not.

  --control-plane embedded (default) runs this repository's API server and controllers in-process;
  --control-plane real runs a real Kubernetes control plane (built by \`lab build --control-plane real\`).
  --lbc emulated (default) runs the lab's port of the AWS Load Balancer Controller in-process; --lbc real runs
  the controller's own binary (built by \`lab build --lbc real\`; needs --control-plane real and \`unshare -rn\`:
  it runs in a network namespace of its own, bridged to the lab over Unix sockets).
  --argo-rollouts (real tier) also runs the real Argo Rollouts controller; the kubelet runs containers of the
  analysis image (--analysis-image NAME, default alb-rollout: the Dockerfile's) as \`node dist/cli.js ARGS\`.
  --timings fast (default): constant delays. realistic: AWS-like distributions with tails (LBC queue, per-node ALB
  propagation 5–30+ s, two ALB nodes health-checking on their own schedules, pod start jitter, CloudWatch lag).
  --seed N: the seed of the lab's one PRNG (default 1); the same seed gives the same draws.
`;

const lab: Command = {
  name: 'lab',
  summary: 'run the lab (simulated EKS + ALB on loopback): lab up, lab experiment, lab fault, lab build --control-plane real|--lbc real|--argo-rollouts',
  async run(argv, io) {
    const [sub, ...args] = argv;
    // `lab fault` takes its spec as arguments (`lab fault --lab .lab kube-5xx=10% webhook=down`).
    const specArgs = sub === 'fault' ? args.filter((a, i) => !a.startsWith('-') && !['--lab', '--format', '-o'].includes(args[i - 1] ?? '')) : [];
    const rest = args.filter((a) => !specArgs.includes(a));
    const values = parseVerbArgs(`lab ${sub ?? ''}`.trim(), rest, LAB_FLAGS);
    if (!sub || sub === '--help' || sub === '-h' || values.help) {
      io.stdout(LAB_HELP);
      return sub ? ExitCode.ok : ExitCode.invalidInput;
    }
    const labCli = await import('../lab/cli.js');
    const timeScale = labCli.parseTimeScale(str(values, 'time-scale'));
    const controlPlane = labCli.parseControlPlane(str(values, 'control-plane'));
    const lbcTier = sub === 'build' ? 'emulated' : labCli.parseLbc(str(values, 'lbc'), controlPlane);
    const profile = labCli.parseTimingProfile(str(values, 'timings'));
    const seed = labCli.parseSeed(str(values, 'seed'));
    const labIo = {
      stdout: io.stdout,
      stderr: io.stderr,
      cwd: io.cwd,
      stopSignal: () =>
        new Promise<string>((resolveSignal) => {
          process.once('SIGINT', () => resolveSignal('SIGINT'));
          process.once('SIGTERM', () => resolveSignal('SIGTERM'));
        }),
    };
    if (sub === 'fault') {
      const labDir = str(values, 'lab');
      if (!labDir) throw InputError.single('`lab fault` needs --lab DIR', 'pass the --state-dir of the running `lab up`, e.g. --lab .lab');
      return labCli.labFault({ labDir, format: textOrJson(values), ...(specArgs.length > 0 ? { spec: specArgs.join(',') } : {}) }, labIo);
    }
    const faultsSpec = str(values, 'faults');
    const faults = faultsSpec !== undefined ? labCli.parseFaultSpec(faultsSpec) : undefined;
    if (sub === 'up') {
      const token = str(values, 'token');
      const argoRollouts = values['argo-rollouts'] === true;
      const analysisImage = str(values, 'analysis-image');
      if ((argoRollouts || analysisImage !== undefined) && controlPlane !== 'real') {
        throw InputError.single(`--${argoRollouts ? 'argo-rollouts' : 'analysis-image'} needs --control-plane real`, 'use `alb-rollout lab up --control-plane real --argo-rollouts` (build both first: `lab build --control-plane real --argo-rollouts`)');
      }
      if (analysisImage !== undefined && !/^[a-z0-9][a-z0-9._\/-]*$/.test(analysisImage)) {
        throw InputError.single(`--analysis-image "${analysisImage}" is not an image repository name`, 'use a name without tag, e.g. --analysis-image alb-rollout or --analysis-image ghcr.io/acme/alb-rollout');
      }
      return labCli.labUp(
        {
          stateDir: str(values, 'state-dir') ?? '.lab',
          profile,
          seed,
          ...(faults ? { faults } : {}),
          webhook: values['no-webhook'] !== true,
          controlPlane,
          lbc: lbcTier,
          argoRollouts,
          ...(analysisImage ? { analysisImage } : {}),
          ...(timeScale ? { timeScale } : {}),
          ...(token ? { token } : {}),
        },
        labIo,
      );
    }
    if (sub === 'experiment') {
      const format = textOrJson(values);
      const scenarios = list(values, 'scenario');
      for (const sc of scenarios) {
        if (sc !== 'naive' && sc !== 'safe') throw InputError.single(`--scenario ${sc} is not naive or safe`, 'use --scenario naive and/or --scenario safe');
      }
      const rate = Number(str(values, 'rate') ?? '50');
      if (!Number.isFinite(rate) || rate < 1 || rate > 500) throw InputError.single(`--rate ${str(values, 'rate')} is not a number from 1 to 500`, 'use e.g. --rate 50 (requests per second)');
      return labCli.labExperiment(
        {
          format,
          scenarios: (scenarios.length > 0 ? scenarios : ['naive', 'safe']) as Array<'naive' | 'safe'>,
          ratePerSecond: rate,
          profile,
          seed,
          examplesDir: str(values, 'examples') ?? labCli.defaultExamplesDir(io.cwd),
          controlPlane,
          lbc: lbcTier,
          ...(timeScale ? { timeScale } : {}),
        },
        labIo,
      );
    }
    if (sub === 'build') {
      const lbcFlag = str(values, 'lbc');
      const argoRollouts = values['argo-rollouts'] === true;
      if (lbcFlag !== undefined && lbcFlag !== 'real') throw InputError.single(`\`lab build --lbc ${lbcFlag}\`: only the real controller is built`, 'use `alb-rollout lab build --lbc real` (the emulation needs no build)');
      if (controlPlane !== 'real' && lbcFlag !== 'real' && !argoRollouts) {
        throw InputError.single('`lab build` builds the real control plane, the real AWS Load Balancer Controller and the Argo Rollouts controller only', 'use `alb-rollout lab build --control-plane real` and/or `--lbc real` and/or `--argo-rollouts` (the embedded parts need no build)');
      }
      return labCli.labBuild({ controlPlane: controlPlane === 'real', lbc: lbcFlag === 'real', argoRollouts, check: values.check === true }, labIo);
    }
    throw InputError.single(`unknown lab verb "${sub}"`, 'use `alb-rollout lab up`, `alb-rollout lab experiment`, `alb-rollout lab fault` or `alb-rollout lab build --control-plane real`');
  },
};

const ANALYZE_FLAGS = {
  ...CONNECTION_FLAGS,
  ...GUARD_FLAG_OPTIONS,
  namespace: { type: 'string', short: 'n' },
  ingress: { type: 'string' },
  service: { type: 'string' },
  rollout: { type: 'string' },
  window: { type: 'string' },
  format: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const;

const analyze: Command = {
  name: 'analyze',
  summary: 'check target health, the probe and CloudWatch over a window (Argo Rollouts analysis Jobs): exit 0 pass, 1 fail',
  async run(argv, io) {
    const values = parseVerbArgs('analyze', argv, ANALYZE_FLAGS);
    if (values.help) {
      io.stdout(
        `Usage: alb-rollout analyze -n NAMESPACE (--ingress NAME | --service NAME | --rollout NAME) [--window 1m] [flags]\n\n` +
          `Passes (exit 0) when every ready endpoint is a healthy target, nothing registered is unhealthy, and the probe and\n` +
          `CloudWatch stay under the thresholds for the window; fails (exit 1) otherwise; 2 = bad input, 3 = unreachable.\n\n` +
          `  -n, --namespace NS\n  --ingress NAME | --service NAME | --rollout NAME\n  --window DURATION          how long to watch (default 1m)\n  -o, --format text|json\n${CONNECTION_HELP}\n${GUARD_HELP}\n`,
      );
      return ExitCode.ok;
    }
    const namespace = str(values, 'namespace') ?? 'default';
    const targets = ['ingress', 'service', 'rollout'].filter((k) => str(values, k) !== undefined);
    if (targets.length !== 1) throw InputError.single('analyze needs exactly one of --ingress, --service, --rollout', 'e.g. alb-rollout analyze -n shop --ingress web --window 2m');
    const format = textOrJson(values);
    const windowMs = parseDuration(str(values, 'window') ?? '1m');
    if (windowMs === undefined || windowMs <= 0 || windowMs > 6 * 3600_000) throw InputError.single(`--window ${str(values, 'window')} is not a duration`, 'use e.g. --window 90s, 2m or 1h');
    const guard = parseGuardOptions(guardRaw(values));
    const conn = await connect(parseConnectionOptions(connectionRaw(values)), io.env, io.cwd);
    try {
      const ingress = str(values, 'ingress');
      const service = str(values, 'service');
      const rollout = str(values, 'rollout');
      const result = await runAnalyze(
        { target: { namespace, ...(ingress ? { ingress } : {}), ...(service ? { service } : {}), ...(rollout ? { rollout } : {}) }, windowMs, guard },
        { kube: conn.kube, elbv2: conn.elbv2, cloudwatch: conn.cloudwatch, clock: conn.clock, log: streamLogger(io.stderr), ...(conn.probeUrlFor ? { probeUrlFor: conn.probeUrlFor } : {}) },
      );
      io.stdout(format === 'json' ? `${JSON.stringify(result)}\n` : renderAnalyzeText(result));
      return result.verdict === 'pass' ? ExitCode.ok : ExitCode.failed;
    } finally {
      conn.close();
    }
  },
};

const ROLLBACK_FLAGS = {
  ...CONNECTION_FLAGS,
  namespace: { type: 'string', short: 'n' },
  deployment: { type: 'string' },
  'to-revision': { type: 'string' },
  'rollout-timeout': { type: 'string' },
  'readiness-gates': { type: 'string' },
  report: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const rollback: Command = {
  name: 'rollback',
  summary: 'put a Deployment back to its previous (or a named) revision and wait as for a deploy',
  async run(argv, io) {
    const values = parseVerbArgs('rollback', argv, ROLLBACK_FLAGS);
    if (values.help) {
      io.stdout(
        `Usage: alb-rollout rollback -n NAMESPACE --deployment NAME [--to-revision N] [flags]\n\n` +
          `What \`kubectl rollout undo\` does, then the same waits as a deploy: new pods' readiness gates True, their targets\n` +
          `healthy, the rolled-back version's targets drained. Exit 0 when the previous version serves again.\n\n` +
          `  -n, --namespace NS\n  --deployment NAME\n  --to-revision N            a revision from \`kubectl rollout history\` (default: the previous one)\n  --rollout-timeout 30m\n  --readiness-gates inject|require|off   (default: inject — expect the gates)\n  --report FILE.json\n${CONNECTION_HELP}\n`,
      );
      return ExitCode.ok;
    }
    const request = parseRollbackOptions({
      namespace: str(values, 'namespace'),
      deployment: str(values, 'deployment'),
      toRevision: str(values, 'to-revision'),
      rolloutTimeout: str(values, 'rollout-timeout'),
      readinessGates: str(values, 'readiness-gates'),
      report: str(values, 'report'),
    });
    const conns = await connect(parseConnectionOptions(connectionRaw(values)), io.env, io.cwd);
    try {
      const result = await executeRollback(request, conns, streamLogger(io.stderr), io.cwd);
      io.stdout(renderDeploySummaryText(result));
      return result.exitCode;
    } finally {
      conns.close();
    }
  },
};

export const commands: Command[] = [plan, lint, deploy, analyze, rollback, lab];
