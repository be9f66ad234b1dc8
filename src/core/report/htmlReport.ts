/**
 * The static HTML report of a run: one file that opens anywhere, offline, and shows exactly what the VS Code
 * results view shows, because it runs the same bundle (`dist/webview.js`) with the same stylesheet
 * (`media/results.css`). Stylesheet, script, run data and images are all inlined (images as data: URIs),
 * and a Content-Security-Policy forbids the page any network or file access.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { ExtensionToWebview } from '../../protocol/results.js';
import { realPathInside } from '../confine.js';
import { escapeHtml } from '../html.js';
import { type RunFile } from '../run/runFile.js';
import { readRunFile } from '../run/runFileIo.js';

const PACKAGE_NAME = 'leukemia-audit';
const WEBVIEW_SCRIPT = join('dist', 'webview.js');
const RESULTS_STYLESHEET = join('media', 'results.css');

export interface ReportAssets {
  script: string;
  css: string;
}

export interface HtmlReport {
  html: string;
  /** Run-relative image paths the run names but that could not be read; the view shows "not available". */
  missingImages: string[];
}

/**
 * The package folder, found by walking up from this code: `src/core/report` under tsx, `dist` inside the
 * bundled CLI or extension. Walking up, rather than a fixed `../..`, keeps both working.
 */
export function findPackageRoot(start: string = __dirname): string {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if (JSON.parse(readFileSync(manifest, 'utf8')).name === PACKAGE_NAME) return dir;
      } catch {
        // An unreadable package.json on the way up is someone else's; keep climbing.
      }
    }
    if (dirname(dir) === dir) throw new Error(`Cannot find the ${PACKAGE_NAME} package folder above ${start}`);
  }
}

export async function loadReportAssets(packageRoot: string = findPackageRoot()): Promise<ReportAssets> {
  const read = async (file: string) => {
    try {
      return await readFile(join(packageRoot, file), 'utf8');
    } catch (error) {
      throw new Error(
        `The report needs ${join(packageRoot, file)} (built by \`npm run build\`): ${(error as Error).message}`,
        { cause: error },
      );
    }
  };
  return { script: await read(WEBVIEW_SCRIPT), css: await read(RESULTS_STYLESHEET) };
}

export async function buildHtmlReport(runDir: string, assets?: ReportAssets): Promise<HtmlReport> {
  const run = await readRunFile(runDir);
  const { imageUris, missing } = await inlineImages(runDir, runImagePaths(run));
  const html = renderReportHtml(
    { type: 'showRun', run, imageUris },
    assets ?? (await loadReportAssets()),
    `${PACKAGE_NAME}: ${basename(resolve(runDir))}`,
  );
  return { html, missingImages: missing };
}

/** Two (or more) runs side by side, drawn by the same bundle as the results view. */
/** Where evaluate and probe write a run's report. */
export const REPORT_FILE = 'report.html';

/**
 * Writes `<runDir>/report.html` and returns its path; a report that cannot be built (no webview bundle) is a
 * warning, not a failure of the run it reports on.
 */
export async function writeRunReport(
  runDir: string,
  onWarning: (message: string) => void,
): Promise<string | undefined> {
  try {
    const { html } = await buildHtmlReport(runDir);
    const file = join(runDir, REPORT_FILE);
    await writeFile(file, html);
    return file;
  } catch (error) {
    onWarning(`The HTML report was not written: ${(error as Error).message}`);
    return undefined;
  }
}

export async function buildComparisonReport(runDirs: readonly string[], assets?: ReportAssets): Promise<string> {
  const runs = await Promise.all(runDirs.map(async (dir) => ({ runDir: resolve(dir), run: await readRunFile(dir) })));
  return renderReportHtml(
    { type: 'showComparison', runs },
    assets ?? (await loadReportAssets()),
    `${PACKAGE_NAME}: ${runs.map((c) => basename(c.runDir)).join(' vs ')}`,
  );
}

/** Every image the view can show: the explanation PNGs, relative to the run folder. */
export function runImagePaths(run: RunFile): string[] {
  const samples = run.explanations?.samples ?? [];
  return [
    ...new Set(
      samples.flatMap((s) => [s.original, s.overlay, s.overlayShared]).filter((p) => typeof p === 'string' && p !== ''),
    ),
  ];
}

const IMAGE_TYPES: { type: string; magic: number[] }[] = [
  { type: 'image/png', magic: [0x89, 0x50, 0x4e, 0x47] },
  { type: 'image/jpeg', magic: [0xff, 0xd8, 0xff] },
  { type: 'image/webp', magic: [0x52, 0x49, 0x46, 0x46] },
];

async function inlineImages(
  runDir: string,
  paths: string[],
): Promise<{ imageUris: Record<string, string>; missing: string[] }> {
  const root = resolve(runDir);
  const uris = await Promise.all(paths.map((path) => dataUri(root, path)));
  // Built in path order, not completion order, so the same run always gives the same file.
  const imageUris: Record<string, string> = {};
  const missing: string[] = [];
  paths.forEach((path, i) => {
    const uri = uris[i];
    if (uri === undefined) missing.push(path);
    else imageUris[path] = uri;
  });
  return { imageUris, missing: missing.sort() };
}

async function dataUri(root: string, path: string): Promise<string | undefined> {
  const full = resolve(root, path);
  const inside = relative(root, full);
  // run.json is data: a path that climbs out of the run folder is not inlined, whatever it names.
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) return undefined;
  // Lexically inside is not enough: a symlink in explanations/ may point anywhere. Read the real file, and
  // only when it is really inside the run folder.
  const real = await realPathInside(full, [root]);
  if (real === undefined) return undefined;
  try {
    const bytes = await readFile(real);
    const type = IMAGE_TYPES.find((t) => t.magic.every((b, i) => bytes[i] === b))?.type;
    return type && `data:${type};base64,${bytes.toString('base64')}`;
  } catch {
    return undefined;
  }
}

/** The page itself; pure, so it can be tested without a run folder. */
export function renderReportHtml(data: ExtensionToWebview, assets: ReportAssets, title: string): string {
  const css = inlineCss(assets.css);
  const script = inlineScript(assets.script);
  const policy = [
    "default-src 'none'",
    'img-src data:',
    `style-src '${sha256(css)}'`,
    `script-src '${sha256(script)}'`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${policy}">
<meta name="generator" content="${PACKAGE_NAME}">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
</head>
<body>
<main id="app"><noscript>This report draws the run with JavaScript; allow scripts for this file to see it.</noscript></main>
<script type="application/json" id="run-data">${inlineJson(data)}</script>
<script type="module">${script}</script>
</body>
</html>
`;
}

/** JSON inside a script element ends at the first `</script`; with every `<` escaped there is none. */
function inlineJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/**
 * The bundle can hold `</script` only inside strings, regular expressions or comments, where `<\/` means
 * the same. Its source-map comment would make the browser look for a file next to the report: dropped.
 */
function inlineScript(script: string): string {
  return script.replace(/\n?\/\/# sourceMappingURL=\S*\s*$/, '\n').replace(/<\/(script)/gi, '<\\/$1');
}

function inlineCss(css: string): string {
  return css.replace(/\/\*# sourceMappingURL=[^*]*\*\//g, '').replace(/<\/(style)/gi, '<\\/$1');
}

function sha256(text: string): string {
  return `sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}`;
}
