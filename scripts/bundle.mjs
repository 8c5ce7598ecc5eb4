// Builds the committed bundles: dist/index.js (the GitHub Action, node24) and dist/cli.js (the `alb-rollout` bin).
// `node scripts/bundle.mjs --outdir DIR` writes elsewhere (the check-dist test compares DIR with dist/).
import { build } from 'esbuild';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';

const outIdx = process.argv.indexOf('--outdir');
const outdir = outIdx > 0 ? process.argv[outIdx + 1] : 'dist';

// Bundled CommonJS dependencies still call require() (some inside try/catch); give ESM output a real one.
const requireShim = "import { createRequire as __albCreateRequire } from 'node:module'; const require = __albCreateRequire(import.meta.url);";

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  legalComments: 'none',
  logLevel: 'warning',
  charset: 'utf8',
};

await build({
  ...common,
  entryPoints: ['src/action/index.ts'],
  outfile: join(outdir, 'index.js'),
  banner: { js: requireShim },
});
await build({
  ...common,
  entryPoints: ['src/cli/main.ts'],
  outfile: join(outdir, 'cli.js'),
  banner: { js: `#!/usr/bin/env node\n${requireShim}` },
});
await chmod(join(outdir, 'cli.js'), 0o755);
// Run by the lab inside the real AWS Load Balancer Controller's network namespace (src/lab/reallbc/netns.ts).
await build({
  ...common,
  entryPoints: ['src/lab/reallbc/netns-bridge.ts'],
  outfile: join(outdir, 'lab-netns-bridge.js'),
});
