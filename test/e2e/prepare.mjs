// First half of `npm run test:e2e`: makes sure leukemia-audit.vsix is the package of the current sources
// (`npm run package` when it is missing or older than any input; LEUKEMIA_AUDIT_E2E_REPACKAGE=1 forces it),
// so the suite always tests what would be shipped. A prebuilt VSIX named by LEUKEMIA_AUDIT_E2E_VSIX is used
// as it is.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, VSIX, newestMtime } from './harness.mjs';

const INPUTS = [
  'src',
  'webview',
  'media',
  'schemas',
  'package.json',
  'package-lock.json',
  '.vscodeignore',
  'scripts/build.mjs',
  'tsconfig.json',
];

function reason() {
  if (process.env.LEUKEMIA_AUDIT_E2E_VSIX) return undefined;
  if (process.env.LEUKEMIA_AUDIT_E2E_REPACKAGE) return 'LEUKEMIA_AUDIT_E2E_REPACKAGE is set';
  if (!existsSync(VSIX)) return `${VSIX} does not exist`;
  const newest = newestMtime(INPUTS.map((p) => join(REPO, p)));
  if (newest > statSync(VSIX).mtimeMs) return `${VSIX} is older than the sources`;
  return undefined;
}

const why = reason();
if (why) {
  process.stdout.write(`e2e: packaging the extension (${why}): npm run package\n`);
  const started = Date.now();
  const result = spawnSync('npm', ['run', 'package'], { cwd: REPO, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(
      `e2e: npm run package failed (exit ${result.status ?? result.signal}); the end-to-end suite needs the VSIX.\n`,
    );
    process.exit(1);
  }
  if (!existsSync(VSIX)) {
    process.stderr.write(`e2e: npm run package succeeded but ${VSIX} is missing.\n`);
    process.exit(1);
  }
  process.stdout.write(
    `e2e: packaged ${VSIX} (${(statSync(VSIX).size / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
} else {
  const vsix = process.env.LEUKEMIA_AUDIT_E2E_VSIX ?? VSIX;
  if (!existsSync(vsix)) {
    process.stderr.write(`e2e: LEUKEMIA_AUDIT_E2E_VSIX names ${vsix}, which does not exist.\n`);
    process.exit(1);
  }
  process.stdout.write(`e2e: using ${vsix} (up to date with the sources)\n`);
}
