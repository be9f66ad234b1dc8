// Driving the VS Code workbench in the browser the way a user does: the command palette, quick picks, modal
// dialogs, the Problems panel, and webviews (each an iframe holding another iframe with the page).
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { OUTPUT, log, waitFor } from './harness.mjs';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

export class Workbench {
  /** `prefix` keeps the screenshots and console log of one suite apart from another's. */
  constructor(page, prefix = '') {
    this.page = page;
    this.prefix = prefix ? `${prefix}-` : '';
    this.step = 0;
    mkdirSync(OUTPUT, { recursive: true });
    const consoleLog = join(OUTPUT, `${this.prefix}browser-console.log`);
    page.on('console', (m) => appendFileSync(consoleLog, `[${m.type()}] ${m.text()}\n`));
    page.on('pageerror', (e) => appendFileSync(consoleLog, `[pageerror] ${e.message}\n`));
  }

  /** test-output/e2e/[prefix-]NN-name.png; returns the path. */
  async shot(name) {
    this.step += 1;
    const file = join(OUTPUT, `${this.prefix}${String(this.step).padStart(2, '0')}-${name}.png`);
    await this.page.screenshot({ path: file });
    log(`screenshot ${file}`);
    return file;
  }

  async open(url) {
    await this.page.goto(url, { timeout: 60_000 });
    await waitFor(
      'the VS Code workbench (.monaco-workbench) to render',
      () => this.page.locator('.monaco-workbench').isVisible(),
      { timeout: 90_000 },
    );
    await waitFor('the Explorer to list the workspace', () => this.page.getByRole('treeitem').first().isVisible(), {
      timeout: 60_000,
    });
  }

  async explorerItems() {
    return this.page
      .locator('.explorer-folders-view .monaco-list-row')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('aria-label') ?? ''));
  }

  /** Opens the command palette and types `text`; returns the labels of the rows it offers. */
  async palette(text) {
    await this.closeQuickInput();
    await this.page.keyboard.press('F1');
    await waitFor('the command palette to open (F1)', () => this.page.locator('.quick-input-widget').isVisible());
    await this.page.keyboard.type(text);
    return this.quickPickRows();
  }

  async quickPickRows() {
    return this.page
      .locator('.quick-input-widget .quick-input-list .monaco-list-row')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('aria-label') ?? r.textContent ?? ''));
  }

  /** Clicks the row of the open quick pick whose text includes `text`, once the pick titled `title` lists it. */
  async pickRow(title, text) {
    const widget = this.page.locator('.quick-input-widget');
    const row = widget.locator('.quick-input-list .monaco-list-row').filter({ hasText: text }).first();
    await waitFor(
      `the quick pick "${title}" to offer ${text}`,
      async () =>
        (
          await widget
            .locator('.quick-input-title')
            .innerText()
            .catch(() => '')
        ).includes(title) && row.isVisible(),
      { timeout: 30_000, describe: async () => JSON.stringify(await this.quickPickRows()) },
    );
    await row.click();
  }

  async closeQuickInput() {
    if (await this.page.locator('.quick-input-widget').isVisible()) {
      await this.page.keyboard.press('Escape');
      await waitFor(
        'the quick input to close',
        async () => !(await this.page.locator('.quick-input-widget').isVisible()),
        { timeout: 5_000 },
      );
    }
  }

  /**
   * Opens the palette with `text` until `accept(rows)` holds; returns the rows. Retried with a fresh palette:
   * for the first seconds after the workbench renders, the palette does not know the extensions' commands yet
   * (the remote extension host is still starting) and an open palette does not refresh when they arrive.
   */
  async paletteUntil(what, text, accept, { timeout = 60_000 } = {}) {
    let rows = [];
    return waitFor(
      what,
      async () => {
        rows = await this.palette(text);
        const settle = Date.now() + 3_000;
        while (Date.now() < settle) {
          rows = await this.quickPickRows();
          if (accept(rows)) return rows;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
        await this.closeQuickInput();
        return undefined;
      },
      { timeout, interval: 500, describe: async () => `the palette offered ${JSON.stringify(rows)}` },
    );
  }

  /** Runs a command from the palette by its full title ("Category: Title"), as a user would. */
  async runCommand(title, { timeout = 60_000 } = {}) {
    await this.paletteUntil(
      `the command palette to offer "${title}"`,
      title,
      (rows) => rows.some((r) => r.includes(title)),
      { timeout },
    );
    await this.page
      .locator('.quick-input-widget .quick-input-list .monaco-list-row')
      .filter({ hasText: title })
      .first()
      .click();
  }

  /** Right-clicks the Explorer item `name` and chooses `action` from its context menu. */
  async explorerAction(name, action) {
    await this.closeQuickInput();
    await this.page.getByRole('treeitem', { name }).click({ button: 'right' });
    const item = this.page.locator('.context-view .action-item').filter({ hasText: action }).first();
    await waitFor(`the Explorer context menu of ${name} to offer ${action}`, () => item.isVisible());
    // A click that lands while the menu is still opening can be ignored (the menu stays, highlighted): click
    // until the menu closes, which it does when the action runs.
    await waitFor(
      `the context menu of ${name} to run ${action} and close`,
      async () => {
        if (await item.isVisible()) await item.click({ timeout: 5_000 }).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 500));
        return !(await item.isVisible());
      },
      { timeout: 20_000 },
    );
  }

  dialog() {
    return this.page.locator('.monaco-dialog-box');
  }

  /** Text of the notification toasts and the notification center (errors from the extension land there). */
  async notifications() {
    return (await this.page.locator('.notifications-toasts, .notifications-center').allInnerTexts()).join('\n').trim();
  }

  /** Hides the bottom panel (Problems, Output, …) so editors and webviews get the height. */
  async hidePanel() {
    const panel = this.page.locator('.part.panel');
    if (!(await panel.isVisible())) return;
    await this.runCommand('View: Toggle Panel Visibility');
    await waitFor('the panel to hide', async () => !(await panel.isVisible()), { timeout: 10_000 });
  }

  async problemsText() {
    return (await this.page.locator('.markers-panel').allInnerTexts()).join('\n');
  }

  /**
   * The frame (of the nested webview iframes) whose document matches `selector`, or undefined. VS Code puts
   * each webview in an iframe holding another iframe (#active-frame) with the page itself.
   */
  async frameWith(selector) {
    for (const frame of this.page.frames()) {
      if (frame === this.page.mainFrame()) continue;
      const found = await frame.evaluate((s) => document.querySelector(s) !== null, selector).catch(() => false);
      if (found) return frame;
    }
    return undefined;
  }

  /** Titles of the webview frames, for timeout messages. */
  async frameTitles() {
    const titles = [];
    for (const frame of this.page.frames()) {
      if (frame === this.page.mainFrame()) continue;
      titles.push(
        await frame
          .evaluate(
            () =>
              `${document.title || '(untitled)'}: ${(document.body?.innerText ?? '').slice(0, 80).replace(/\s+/g, ' ')}`,
          )
          .catch(() => '(detached)'),
      );
    }
    return JSON.stringify(titles);
  }
}
