// The bundles in dist/ that tests run (the CLI, the trainer child process, the webview script a report
// inlines), rebuilt with scripts/build.mjs when missing or older than the sources they are built from.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const REPO = path.join(__dirname, '..', '..');

/** Newest modification time of the files under `dir` that end up in a bundle. */
export function newestSourceTime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceTime(full));
    else if (/\.(ts|mjs|js)$/.test(entry.name)) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * Runs scripts/build.mjs unless every one of `bundles` (file names in dist/) exists and is at least as new as
 * scripts/build.mjs and every source under `sourceDirs` (folders of the repository); fails the caller when
 * the build fails.
 */
export function ensureBuilt(bundles: readonly string[], sourceDirs: readonly string[] = ['src']): void {
  const buildScript = path.join(REPO, 'scripts', 'build.mjs');
  const sources = Math.max(
    ...sourceDirs.map((dir) => newestSourceTime(path.join(REPO, dir))),
    statSync(buildScript).mtimeMs,
  );
  const outputs = bundles.map((name) => path.join(REPO, 'dist', name));
  if (outputs.every((file) => existsSync(file) && statSync(file).mtimeMs >= sources)) return;
  const build = spawnSync(process.execPath, [buildScript], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  assert.equal(build.status, 0, `build failed:\n${build.stdout}\n${build.stderr}`);
}
