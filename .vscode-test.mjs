// @vscode/test-cli configuration for the extension's integration suite (test/integration). Run it through
// `npm run test:integration`, which builds the suite and its fixture workspace first and reports clearly
// when VS Code cannot be downloaded or started here.
import { defineConfig } from '@vscode/test-cli';

export default defineConfig({
  label: 'leukemia-audit',
  files: 'out/integration/**/*.test.js',
  version: process.env.VSCODE_TEST_VERSION ?? 'stable',
  workspaceFolder: 'out/integration-workspace',
  // Other installed extensions stay out; trust is granted so training can run.
  launchArgs: ['--disable-extensions', '--disable-workspace-trust'],
  mocha: { ui: 'tdd', timeout: 300_000, color: true },
  download: { timeout: 20_000 },
});
