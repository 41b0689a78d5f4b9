// vitest global setup: compile src/ to dist/ once, so tests that run the CLI as a user does
// (node bin/…) exercise the current sources, not a stale build.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from './fixtures.js';

export default function setup(): void {
  execFileSync(
    process.execPath,
    [path.join(projectRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: projectRoot,
      stdio: 'inherit',
    },
  );
}
