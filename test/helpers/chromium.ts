// Headless Chromium as the tests use it: the DOM a static report (or any page) leaves after its scripts ran.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';

/** The page as headless Chromium leaves it after its scripts ran; null (with the reason printed) without Chromium. */
export function renderedDom(htmlFile: string): string | null {
  if (!existsSync(CHROMIUM)) return null;
  const result = spawnSync(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--dump-dom',
      `file://${htmlFile}`,
    ],
    { encoding: 'utf8', timeout: 120_000, maxBuffer: 256 * 1024 * 1024 },
  );
  assert.equal(result.status, 0, `chromium failed: ${result.error ?? ''}\n${result.stderr}`);
  return result.stdout;
}

export const noChromium = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed: cannot check that the page draws itself`;

/** The rendered view: what the script built inside `<main id="app">`, without the page's own script text. */
export function appOf(dom: string): string {
  const app = /<main id="app">([\s\S]*)<\/main>/.exec(dom)?.[1];
  assert.ok(app, 'the page has its <main id="app">');
  return app;
}
