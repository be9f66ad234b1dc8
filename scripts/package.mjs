// `npm run package`: the production build, then the VSIX for one platform (this machine's, or `--target
// <vsce target>`, e.g. darwin-arm64). The VSIX is platform-specific anyway (sharp's native binaries come from the
// @img package npm installed for this platform); onnxruntime-node ships every platform's binaries in one
// package (~290 MB), so only the target's folder of them goes in (45 MB on linux-x64, a third of that
// compressed). `.vscodeignore` lists everything else; this script adds that one folder to a copy of it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REPO = join(import.meta.dirname, '..');
const at = process.argv.indexOf('--target');
const target = at >= 0 ? process.argv[at + 1] : `${process.platform}-${process.arch}`;
const [platform, arch] = target.split('-');

function run(command, args) {
  const result = spawnSync(command, args, { cwd: REPO, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

run(process.execPath, ['scripts/build.mjs', '--production']);

const binaries = `node_modules/onnxruntime-node/bin/napi-v6/${platform}/${arch}`;
const onnxRuntime = existsSync(join(REPO, binaries))
  ? [
      '# onnxruntime-node for this target only (scripts/package.mjs)',
      '!node_modules/onnxruntime-node/package.json',
      '!node_modules/onnxruntime-node/dist/*.js',
      `!${binaries}/**`,
      '!node_modules/onnxruntime-common/package.json',
      '!node_modules/onnxruntime-common/dist/cjs/**/*.js',
      // Marks dist/cjs as CommonJS: the package itself is "type": "module".
      '!node_modules/onnxruntime-common/dist/cjs/package.json',
    ]
  : [];
if (onnxRuntime.length === 0)
  console.warn(`package: onnxruntime-node has no ${target} binaries here; this VSIX infers on wasm workers.`);

const folder = mkdtempSync(join(tmpdir(), 'leukemia-audit-package-'));
try {
  const ignoreFile = join(folder, '.vscodeignore');
  writeFileSync(ignoreFile, `${readFileSync(join(REPO, '.vscodeignore'), 'utf8')}\n${onnxRuntime.join('\n')}\n`);
  run(join(REPO, 'node_modules', '.bin', 'vsce'), [
    'package',
    '--no-yarn',
    '--allow-missing-repository',
    '--no-rewrite-relative-links',
    '--ignoreFile',
    ignoreFile,
    ...(at >= 0 ? ['--target', target] : []),
    '--out',
    'leukemia-audit.vsix',
  ]);
} finally {
  rmSync(folder, { recursive: true, force: true });
}
