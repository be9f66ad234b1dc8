// Fault battery — a hostile workspace naming paths: a dataset root anywhere on disk, a label table or a
// Grad-CAM image that is a symlink to a file outside. Each test prints one `FAULT <name>: <what happened>` line.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readLabelTables } from '../../src/core/audit/runAudit.js';
import { chooseSubjectPattern, confineAuditRoot } from '../../src/core/confine.js';
import { encodeBmp24 } from '../../src/core/image/bmpEncode.js';
import { buildHtmlReport } from '../../src/core/report/htmlReport.js';
import { RUN_SCHEMA, RUN_SCHEMA_VERSION } from '../../src/core/run/runFile.js';
import { scanDataset } from '../../src/core/audit/scan.js';
import { reportFault } from '../helpers/fault.js';

let work: string;
let workspace: string;
let outside: string;

before(async () => {
  work = await realpath(await mkdtemp(path.join(tmpdir(), 'faults-paths-')));
  workspace = path.join(work, 'workspace');
  outside = path.join(work, 'outside');
  await mkdir(workspace);
  await mkdir(outside);
});
after(() => rm(work, { recursive: true, force: true }));

describe('audit roots a workspace names', () => {
  const untrusted = () => ({ trusted: false, workspaceFolders: [workspace], home: homedir() });

  test('"root": "/usr" and "../../.." are refused in an untrusted workspace, allowed (but not / or home) when trusted', async () => {
    const usr = await confineAuditRoot('/usr', untrusted());
    assert.equal(usr.ok, false);
    assert.match(!usr.ok ? usr.reason : '', /\/usr is outside the workspace folders/);
    const climb = await confineAuditRoot(path.resolve(workspace, 'data', '../../..'), untrusted());
    assert.equal(climb.ok, false);
    const trustedUsr = await confineAuditRoot('/usr', { ...untrusted(), trusted: true });
    assert.deepEqual(trustedUsr, { ok: true, root: await realpath('/usr') });
    const slash = await confineAuditRoot('/', { ...untrusted(), trusted: true });
    assert.match(!slash.ok ? slash.reason : '', /file-system root: too broad/);
    const home = await confineAuditRoot(homedir(), { ...untrusted(), trusted: true });
    assert.match(!home.ok ? home.reason : '', /holds the home folder/);
    reportFault(
      'root-outside-workspace',
      `untrusted: /usr refused ("${!usr.ok && usr.reason}"), ../../.. refused; trusted: /usr allowed (bounded by the audit time limit and the scan caps), / and home refused`,
    );
  });

  test('a symlink inside the workspace that leads out of it is refused by real path; one that stays inside is followed', async () => {
    await symlink(outside, path.join(workspace, 'data-link'));
    await mkdir(path.join(workspace, 'real-data'));
    await symlink(path.join(workspace, 'real-data'), path.join(workspace, 'inner-link'));
    const out = await confineAuditRoot(path.join(workspace, 'data-link'), untrusted());
    assert.equal(out.ok, false);
    assert.match(!out.ok ? out.reason : '', /really .*outside/);
    const inner = await confineAuditRoot(path.join(workspace, 'inner-link'), untrusted());
    assert.deepEqual(inner, { ok: true, root: path.join(workspace, 'real-data') });
    reportFault('root-symlink-out', `a link to ${outside} inside the workspace is refused: ${!out.ok && out.reason}`);
  });

  test("a dataset file's subject pattern is ignored unless the workspace is trusted", () => {
    assert.equal(chooseSubjectPattern('^(a+)+_', '^UID_(H?\\d+)_', false), '^UID_(H?\\d+)_');
    assert.equal(chooseSubjectPattern('^(a+)+_', undefined, false), undefined);
    assert.equal(chooseSubjectPattern('^P(\\d+)_', '^UID_(H?\\d+)_', true), '^P(\\d+)_');
    reportFault(
      'dataset-file-pattern-untrusted',
      "untrusted: leukemia-audit.json's subjectPattern ignored, the user's setting used",
    );
  });
});

describe('label tables', () => {
  test('a labels.csv symlink to a file outside the workspace is not read when tables are confined', async () => {
    const root = path.join(workspace, 'cells');
    await mkdir(root);
    const names: string[] = [];
    for (let i = 0; i < 6; i++) {
      const name = `cell_${i}.bmp`;
      names.push(name);
      const pixels = new Uint8Array(8 * 8 * 3).fill(40 * i);
      await writeFile(path.join(root, name), encodeBmp24({ width: 8, height: 8, channels: 3, data: pixels }));
    }
    const secret = path.join(outside, 'labels.csv');
    await writeFile(secret, `filename,label\n${names.map((n, i) => `${n},${i % 2 ? 'hem' : 'all'}`).join('\n')}\n`);
    await symlink(secret, path.join(root, 'labels.csv'));
    const scan = await scanDataset(root);
    // A table linked from outside the dataset is read only when links out of it are followed on purpose…
    assert.deepEqual(await readLabelTables(scan), [], 'by default a table linked from outside the dataset is not read');
    const following = await scanDataset(root, { followLinksOutsideRoot: true });
    const followed = await readLabelTables(following, { followLinksOutsideRoot: true });
    assert.equal(followed.length, 1, 'with followLinksOutsideRoot the linked table is read (a trusted choice)');
    // …and never when tables are confined to the workspace folders (an untrusted workspace).
    const confined = await readLabelTables(following, { followLinksOutsideRoot: true, inside: [workspace] });
    assert.deepEqual(confined, []);
    reportFault(
      'label-table-symlink',
      `labels.csv -> ${secret}: not read by default, read with followLinksOutsideRoot, never when confined to the workspace`,
    );
  });
});

describe('the HTML report', () => {
  test('a symlink inside explanations/ to a file outside the run folder is not inlined', async () => {
    const runDir = path.join(workspace, 'run-1');
    await mkdir(path.join(runDir, 'explanations', 'val'), { recursive: true });
    // A PNG signature followed by a marker: were it inlined, the marker would be in the page, base64-encoded.
    const marker = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10]),
      Buffer.from('SECRET-OUTSIDE'),
    ]);
    await writeFile(path.join(outside, 'private.png'), marker);
    await writeFile(path.join(runDir, 'explanations', 'val', 'inside.png'), marker);
    await symlink(path.join(outside, 'private.png'), path.join(runDir, 'explanations', 'val', 'linked.png'));
    const sample = (file: string) => ({
      path: 'a.bmp',
      split: 'val',
      original: file,
      overlay: file,
      overlayShared: file,
    });
    await writeFile(
      path.join(runDir, 'run.json'),
      JSON.stringify({
        schema: RUN_SCHEMA,
        version: RUN_SCHEMA_VERSION,
        explanations: {
          samples: [sample('explanations/val/inside.png'), sample('explanations/val/linked.png')],
        },
      }),
    );
    const { html, missingImages } = await buildHtmlReport(runDir, { script: '', css: '' }).catch(
      async (error: Error) => {
        // The renderer may need more of run.json than this minimal run; the inlining is what is under test.
        throw new Error(`buildHtmlReport failed on a minimal run: ${error.message}`);
      },
    );
    assert.deepEqual(missingImages, ['explanations/val/linked.png']);
    assert.equal((html.match(new RegExp(marker.toString('base64'), 'g')) ?? []).length, 1, 'only the inside copy');
    reportFault(
      'report-symlink',
      'explanations/val/linked.png -> outside file: not inlined, listed as missing; the real file inside is',
    );
  });
});
