// One end-to-end session, shared by the suites: a temp dir, code-server with the packaged VSIX installed, a
// workspace written by the CLI inside the installed VSIX (which also checks the package's CLI runs), and
// Chromium on the workbench; then its teardown, even after a failure: a last screenshot, the logs copied to
// test-output/e2e/, code-server's whole process group ended, the temp dir removed.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CodeServer, EXTENSION_ID, OUTPUT, VSIX, collectLogs, log, makeTempDir, removeTemp } from './harness.mjs';
import { CHROMIUM_ARGS, Workbench } from './workbench.mjs';

export class Session {
  /** `trust` as for CodeServer; `prefix` names this session's screenshots and logs. */
  constructor({ trust = false, prefix = '' } = {}) {
    this.trust = trust;
    this.prefix = prefix;
    this.tmp = undefined;
    this.codeServer = undefined;
    this.browser = undefined;
    /** @type {Workbench | undefined} */
    this.wb = undefined;
    this.workspace = undefined;
  }

  /** `write(folder, cli)` writes the workspace and returns what the suite needs of it ({ folder, … }). */
  async start(tools, write) {
    assert.ok(
      existsSync(VSIX),
      `${VSIX} is missing: run \`npm run test:e2e\` (it packages the extension first) or \`npm run package\`.`,
    );
    mkdirSync(OUTPUT, { recursive: true });
    this.tmp = makeTempDir();
    log(`temp dir ${this.tmp}; tools in ${tools.home}`);
    this.codeServer = new CodeServer(tools, this.tmp, { trust: this.trust });
    this.codeServer.installExtension(VSIX);
    const installed = readdirSync(this.codeServer.extensionsDir).find((n) => n.startsWith(`${EXTENSION_ID}-`));
    this.workspace = write(
      join(this.tmp, 'workspace'),
      join(this.codeServer.extensionsDir, installed, 'dist', 'cli.js'),
    );
    await this.codeServer.start(this.workspace.folder);
    log(`code-server at ${this.codeServer.url} (log ${this.codeServer.logFile})`);
    this.browser = await chromium.launch({ executablePath: tools.chromium, args: CHROMIUM_ARGS, timeout: 60_000 });
    const page = await this.browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.setDefaultTimeout(30_000);
    this.wb = new Workbench(page, this.prefix.replace(/-$/, ''));
    await this.wb.open(this.codeServer.url);
  }

  async stop() {
    try {
      if (this.wb) await this.wb.shot('teardown').catch(() => undefined);
      await this.browser?.close().catch((error) => log(`closing Chromium: ${error.message}`));
    } finally {
      await this.codeServer?.stop();
      if (this.tmp) {
        collectLogs(this.tmp, this.prefix);
        removeTemp(this.tmp);
      }
    }
  }
}
