import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ExitCode, InputError } from '../errors.js';
import { RULES } from '../lint/index.js';
import { renderFindingsGithub, renderFindingsJson, renderFindingsText } from '../lint/render.js';
import { parseOptions, type Options } from '../options.js';
import { preflight } from '../plan/index.js';
import { renderPlanJson, renderPlanText } from '../report/plan.js';
import { renderManifestsYaml } from '../tune/index.js';
import { MANIFEST_FLAGS, manifestRawOptions, parseVerbArgs } from './args.js';

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
  --readiness-gates inject|require|off   (default: inject)
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
    io.stdout(options.format === 'json' ? renderPlanJson(result.plan) : renderPlanText(result.plan));
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
    const options = parseOptions(manifestRawOptions(values, io.cwd), { tune: 'check' }, ruleIds());
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

export const commands: Command[] = [plan, lint];
