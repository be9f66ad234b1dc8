// Fault battery — regular-expression denial of service. A workspace sets the subject pattern `^(a+)+_` and
// names its images `aaaa…!.bmp`: each match backtracks ~2^n steps. The pattern must never run on the
// extension host's thread: the audit runs in the audit child, which a time limit ends; the host's event loop
// keeps turning meanwhile (its lag is measured and printed). Names are capped before any pattern sees them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MAX_SUBJECT_NAME_CHARS, subjectMatcher } from '../../src/core/datasetSpec.js';
import { encodeBmp24 } from '../../src/core/image/bmpEncode.js';
import { runAuditProcess } from '../../src/extension/workspace/auditProcess.js';
import { describeLag, measureLag } from '../../src/extension/workspace/eventLoopLag.js';
import { reportFault } from '../helpers/fault.js';

const repo = path.join(__dirname, '..', '..');
const child = path.join(repo, 'dist', 'auditChild.js');
const HOSTILE = '^(a+)+_';

let work: string;
let root: string;

before(async () => {
  if (!existsSync(child)) spawnSync(process.execPath, [path.join(repo, 'scripts', 'build.mjs')], { cwd: repo });
  work = await mkdtemp(path.join(tmpdir(), 'faults-regex-'));
  root = path.join(work, 'hostile');
  for (const label of ['all', 'hem']) {
    await mkdir(path.join(root, label), { recursive: true });
    for (let i = 0; i < 4; i++) {
      const pixels = new Uint8Array(8 * 8 * 3).fill(30 + 50 * i);
      // 34 `a`s: about 2^34 backtracking steps per name, minutes of CPU.
      await writeFile(
        path.join(root, label, `${'a'.repeat(34)}!${label}${i}.bmp`),
        encodeBmp24({ width: 8, height: 8, channels: 3, data: pixels }),
      );
    }
  }
});
after(() => rm(work, { recursive: true, force: true }));

test('a backtracking subject pattern runs in the audit child, which the time limit stops; the host stays responsive', async () => {
  assert.ok(existsSync(child), `${child} is built`);
  const limitMs = 2_000;
  const started = Date.now();
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 50);
  const { result, lag } = await measureLag(() =>
    runAuditProcess(
      child,
      { root, subjectPattern: HOSTILE, checkPixels: false },
      { signal: AbortSignal.timeout(limitMs) },
    ),
  );
  clearInterval(ticker);
  const seconds = (Date.now() - started) / 1000;
  assert.equal(result, undefined, 'no report: the child was stopped');
  assert.ok(seconds < limitMs / 1000 + 10, `the child ended soon after the limit (${seconds.toFixed(1)} s)`);
  // The host's loop turned all along: a pattern running on this thread would have given ~0 ticks.
  assert.ok(ticks >= (limitMs / 50) * 0.5, `the event loop kept turning (${ticks} ticks of 50 ms)`);
  reportFault(
    'regex-dos',
    `^(a+)+_ over 8 names of 34 a's: audit child killed at the ${limitMs / 1000} s limit after ${seconds.toFixed(1)} s; host event-loop lag ${describeLag(lag)}`,
  );
});

test('subject patterns see at most MAX_SUBJECT_NAME_CHARS characters of a name', () => {
  const match = subjectMatcher('_P(\\d+)\\.');
  assert.equal(match('x_P7.bmp'), '7');
  assert.equal(match(`${'x'.repeat(MAX_SUBJECT_NAME_CHARS)}_P7.bmp`), undefined, 'a token past the cap is not seen');
  reportFault(
    'subject-name-cap',
    `names are cut to ${MAX_SUBJECT_NAME_CHARS} characters before a subject pattern runs`,
  );
});
