// End to end, two commands that read run folders rather than make a first one:
//   - Compare Runs… (issue 13): the fold-label model next to the all/hem one, both trained beforehand by the
//     packaged CLI into the workspace's runs folder, picked one after the other from the run picker; the page
//     must show what run.json says — label sources, the structural flag and its banner, the metrics, both
//     confusion matrices — and mark the rows that differ with a styled badge;
//   - Evaluate Model on Dataset… on a checkpoint whose two outputs are named `blast`/`normal`, not all/hem: the
//     extension asks with a quick pick how to map them; choosing a mapping re-runs the evaluation with it, and
//     only the mapped run is kept.
// Its own code-server session (screenshots and logs prefixed `compare-`), so it runs on its own:
// `node test/e2e/prepare.mjs && node --test test/e2e/compare.test.mjs`.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { e2eTestWith, killOnExit, log, tryLocateTools, waitFor } from './harness.mjs';
import { COMPARED_RUNS, RENAMED_CHECKPOINT, RENAMED_OUTPUTS, writeComparisonWorkspace } from './workspace.mjs';
import { Session } from './session.mjs';

const EVALUATION_TIMEOUT_MS = Number(process.env.LEUKEMIA_AUDIT_E2E_TRAINING_TIMEOUT_MS ?? 8 * 60_000);
const PREFIX = 'compare-';
const session = new Session({ prefix: PREFIX });
/** @type {import('./workbench.mjs').Workbench} */
let wb;
let workspace;

killOnExit(() => session.codeServer);

const e2eTest = e2eTestWith(() => wb, PREFIX);
const { tools, toolsError } = tryLocateTools();

const readRun = (runDir) => JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
const fixed = (value) => (typeof value === 'number' ? value.toFixed(3) : '—');

describe('Compare Runs… and the output-mapping pick of Evaluate (code-server + Chromium)', () => {
  before(async () => {
    if (toolsError) throw new Error(`Not run: the end-to-end tools are missing. ${toolsError.message}`);
    await session.start(tools, writeComparisonWorkspace);
    ({ wb, workspace } = session);
  });

  after(() => session.stop());

  e2eTest('Compare Runs… shows the fold model next to the all/hem model as run.json has them', 120_000, async () => {
    await wb.runCommand('Leukemia Audit: Compare Runs…');
    await wb.pickRow('Compare Runs (1 of 2)', COMPARED_RUNS.folds);
    await wb.pickRow('Compare Runs (2 of 2)', COMPARED_RUNS.diagnosis);
    const frame = await waitFor('the comparison webview (table.comparison)', () => wb.frameWith('table.comparison'), {
      timeout: 60_000,
      describe: async () => `notifications: ${await wb.notifications()}\n  webviews: ${await wb.frameTitles()}`,
    });
    await waitFor('the Compare tab', () =>
      wb.page.locator('.tab', { hasText: `Compare: ${COMPARED_RUNS.folds} vs ${COMPARED_RUNS.diagnosis}` }).isVisible(),
    );
    const runs = [readRun(workspace.folds), readRun(workspace.diagnosis)];
    assert.equal(runs[0].dataset.labelsAreStructural, true, 'the CLI trained the first run on the fold folders');
    assert.equal(runs[1].dataset.labelsAreStructural, false);

    const shown = await frame.evaluate(() => {
      const rows = [...document.querySelectorAll('table.comparison tbody tr')].map((tr) => {
        const badge = tr.querySelector('th .badge');
        const badgeBox = badge?.shadowRoot?.firstElementChild ?? badge;
        const style = badgeBox ? getComputedStyle(badgeBox) : undefined;
        return {
          label: tr.querySelector('th')?.firstChild?.textContent?.trim() ?? '',
          values: [...tr.querySelectorAll('td')].map((td) => td.textContent),
          differs: tr.classList.contains('differs'),
          badge: badge
            ? {
                tag: badge.tagName.toLowerCase(),
                text: badge.textContent.trim(),
                background: style.backgroundColor,
                border: `${style.borderTopStyle} ${style.borderTopColor}`,
                width: badge.getBoundingClientRect().width,
              }
            : null,
        };
      });
      const matrices = [...document.querySelectorAll('#comparison-confusion table.confusion')].map((table) =>
        [...table.querySelectorAll('tbody tr')].map((tr) =>
          [...tr.querySelectorAll('td .cell-count')].map((c) => Number(c.textContent.replace(/[^0-9]/g, ''))),
        ),
      );
      return {
        columns: [...document.querySelectorAll('table.comparison thead th')].map((th) => th.textContent),
        rows,
        matrices,
        banner: document.querySelector('.banner-error')?.textContent ?? '',
      };
    });
    assert.deepEqual(shown.columns, [COMPARED_RUNS.folds, COMPARED_RUNS.diagnosis]);
    const row = (label) => {
      const found = shown.rows.find((r) => r.label === label);
      assert.ok(found, `a "${label}" row: ${JSON.stringify(shown.rows.map((r) => r.label))}`);
      return found;
    };
    assert.deepEqual(row('label source').values, ['folder:1 → folder level 1', 'folder:2 → folder level 2']);
    assert.deepEqual(row('classes').values, ['fold_0, fold_1, fold_2', 'all, hem']);
    assert.deepEqual(row('structural labels').values, ['yes — folds, splits or batches', 'no']);
    assert.match(shown.banner, /trained or evaluated on structural labels/);
    for (const [label, key] of [
      ['accuracy', 'accuracy'],
      ['balanced accuracy', 'balancedAccuracy'],
      ['weighted F1', 'weightedF1'],
      ['ROC AUC', 'rocAuc'],
    ])
      assert.deepEqual(
        row(label).values,
        runs.map((r) => fixed(r.metrics.validation[key])),
        `${label} as in run.json`,
      );
    assert.deepEqual(
      shown.matrices,
      runs.map((r) => r.metrics.validation.confusionMatrix.counts),
      "one confusion matrix per run, with run.json's counts",
    );
    // The rows that differ where it matters carry a drawn badge (a tinted fill and a border), the others none.
    for (const label of ['label source', 'classes', 'structural labels']) {
      const { differs, badge } = row(label);
      assert.ok(differs && badge, `the "${label}" row is marked as differing`);
      assert.equal(badge.tag, 'vscode-badge');
      assert.equal(badge.text, 'differs');
      assert.notEqual(badge.background, 'rgba(0, 0, 0, 0)', `the badge has a fill: ${JSON.stringify(badge)}`);
      assert.match(badge.border, /^solid /, `the badge has a border: ${JSON.stringify(badge)}`);
      assert.ok(badge.width > 20, `the badge is drawn: ${JSON.stringify(badge)}`);
    }
    assert.equal(row('kind').badge, null, 'an equal row has no badge');
    await wb.shot('comparison');
    await frame.evaluate(() => document.getElementById('comparison-confusion')?.scrollIntoView({ block: 'start' }));
    await wb.shot('comparison-matrices');
  });

  e2eTest(
    "Evaluate asks how to map outputs that are not the dataset's classes, and keeps the mapped run",
    EVALUATION_TIMEOUT_MS,
    async () => {
      const page = wb.page;
      await wb.explorerAction(RENAMED_CHECKPOINT, 'Evaluate Model on Dataset…');
      await wb.pickRow('Evaluate Model on Dataset', 'C-NMC_Leukemia/training_data');
      const started = Date.now();
      // The first evaluation (no mapping) ends in the pick; its title names both sets of names.
      const pickTitle = `The model's outputs (${RENAMED_OUTPUTS.join(', ')}) are not the dataset's classes (all, hem)`;
      const title = page.locator('.quick-input-widget .quick-input-title');
      await waitFor(
        'the output-mapping quick pick after the first evaluation',
        async () => (await title.innerText().catch(() => '')).includes(pickTitle),
        {
          timeout: EVALUATION_TIMEOUT_MS - 60_000,
          interval: 1_000,
          describe: async () => `notifications: ${await wb.notifications()}; pick: ${await wb.quickPickRows()}`,
        },
      );
      log(`output-mapping pick shown ${((Date.now() - started) / 1000).toFixed(1)} s after picking the dataset`);
      const rows = await wb.quickPickRows();
      assert.ok(
        rows.some((r) => r.includes('Keep the contingency verdict')),
        `the pick offers to keep the verdict: ${rows}`,
      );
      const mappingRows = ['blast → all, normal → hem', 'blast → hem, normal → all'];
      for (const label of mappingRows)
        assert.ok(
          rows.some((r) => r.includes(label)),
          `the pick offers ${label}: ${JSON.stringify(rows)}`,
        );
      await wb.shot('evaluate-mapping-pick');
      await wb.pickRow(pickTitle, mappingRows[0]);

      const frame = await waitFor(
        'the Results webview of the mapped evaluation (a confusion matrix)',
        async () => {
          const notes = await wb.notifications();
          if (/evaluation of .* failed/i.test(notes)) throw new Error(`the extension reported: ${notes}`);
          const found = await wb.frameWith('#confusion table.confusion');
          const heading = found ? await found.textContent('.page-header h1').catch(() => '') : '';
          return heading.startsWith('Evaluation ') ? found : undefined;
        },
        {
          timeout: EVALUATION_TIMEOUT_MS,
          interval: 1_000,
          describe: async () => `notifications: ${await wb.notifications()}\n  webviews: ${await wb.frameTitles()}`,
        },
      );
      const evaluations = readdirSync(workspace.runs)
        .map((name) => join(workspace.runs, name))
        .filter((dir) => existsSync(join(dir, 'run.json')))
        .map((dir) => ({ dir, run: readRun(dir) }))
        .filter(({ run }) => run.kind === 'evaluation');
      assert.equal(evaluations.length, 1, 'the unmapped evaluation is superseded by the mapped one: one folder left');
      const { run } = evaluations[0];
      assert.equal(run.status, 'completed');
      assert.deepEqual(run.evaluation.outputs, RENAMED_OUTPUTS, 'output names from class_to_idx');
      // mapping: output index → class index; the pick chose blast → all, normal → hem.
      assert.deepEqual(
        run.evaluation.mapping.map((c) => run.dataset.classes[c]),
        ['all', 'hem'],
        'the mapping chosen in the pick',
      );
      assert.equal(run.evaluation.mappedBy, 'class-map');
      assert.deepEqual(run.metrics.test.classes, ['all', 'hem']);

      const recognised = await frame.evaluate(
        () => document.querySelector('#evaluation dl.summary')?.textContent ?? '',
      );
      assert.ok(
        recognised.includes('blast → all, normal → hem (as chosen: --class-map, or the pick in the editor)'),
        `the Evaluation section says how the outputs were mapped: ${recognised}`,
      );
      const shown = await frame.evaluate(() => {
        document.querySelector('#confusion')?.scrollIntoView({ block: 'start' });
        const table = document.querySelector('#confusion table.confusion');
        return {
          columns: [...table.querySelectorAll('thead tr:last-child th')].map((th) => th.textContent),
          counts: [...table.querySelectorAll('tbody tr')].map((tr) =>
            [...tr.querySelectorAll('td .cell-count')].map((c) => Number(c.textContent.replace(/[^0-9]/g, ''))),
          ),
        };
      });
      assert.deepEqual(shown.columns.slice(1), ['all', 'hem']);
      assert.deepEqual(shown.counts, run.metrics.test.confusionMatrix.counts, "the view shows run.json's counts");
      await wb.shot('evaluate-mapped-results');
    },
  );
});
