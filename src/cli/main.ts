import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ExitCode, InputError, UnreachableError, exitCodeOf } from '../errors.js';
import { VERSION } from '../version.js';
import { commands, type CliIo } from './commands.js';

export type { CliIo } from './commands.js';

const USAGE = `alb-rollout ${VERSION} — zero-downtime rollouts behind an AWS ALB (AWS Load Balancer Controller)

Usage: alb-rollout <verb> [flags]

Verbs:
${commands.map((c) => `  ${c.name.padEnd(9)} ${c.summary}`).join('\n')}

Run \`alb-rollout <verb> --help\` for the flags of one verb.
Exit codes: 0 ok · 1 findings or rollout failed/rolled back · 2 invalid input (nothing applied) · 3 cluster or AWS unreachable`;

/** Runs one CLI invocation; returns the exit code. All I/O goes through `io` so tests run it in-process. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    io.stdout(`${USAGE}\n`);
    return verb === undefined ? ExitCode.invalidInput : ExitCode.ok;
  }
  if (verb === '--version' || verb === 'version') {
    io.stdout(`${VERSION}\n`);
    return ExitCode.ok;
  }
  const command = commands.find((c) => c.name === verb);
  if (!command) {
    io.stderr(`error: unknown verb "${verb}"\n  fix: use one of ${commands.map((c) => c.name).join(', ')} (alb-rollout --help)\n`);
    return ExitCode.invalidInput;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    const code = exitCodeOf(err);
    if (err instanceof InputError) {
      io.stderr(`error: invalid input, nothing was applied or changed:\n${indent(err.message)}\n`);
    } else if (err instanceof UnreachableError) {
      io.stderr(`error: ${err.message}\n`);
    } else {
      // Not an input, cluster or AWS problem: a bug. The message, not a stack trace (ALB_ROLLOUT_DEBUG=1 adds it).
      const message = err instanceof Error ? err.message : String(err);
      io.stderr(`error: ${message}\n  this is unexpected (a bug in alb-rollout): re-run with ALB_ROLLOUT_DEBUG=1 for the stack trace and report it\n`);
      if (io.env.ALB_ROLLOUT_DEBUG === '1' && err instanceof Error && err.stack) io.stderr(`${err.stack}\n`);
    }
    return code;
  }
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/**
 * The AWS SDK warns on every run under Node 20 that releases after January 2027 need Node 22. The locked SDK works;
 * the warning would bury the output people read at 3 a.m., so the CLI edge drops that one warning type.
 */
function dropSdkNodeVersionWarning(): void {
  const emit = process.emitWarning.bind(process);
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    const name = warning instanceof Error ? warning.name : type;
    if (name === 'NodeVersionSupportWarning' || String(warning).includes('NodeVersionSupportWarning')) return;
    (emit as (...a: unknown[]) => void)(warning, ...rest);
  }) as typeof process.emitWarning;
}

if (isMain()) {
  dropSdkNodeVersionWarning();
  const io: CliIo = {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    cwd: process.cwd(),
    env: process.env,
  };
  runCli(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`error: ${String(err)}\n`);
      process.exitCode = ExitCode.failed;
    },
  );
}
