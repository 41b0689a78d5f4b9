// vitest global setup: build dist/ once as `npm run build` does (tsc, then the command line's bundle
// that bin/*.js run), so tests that run the CLI as a user does exercise the current sources, not a
// stale build.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from './fixtures.js';

export default function setup(): void {
  const run = (args: string[]): void => {
    execFileSync(process.execPath, args, { cwd: projectRoot, stdio: 'inherit' });
  };
  run([path.join(projectRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
  run([path.join(projectRoot, 'scripts/bundle-cli.mjs')]);
}
