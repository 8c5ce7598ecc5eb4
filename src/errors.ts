/** Exit codes shared by the CLI and the Action (DESIGN.md "Interfaces"). */
export const ExitCode = {
  ok: 0,
  /** Lint errors, a rollout that failed, or a rollout that was rolled back. */
  failed: 1,
  /** Invalid input or configuration; nothing was applied. */
  invalidInput: 2,
  /** The cluster or AWS could not be reached. */
  unreachable: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface SourceRef {
  file: string;
  line: number;
  column?: number;
}

/** One problem with the user's input, located in a file when possible. */
export interface InputProblem {
  message: string;
  fix: string;
  source?: SourceRef;
}

/** Bad input: the run stops before anything is applied and exits 2. */
export class InputError extends Error {
  readonly exitCode = ExitCode.invalidInput;
  constructor(readonly problems: InputProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'InputError';
  }
  static single(message: string, fix: string, source?: SourceRef): InputError {
    return new InputError([{ message, fix, ...(source ? { source } : {}) }]);
  }
}

/** The cluster or AWS could not be reached; exits 3. */
export class UnreachableError extends Error {
  readonly exitCode = ExitCode.unreachable;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnreachableError';
  }
}

export function formatSource(source: SourceRef): string {
  return source.column ? `${source.file}:${source.line}:${source.column}` : `${source.file}:${source.line}`;
}

export function formatProblem(p: InputProblem): string {
  const where = p.source ? `${formatSource(p.source)}: ` : '';
  return `${where}${p.message}\n  fix: ${p.fix}`;
}

const EXIT_CODES: readonly number[] = Object.values(ExitCode);

/** The exit code an error stands for: its own `exitCode` when it carries one of ours (InputError, UnreachableError, DeployError…), else 1. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof InputError || err instanceof UnreachableError) return err.exitCode;
  const code = (err as { exitCode?: unknown } | null)?.exitCode;
  if (typeof code === 'number' && code !== ExitCode.ok && EXIT_CODES.includes(code)) return code as ExitCode;
  return ExitCode.failed;
}
