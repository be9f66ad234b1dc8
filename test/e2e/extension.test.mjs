// End to end, as a user sees it: the packaged VSIX installed into a real VS Code (code-server), driven by
// Debian's Chromium through playwright-core. One code-server for the suite, on a random free loopback port,
// with every folder it writes in one temp dir; torn down (its whole process group) even on failure.
//
// `npm run test:e2e` packages the VSIX if needed and runs this file. The tools come from
// scripts/e2e-setup.sh; without them the suite FAILS and says to run it.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  OUTPUT,
  extensionFigures,
  extensionLog,
  e2eTestWith,
  killOnExit,
  tryLocateTools,
  log,
  waitFor,
} from './harness.mjs';
import {
  DATASET_WARNING,
  KAGGLE_TRAINING_PATH,
  NOTEBOOK,
  NOTEBOOK_CHECKPOINT,
  TRAINING_SETTINGS,
  writeWorkspace,
} from './workspace.mjs';
import { Session } from './session.mjs';

const TRAINING_TIMEOUT_MS = Number(process.env.LEUKEMIA_AUDIT_E2E_TRAINING_TIMEOUT_MS ?? 8 * 60_000);
const RECOMMENDED_BUTTON = 'Train on all/hem (recommended)';
const STRUCTURAL_MESSAGE = 'ImageFolder will use fold_0, fold_1 and fold_2';

const session = new Session();
let tmp;
/** @type {import('./workbench.mjs').Workbench} */
let wb;
let workspace;
let runDir;
let resultsFrame;

killOnExit(() => session.codeServer);

const e2eTest = e2eTestWith(() => wb);

// A missing tool is a FAILURE that says to run scripts/e2e-setup.sh, never a skip.
const { tools, toolsError } = tryLocateTools();
test('the end-to-end tools are installed (scripts/e2e-setup.sh)', () => {
  if (toolsError) throw toolsError;
});

describe('Leukemia Audit in VS Code (code-server + Chromium)', () => {
  before(async () => {
    const started = Date.now();
    if (toolsError) throw new Error(`Not run: the end-to-end tools are missing. ${toolsError.message}`);
    rmSync(OUTPUT, { recursive: true, force: true });
    await session.start(tools, writeWorkspace);
    ({ tmp, wb, workspace } = session);
    log(`workbench ready ${((Date.now() - started) / 1000).toFixed(1)} s after the suite started`);
  });

  after(() => session.stop());

  e2eTest('the workspace opens with the extension installed and its commands in the palette', 60_000, async () => {
    const items = await wb.explorerItems();
    for (const name of ['C-NMC_Leukemia', NOTEBOOK, '.vscode'])
      assert.ok(
        items.some((i) => i.startsWith(name)),
        `Explorer lists ${name}: ${JSON.stringify(items)}`,
      );
    const titles = [
      'Train Leukemia Model',
      'Audit Dataset Labels',
      'Open Training Results',
      'Create Demo Dataset',
      'Export Audit Report (HTML)',
      'Show Training Dashboard',
      'Show Log',
      'Evaluate Model on Dataset…',
    ];
    const rows = await wb.paletteUntil(
      'the command palette to list the Leukemia Audit commands',
      'Leukemia Audit: ',
      (offered) => titles.every((t) => offered.some((o) => o.includes(`Leukemia Audit: ${t}`))),
    );
    // Cancel Training is only offered while a run is in progress (its `when` clause).
    assert.ok(
      !rows.some((o) => o.includes('Cancel Training')),
      `Cancel Training is hidden when idle: ${JSON.stringify(rows)}`,
    );
    await wb.shot('palette-commands');
    await wb.closeQuickInput();
  });

  e2eTest('with nothing opened but the folder, the Problems panel lists the dataset warnings', 150_000, async () => {
    const page = wb.page;
    assert.equal(await page.locator('.tabs-container .tab').count(), 0, 'no editor is open');
    const problems = await waitFor(
      'the Problems panel to list the structural-labels warning on the dataset (no file opened)',
      async () => {
        await wb.runCommand('Problems: Focus on Problems View', { timeout: 30_000 });
        const text = await wb.problemsText();
        return DATASET_WARNING.test(text) && text.includes(NOTEBOOK) ? text : undefined;
      },
      { timeout: 120_000, interval: 1_000, describe: () => wb.problemsText() },
    );
    // The dataset's own findings sit on their evidence image; the unopened notebook gets its line warning.
    assert.match(problems, /UID_\w+\.bmp/);
    assert.ok(problems.includes(STRUCTURAL_MESSAGE), 'the unopened notebook carries the ImageFolder warning');
    await wb.shot('problems-on-open');
    const { activationMs, lag } = extensionFigures(extensionLog(tmp));
    assert.ok(activationMs !== undefined, 'the extension logged its activation time');
    process.stdout.write(`\ne2e: activation ${activationMs} ms\ne2e: ${lag.join('\ne2e: ')}\n\n`);
    await wb.hidePanel();
  });

  e2eTest(
    'the notebook ImageFolder line and the Problems panel carry the structural-labels warning',
    120_000,
    async () => {
      const page = wb.page;
      await page.locator('.explorer-folders-view').getByRole('treeitem', { name: NOTEBOOK }).click();
      const cell = page
        .locator('.notebook-editor .cell-list-container .code-cell-row')
        .filter({ hasText: 'ImageFolder(' })
        .first();
      await waitFor(`the notebook ${NOTEBOOK} to open with its ImageFolder cell`, () => cell.isVisible(), {
        timeout: 60_000,
      });
      // The warning's squiggle on the path literal of the ImageFolder line (the extension activates on the notebook).
      const squiggle = cell.locator('.squiggly-warning').first();
      await waitFor('a warning squiggle on the ImageFolder line of the notebook', () => squiggle.isVisible(), {
        timeout: 60_000,
      });
      await wb.shot('notebook-squiggle');
      const box = await squiggle.boundingBox();
      assert.ok(box, 'the squiggle has a position on screen');
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      const hover = page.locator('.monaco-hover').filter({ hasText: STRUCTURAL_MESSAGE }).first();
      await waitFor(`the hover over the squiggle to say "${STRUCTURAL_MESSAGE}"`, () => hover.isVisible(), {
        timeout: 20_000,
        describe: async () => JSON.stringify(await page.locator('.monaco-hover').allInnerTexts()),
      });
      const hoverText = await hover.innerText();
      assert.match(hoverText, /cross-validation folds/);
      assert.match(hoverText, /structural-labels/);
      await wb.shot('notebook-hover');
      await page.mouse.move(5, 500);

      await wb.runCommand('Problems: Focus on Problems View');
      const problems = await waitFor(
        'the Problems panel to list the notebook warning',
        async () => {
          const text = await wb.problemsText();
          return text.includes(NOTEBOOK) && text.includes(STRUCTURAL_MESSAGE) ? text : undefined;
        },
        { timeout: 30_000, describe: () => wb.problemsText() },
      );
      assert.match(problems, /leukemia-audit\(structural-labels\)|structural-labels/);
      assert.ok(problems.includes(KAGGLE_TRAINING_PATH), 'the message names the Kaggle path it resolved');
      // The row: the warning is on line 2 of the cell, where ImageFolder is called.
      const row = page.locator('.markers-panel .monaco-list-row').filter({ hasText: STRUCTURAL_MESSAGE }).first();
      assert.match(await row.innerText(), /Ln 2, Col \d+/);
      await wb.shot('problems-panel');
      await wb.hidePanel();
    },
  );

  e2eTest(
    'Train Leukemia Model from the palette, on the recommended labels, opens the results',
    TRAINING_TIMEOUT_MS + 120_000,
    async () => {
      const page = wb.page;
      await wb.runCommand('Leukemia Audit: Train Leukemia Model');
      // The workspace holds two dataset folders (C-NMC_Leukemia and its training_data), so a quick pick asks
      // which: the notebook's training_data. (Were only one found, the audit would start at once.)
      const dialog = wb.dialog();
      const datasetRow = page
        .locator('.quick-input-widget .quick-input-list .monaco-list-row')
        .filter({ hasText: 'C-NMC_Leukemia/training_data' })
        .first();
      const first = await waitFor(
        'the dataset quick pick or the structural-labels modal',
        async () => ((await dialog.isVisible()) ? 'modal' : (await datasetRow.isVisible()) ? 'pick' : undefined),
        {
          timeout: 60_000,
          describe: async () =>
            `quick pick: ${JSON.stringify(await wb.quickPickRows())}; notifications: ${await wb.notifications()}`,
        },
      );
      if (first === 'pick') {
        await wb.shot('dataset-pick');
        await datasetRow.click();
      }
      await waitFor('the modal about structural labels after the audit', () => dialog.isVisible(), {
        timeout: 60_000,
        describe: () => wb.notifications(),
      });
      const dialogText = await dialog.innerText();
      assert.match(dialogText, /fold_0\/fold_1\/fold_2 look like cross-validation folds/);
      assert.match(dialogText, /Recommended labels: folder:2/);
      await wb.shot('structural-modal');
      const buttons = await dialog.locator('.monaco-button').allInnerTexts();
      assert.ok(
        buttons.includes(RECOMMENDED_BUTTON),
        `the modal offers "${RECOMMENDED_BUTTON}": ${JSON.stringify(buttons)}`,
      );
      assert.ok(buttons.includes('Train on the folder labels anyway'), JSON.stringify(buttons));
      await dialog.locator('.monaco-button').filter({ hasText: RECOMMENDED_BUTTON }).click();
      const trainingStarted = Date.now();

      let dashboardSeen = false;
      resultsFrame = await waitFor(
        'the Results webview (a frame with table.confusion) after training',
        async () => {
          const notes = await wb.notifications();
          if (/Training failed|could not start|No labels were found|audit of .* failed/i.test(notes))
            throw new Error(`the extension reported: ${notes}`);
          if (!dashboardSeen && (await page.locator('.tab', { hasText: 'Leukemia Audit: Training' }).count()) > 0) {
            // The page is the dashboard bundle (dist/dashboard.js): shot once it has drawn a view, not an empty frame.
            const dashboard = await wb.frameWith('.tiles #epoch');
            const title = dashboard ? await dashboard.textContent('#title').catch(() => '') : '';
            if (title && /^Training ResNet-18 — /.test(title)) {
              dashboardSeen = true;
              await wb.shot('training-dashboard');
            }
          }
          return wb.frameWith('table.confusion');
        },
        {
          timeout: TRAINING_TIMEOUT_MS,
          interval: 1_000,
          describe: async () => `notifications: ${await wb.notifications()}\n  webviews: ${await wb.frameTitles()}`,
        },
      ).catch((error) => {
        // A failure of waitFor itself (not of the extension) should say how long training had run.
        error.message += `\n  (training had been running ${Math.round((Date.now() - trainingStarted) / 1000)} s)`;
        throw error;
      });
      log(
        `results shown ${((Date.now() - trainingStarted) / 1000).toFixed(1)} s after choosing the recommended labels`,
      );
      assert.ok(dashboardSeen, 'the training dashboard drew its page (title, tiles) while the run trained');

      const runs = join(workspace.folder, '.leukemia-audit', 'runs');
      const folders = existsSync(runs) ? readdirSync(runs).filter((n) => n.startsWith('run-')) : [];
      assert.equal(folders.length, 1, `one run folder in ${runs}: ${JSON.stringify(folders)}`);
      runDir = join(runs, folders[0]);
      const run = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
      assert.equal(run.status, 'completed');
      assert.equal(run.settings.labels, 'folder:2', 'trained on the recommended labels');
      assert.equal(run.dataset.labelsAreStructural, false);
      assert.deepEqual(run.dataset.classes, ['all', 'hem']);
      // The workspace settings reached the trainer.
      assert.equal(run.settings.epochs, TRAINING_SETTINGS['leukemiaAudit.epochs']);
      assert.equal(run.settings.imageSize, TRAINING_SETTINGS['leukemiaAudit.imageSize']);
      assert.equal(run.settings.batchSize, TRAINING_SETTINGS['leukemiaAudit.batchSize']);

      const title = await resultsFrame.title();
      assert.equal(title, `Results: ${folders[0]}`);
      await waitFor('the Results tab to be shown', () =>
        page.locator('.tab', { hasText: `Results: ${folders[0]}` }).isVisible(),
      );
      await wb.shot('results');
    },
  );

  e2eTest('the results view shows the confusion matrix of the run', 60_000, async () => {
    assert.ok(resultsFrame && runDir, 'the training test opened the results');
    const run = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
    const validation = run.metrics.validation;
    const shown = await resultsFrame.evaluate(() => {
      const table = document.querySelector('table.confusion');
      table.closest('section')?.scrollIntoView({ block: 'start' });
      return {
        caption: table.querySelector('caption')?.textContent ?? '',
        columns: [...table.querySelectorAll('thead tr:last-child th')].map((th) => th.textContent),
        rows: [...table.querySelectorAll('tbody tr')].map((tr) => ({
          label: tr.querySelector('th')?.textContent,
          counts: [...tr.querySelectorAll('td .cell-count')].map((c) => Number(c.textContent.replace(/[^0-9]/g, ''))),
        })),
        heading: document.querySelector('#confusion h2')?.textContent ?? '',
      };
    });
    assert.equal(shown.heading, 'Confusion matrix');
    assert.match(shown.caption, new RegExp(`\\(${validation.sampleCount} images\\)`));
    assert.deepEqual(shown.columns.slice(1), validation.classes);
    assert.deepEqual(
      shown.rows.map((r) => r.label),
      validation.classes,
    );
    assert.deepEqual(
      shown.rows.map((r) => r.counts),
      validation.confusionMatrix.counts,
      "the matrix shows run.json's counts",
    );
    await wb.shot('results-confusion-matrix');
  });

  e2eTest('the results view shows the Grad-CAM gallery when the run has explanations', 60_000, async (t) => {
    assert.ok(resultsFrame && runDir, 'the training test opened the results');
    const run = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
    const samples = run.explanations?.samples ?? [];
    if (samples.length === 0) {
      // Until training writes explanations: the view must say so, and this test is reported as TODO, not as a pass.
      // The view agrees with run.json: a Grad-CAM section without gallery cards.
      const shown = await resultsFrame.evaluate(() => ({
        section: document.querySelector('#gradcam') !== null,
        cards: document.querySelectorAll('#gradcam li.sample').length,
      }));
      assert.deepEqual(shown, { section: true, cards: 0 }, 'the Grad-CAM section is there, without gallery cards');
      const message = 'Grad-CAM gallery not asserted: run.json has no explanations';
      process.stdout.write(`\n!!! ${message} (${join(runDir, 'run.json')})\n\n`);
      t.diagnostic(message);
      t.todo(message);
      return;
    }
    const cards = await resultsFrame.evaluate(() => document.querySelectorAll('#gallery li.sample').length);
    assert.equal(cards, samples.length, 'one gallery card per explained sample');
    // Each card: the input image (a webview resource from the run folder, loaded lazily) and the Grad-CAM
    // overlay over it, either a PNG or a canvas painted from the raw map. Some cards are brought into view
    // and checked: the image decoded, the overlay has pixels.
    const checked = Math.min(samples.length, 6);
    for (let i = 0; i < checked; i++) {
      let last;
      await waitFor(
        `gallery card ${i + 1} of ${samples.length} to show its input image and Grad-CAM overlay`,
        async () => {
          last = await resultsFrame.evaluate((index) => {
            const card = document.querySelectorAll('#gallery li.sample')[index];
            card.scrollIntoView({ block: 'center' });
            const input = card.querySelector('figure img');
            const overlay = card.querySelector('.stack .overlay');
            let overlayOk = false;
            if (overlay instanceof HTMLImageElement) overlayOk = overlay.complete && overlay.naturalWidth > 0;
            else if (overlay instanceof HTMLCanvasElement && overlay.width > 0) {
              const alpha = overlay.getContext('2d').getImageData(0, 0, overlay.width, overlay.height).data;
              for (let k = 3; k < alpha.length && !overlayOk; k += 4) overlayOk = alpha[k] > 0;
            }
            return {
              input: Boolean(input?.complete && input.naturalWidth > 0),
              overlay: overlayOk,
              overlayElement: overlay?.outerHTML.slice(0, 120) ?? null,
            };
          }, i);
          return last.input && last.overlay;
        },
        { timeout: 20_000, describe: async () => JSON.stringify(last) },
      );
    }
    await resultsFrame.evaluate(() => document.getElementById('gallery')?.scrollIntoView({ block: 'start' }));
    await wb.shot('results-gradcam-gallery');
  });

  e2eTest(
    "Evaluate Model on Dataset… on the notebook's .pth in the Explorer shows the verdict",
    TRAINING_TIMEOUT_MS,
    async () => {
      const page = wb.page;
      await wb.closeQuickInput();
      const item = page.getByRole('treeitem', { name: NOTEBOOK_CHECKPOINT });
      await item.click({ button: 'right' });
      const action = page.locator('.context-view .action-item').filter({ hasText: 'Evaluate Model on Dataset…' });
      await waitFor('the Explorer context menu of the .pth to offer Evaluate Model on Dataset…', () =>
        action.first().isVisible(),
      );
      await wb.shot('explorer-evaluate-menu');
      await action.first().click();
      const datasetRow = page
        .locator('.quick-input-widget .quick-input-list .monaco-list-row')
        .filter({ hasText: 'C-NMC_Leukemia/training_data' })
        .first();
      await waitFor('the dataset quick pick (the same picker as training)', () => datasetRow.isVisible(), {
        timeout: 60_000,
      });
      await datasetRow.click();
      const started = Date.now();
      const frame = await waitFor(
        'the Results webview of the evaluation with its verdict',
        async () => {
          const notes = await wb.notifications();
          if (/evaluation of .* failed/i.test(notes)) throw new Error(`the extension reported: ${notes}`);
          return wb.frameWith('#evaluation .banner');
        },
        {
          timeout: TRAINING_TIMEOUT_MS,
          interval: 1_000,
          describe: async () => `notifications: ${await wb.notifications()}\n  webviews: ${await wb.frameTitles()}`,
        },
      );
      log(`evaluation shown ${((Date.now() - started) / 1000).toFixed(1)} s after picking the dataset`);

      const runs = join(workspace.folder, '.leukemia-audit', 'runs');
      const evaluations = readdirSync(runs)
        .map((name) => join(runs, name))
        .filter((dir) => existsSync(join(dir, 'run.json')))
        .map((dir) => ({ dir, run: JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) }))
        .filter(({ run }) => run.kind === 'evaluation');
      assert.equal(evaluations.length, 1, 'one evaluation run folder next to the training run');
      const { run } = evaluations[0];
      assert.equal(run.status, 'completed');
      assert.deepEqual(run.dataset.classes, ['all', 'hem'], 'evaluated on the true labels, not the folds');
      assert.deepEqual(run.evaluation.outputs, ['fold_0', 'fold_1', 'fold_2'], 'output names from class_to_idx');
      assert.equal(run.evaluation.checkpoint.head, 'head.1', "the notebook's own head was found");
      assert.equal(run.evaluation.mapping, null);
      assert.equal(run.evaluation.association.informative, false, 'an untrained fold model says nothing of all/hem');
      // The VSIX carries onnxruntime's binaries for its platform, and the trainer child loads them.
      assert.match(extensionLog(tmp), /inference: onnxruntime \(CPU\) on \d+ threads?/, 'evaluated on onnxruntime');

      const shown = await frame.evaluate(() => {
        document.querySelector('#evaluation')?.scrollIntoView({ block: 'start' });
        return {
          heading: document.querySelector('.page-header h1')?.textContent ?? '',
          verdict: document.querySelector('#evaluation .banner')?.textContent ?? '',
        };
      });
      assert.match(shown.heading, /^Evaluation /, 'the results view says the run is an evaluation');
      assert.ok(
        shown.verdict.includes(run.evaluation.association.verdict),
        `the banner shows run.json's verdict "${run.evaluation.association.verdict}": ${shown.verdict}`,
      );
      await wb.shot('evaluation-verdict');
    },
  );
});
