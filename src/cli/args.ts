import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InputError } from '../errors.js';
import type { RawOptions } from '../options.js';

/** Flags shared by the verbs that read manifests (plan, lint, deploy). */
export const MANIFEST_FLAGS = {
  filename: { type: 'string', short: 'f', multiple: true },
  namespace: { type: 'string', short: 'n' },
  format: { type: 'string', short: 'o' },
  tune: { type: 'string' },
  'readiness-gates': { type: 'string' },
  'shutdown-seconds': { type: 'string' },
  'add-prestop': { type: 'string' },
  severity: { type: 'string', multiple: true },
  disable: { type: 'string', multiple: true },
  'output-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export type FlagValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** Parses argv for one verb; unknown flags and stray positionals are input errors (exit 2) with the fix. */
export function parseVerbArgs(verb: string, argv: string[], options: NonNullable<ParseArgsConfig['options']>): FlagValues {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    if (positionals.length > 0) {
      throw InputError.single(
        `unexpected argument "${positionals[0]}" for \`alb-rollout ${verb}\``,
        `pass manifests with -f (e.g. -f ${positionals[0]}); see \`alb-rollout ${verb} --help\``,
      );
    }
    return values as FlagValues;
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw InputError.single(`${(err as Error).message}`, `see \`alb-rollout ${verb} --help\` for the flags it takes`);
  }
}

export function str(values: FlagValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function list(values: FlagValues, name: string): string[] {
  const v = values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
}

export function manifestRawOptions(values: FlagValues, cwd: string): RawOptions {
  return {
    manifests: list(values, 'filename'),
    namespace: str(values, 'namespace'),
    baseDir: cwd,
    format: str(values, 'format'),
    tune: str(values, 'tune'),
    readinessGates: str(values, 'readiness-gates'),
    shutdownSeconds: str(values, 'shutdown-seconds'),
    addPreStop: str(values, 'add-prestop'),
    severity: list(values, 'severity'),
    disable: list(values, 'disable'),
    outputDir: str(values, 'output-dir'),
  };
}
