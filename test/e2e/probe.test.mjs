// End to end: "Leukemia Audit: Probe Dataset for Batch Effects" from the command palette, in real VS Code
// (code-server + Chromium), on a workspace with `sites/` — the demo cells re-filed by site, site_A's scanner
// brighter (workspace.mjs). The dataset quick pick → the probe in the trainer child with a progress
// notification → the Results view of the probe run, whose verdicts and confusion matrix are run.json's, and
// the group-predictable finding in the Problems panel.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { e2eTestWith, killOnExit, log, tryLocateTools, waitFor } from './harness.mjs';
import { writeSitesWorkspace } from './workspace.mjs';
import { Session } from './session.mjs';

const PROBE_TIMEOUT_MS = 5 * 60_000;
const session = new Session({ prefix: 'probe-' });
/** @type {import('./workbench.mjs').Workbench} */
let wb;
let workspace;

killOnExit(() => session.codeServer);
const e2eTest = e2eTestWith(() => wb, 'probe-');
const { tools, toolsError } = tryLocateTools();

describe('Probe Dataset for Batch Effects in VS Code (code-server + Chromium)', () => {
  before(async () => {
    if (toolsError) throw new Error(`Not run: the end-to-end tools are missing. ${toolsError.message}`);
    await session.start(tools, writeSitesWorkspace);
    ({ wb, workspace } = session);
  });

  after(() => session.stop());

  e2eTest(
    'the probe of sites/ from the palette opens its results and flags the site in the Problems panel',
    PROBE_TIMEOUT_MS + 120_000,
    async () => {
      const page = wb.page;
      await wb.runCommand('Leukemia Audit: Probe Dataset for Batch Effects');
      const sitesRow = page
        .locator('.quick-input-widget .quick-input-list .monaco-list-row')
        .filter({ hasText: 'sites' })
        .first();
      await waitFor('the dataset quick pick to offer sites/', () => sitesRow.isVisible(), {
        timeout: 60_000,
        describe: async () => JSON.stringify(await wb.quickPickRows()),
      });
      await wb.shot('dataset-pick');
      await sitesRow.click();
      const started = Date.now();
      let progressShot = false;
      const frame = await waitFor(
        'the Results webview of the probe run',
        async () => {
          const notes = await wb.notifications();
          if (/probe of .* failed/i.test(notes)) throw new Error(`the extension reported: ${notes}`);
          if (!progressShot && /Probe Dataset for Batch Effects/.test(notes)) {
            progressShot = true;
            await wb.shot('progress');
          }
          return wb.frameWith('#probe .probe-verdict');
        },
        {
          timeout: PROBE_TIMEOUT_MS,
          interval: 1_000,
          describe: async () => `notifications: ${await wb.notifications()}\n  webviews: ${await wb.frameTitles()}`,
        },
      );
      log(`probe shown ${((Date.now() - started) / 1000).toFixed(1)} s after picking the dataset`);

      const runs = join(workspace.folder, '.leukemia-audit', 'runs');
      const probes = readdirSync(runs)
        .map((name) => join(runs, name))
        .filter((dir) => existsSync(join(dir, 'run.json')))
        .map((dir) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')))
        .filter((run) => run.kind === 'probe');
      assert.equal(probes.length, 1, 'one probe run folder');
      const run = probes[0];
      assert.equal(run.status, 'completed');
      assert.deepEqual(run.probe.group.classes, ['site_A', 'site_B', 'site_C']);
      assert.equal(run.probe.group.predictable, true, run.probe.group.verdict);
      assert.equal(run.probe.finding.code, 'group-predictable');

      const shown = await frame.evaluate(() => {
        document.querySelector('#probe')?.scrollIntoView({ block: 'start' });
        const table = document.querySelector('.probe-target[data-target="group"] table.probe-confusion');
        return {
          heading: document.querySelector('.page-header h1')?.textContent ?? '',
          verdicts: [...document.querySelectorAll('#probe .probe-verdict')].map((b) => b.textContent ?? ''),
          counts: [...(table?.querySelectorAll('tbody tr') ?? [])].map((row) =>
            [...row.querySelectorAll('.cell-count')].map((c) => Number((c.textContent ?? '').replace(/,/g, ''))),
          ),
          sections: [...document.querySelectorAll('section.card')].map((s) => s.id),
        };
      });
      assert.match(shown.heading, /^Batch-effect probe /, 'the results view says the run is a probe');
      assert.ok(
        shown.verdicts.some((v) => v.includes(run.probe.group.verdict)),
        `a banner shows run.json's verdict "${run.probe.group.verdict}": ${JSON.stringify(shown.verdicts)}`,
      );
      assert.deepEqual(shown.counts, run.probe.group.confusion, 'the confusion matrix is run.json\u2019s');
      assert.ok(!shown.sections.includes('gradcam'), `no Grad-CAM part for a probe: ${shown.sections}`);
      await wb.shot('probe-results');

      // The finding joins the dataset's findings in the Problems panel, on its evidence image.
      await wb.runCommand('Problems: Focus on Problems View');
      await wb.runCommand('View: Toggle Maximized Panel');
      const problems = await waitFor(
        'the Problems panel to list group-predictable',
        async () => {
          const text = await wb.problemsText();
          return text.includes('group-predictable') ? text : undefined;
        },
        { timeout: 60_000, interval: 1_000, describe: () => wb.problemsText() },
      );
      assert.match(problems, /sites: The site can be predicted from the pixels at balanced accuracy/);
      await wb.shot('probe-problems');
    },
  );
});
