import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Releases of an example app for the lab's experiments, tests and benchmarks: a copy of a manifest folder with
 * every container image re-tagged (a new version) and optional edits (a LAB_BEHAVIOR, other probe paths…).
 */

export type ManifestEdit = (file: string, text: string) => string;

/** `image: repo/name:old` → `image: repo/name:<tag>` on every image line. */
export function retag(text: string, tag: string): string {
  return text.replace(/(image:\s*\S+?):[\w.-]+$/gm, `$1:${tag}`);
}

/** Copies `fromDir` to `toDir`, re-tags every image to `tag` and applies `edit` to each file; returns `toDir`. */
export async function writeRelease(fromDir: string, toDir: string, tag: string, edit: ManifestEdit = (_f, t) => t): Promise<string> {
  await cp(fromDir, toDir, { recursive: true });
  for (const f of await readdir(toDir)) {
    const text = await readFile(join(toDir, f), 'utf8');
    await writeFile(join(toDir, f), edit(f, retag(text, tag)));
  }
  return toDir;
}

/**
 * For the 2048 example: probes and the ALB health check on /healthz (which every lab behaviour keeps answering
 * 200), and, when given, the container's LAB_BEHAVIOR — so that e.g. `error-500` breaks users only.
 */
export function labBehavior(behavior?: string): ManifestEdit {
  return (file, text) => {
    let t = text.replace(/path: \/$/m, 'path: /healthz').replace('healthcheck-path: /\n', 'healthcheck-path: /healthz\n');
    if (behavior && /deployment/.test(file)) {
      t = t.replace('        - name: app-2048\n', `        - name: app-2048\n          env:\n            - name: LAB_BEHAVIOR\n              value: "${behavior}"\n`);
    }
    return t;
  };
}
