// ESLint (flat config): the recommended JavaScript and typescript-eslint rules, plus the layering the
// architecture promises (README, "Architecture"), enforced with no-restricted-imports:
//   src/core      may not import vscode, the extension or the pages;
//   src/protocol  may not import vscode, the extension, the pages or Node built-ins (the pages import it);
//   webview       may not import Node built-ins, vscode or the extension.
import js from '@eslint/js';
import globals from 'globals';
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const nodeBuiltins = {
  paths: builtinModules.filter((name) => !name.startsWith('_')).map((name) => ({ name, message: 'Node built-in' })),
  patterns: [{ group: ['node:*'], message: 'Node built-ins are not available here.' }],
};
const noVscode = { name: 'vscode', message: 'Only src/extension may import vscode.' };
const extensionAndPages = [
  { group: ['**/extension/*', '**/extension/**'], message: 'Core and protocols may not depend on the extension.' },
  { group: ['**/webview/*', '**/webview/**'], message: 'Core and protocols may not depend on the pages.' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test-output/**', '**/*.vsix', '.vscode-test/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  {
    files: ['src/**', 'test/**', 'scripts/**', 'bin/**', '*.mjs', '.vscode-test.mjs'],
    languageOptions: { globals: { ...globals.node } },
  },
  // The callbacks of page.evaluate run in the browser.
  { files: ['test/e2e/**'], languageOptions: { globals: { ...globals.node, ...globals.browser } } },
  // The bin shim is CommonJS: it requires the bundled CLI.
  {
    files: ['bin/**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['src/core/**'],
    rules: { 'no-restricted-imports': ['error', { paths: [noVscode], patterns: extensionAndPages }] },
  },
  {
    files: ['src/protocol/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [noVscode, ...nodeBuiltins.paths], patterns: [...extensionAndPages, ...nodeBuiltins.patterns] },
      ],
    },
  },
  {
    files: ['webview/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [noVscode, ...nodeBuiltins.paths],
          patterns: [
            ...nodeBuiltins.patterns,
            { group: ['**/src/extension/**'], message: 'Pages talk to the extension through src/protocol only.' },
          ],
        },
      ],
    },
  },
);
