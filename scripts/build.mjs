// One esbuild invocation per bundle: the extension host (node, cjs, `vscode` external), the trainer and audit
// child processes, the CLI, and the webview (browser). Native and wasm-loading packages stay external: they find
// their binaries relative to their own package folder.
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
const nodeExternals = [
  'vscode',
  'sharp',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-cpu',
  // Optional and loaded at run time (src/core/infer/engine.ts): the CLI uses it when installed; the VSIX
  // leaves it out (~290 MB with every platform's binaries), so the extension infers on wasm workers.
  'onnxruntime-node',
];
// tfjs-core registers no gradients in its Node entry point, and its gradient modules are ESM without file
// extensions, which Node cannot load at run time. Bundle them: tfjs keeps its kernel and gradient registries
// and its engine on globalThis, so the bundled copy registers into the same engine as the external package.
const bundleTfjsGradients = {
  name: 'bundle-tfjs-gradients',
  setup(build) {
    build.onResolve({ filter: /^@tensorflow\/tfjs-core\/dist\/register_all_gradients$/ }, async (args) => {
      const resolved = await build.resolve('./node_modules/@tensorflow/tfjs-core/dist/register_all_gradients.js', {
        kind: args.kind,
        resolveDir: process.cwd(),
      });
      return { path: resolved.path };
    });
  },
};
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const common = {
  define: { PACKAGE_VERSION: JSON.stringify(version) },
  plugins: [bundleTfjsGradients],
  bundle: true,
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
};

const builds = [
  {
    ...common,
    entryPoints: ['src/extension/extension.ts'],
    outfile: 'dist/extension.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternals,
  },
  {
    ...common,
    entryPoints: ['src/trainer/main.ts'],
    outfile: 'dist/trainer.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternals,
  },
  {
    ...common,
    entryPoints: ['src/trainer/auditChild.ts'],
    outfile: 'dist/auditChild.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternals,
  },
  // Data-parallel training starts this file as a worker thread from the trainer and CLI bundles' folder.
  {
    ...common,
    entryPoints: ['src/core/train/gradientWorker.ts'],
    outfile: 'dist/gradientWorker.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternals,
  },
  // The audit's pixel phase starts this file as worker threads from the bundle that runs the audit.
  {
    ...common,
    entryPoints: ['src/core/audit/pixelWorker.ts'],
    outfile: 'dist/pixelWorker.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternals,
  },
  {
    ...common,
    entryPoints: ['src/cli/main.ts'],
    outfile: 'dist/cli.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: nodeExternals,
  },
  // The pages: one browser bundle pattern, one entry per page (results view and report; training dashboard).
  {
    ...common,
    entryPoints: { webview: 'webview/main.ts', dashboard: 'webview/dashboard/main.ts' },
    outdir: 'dist',
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
  },
];

// The PyTorch engine's trainer is read by the user's Python, not bundled: copied next to the bundles.
mkdirSync('dist/torch', { recursive: true });
copyFileSync('src/trainer/torch/train_resnet18.py', 'dist/torch/train_resnet18.py');

if (watch) {
  for (const options of builds) await (await esbuild.context(options)).watch();
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
}
