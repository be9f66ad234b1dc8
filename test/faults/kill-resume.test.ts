// SIGKILL at random moments of a short real training (the bundled trainer child, real files), resumed after
// every kill: no completed epoch is ever lost, run.json and model.safetensors never disagree with the
// checkpoint beyond what resuming repairs, and every finished run equals an uninterrupted one exactly.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createRng } from '../../src/core/random.js';
import { CHECKPOINT_FILE, MODEL_FILE, type EpochRecord, type RunFile } from '../../src/core/run/runFile.js';
import { readCheckpointMetadata, readRunFile } from '../../src/core/run/runFileIo.js';
import type { TrainSettings } from '../../src/core/train/settings.js';
import { readSafetensors } from '../../src/core/weights/safetensors.js';
import type { TrainerMessage } from '../../src/protocol/trainer.js';
import { ensureBuilt } from '../helpers/build.js';
import { reportFault } from '../helpers/fault.js';
import { tinyDataset, tinySettings } from '../helpers/tinyRun.js';

const KILLS = Number(process.env.LEUKEMIA_AUDIT_KILLS ?? 24);
const SEED = 20261202;
const trainerBundle = join(__dirname, '..', '..', 'dist', 'trainer.js');
let work: string;
let dataset: string;

before(async () => {
  ensureBuilt(['trainer.js']);
  work = await mkdtemp(join(tmpdir(), 'leukemia-kill-resume-'));
  dataset = await tinyDataset(work);
});
after(() => rm(work, { recursive: true, force: true }));

/**
 * Small enough for dozens of runs: 32 px, 4 epochs of the `linear` strategy, whose feature file and
 * checkpoint writes are the moments worth hitting. Always `resume`, so the first attempt and the reference
 * have the same settings.
 */
function settings(out: string): TrainSettings {
  return tinySettings(dataset, out, { batchSize: 4, epochs: 4, strategy: 'linear', resume: true });
}

/** When to kill: a time after the fork, or a time after the last batch of an epoch (its validation and writes). */
type KillPlan = { afterMs: number } | { epoch: number; afterLastBatchMs: number } | undefined;

/** Times of the uninterrupted run, from the fork, that kill plans are drawn from. */
interface Timeline {
  firstBatchMs: number;
  /** Last batch of each epoch → its `epoch` event: validation, checkpoint, model, run.json. */
  epochEndMs: number;
  epochMs: number;
  /** Last `epoch` event → exit: final evaluation and Grad-CAM. */
  tailMs: number;
}

interface Attempt {
  /** 'result' when it finished before the kill. */
  ended: 'killed' | 'result' | 'error';
  error?: string;
  /** Epochs whose `epoch` event arrived: their files were written. */
  epochsReported: number[];
  /** The last thing the trainer said before the kill: the moment it was hit. */
  moment: string;
  logs: string[];
  timeline: Timeline;
}

/** Runs the trainer on `out` and SIGKILLs it as planned (never, when undefined). */
function attempt(out: string, plan: KillPlan): Promise<Attempt> {
  const forked = performance.now();
  const child = fork(trainerBundle, [], {
    env: { ...process.env, XDG_CACHE_HOME: join(work, 'cache') },
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  });
  const timeline: Timeline = { firstBatchMs: 0, epochEndMs: 0, epochMs: 0, tailMs: 0 };
  const result: Attempt = { ended: 'killed', epochsReported: [], moment: 'starting', logs: [], timeline };
  const kill = () => child.kill('SIGKILL');
  let timer = plan && 'afterMs' in plan ? setTimeout(kill, plan.afterMs) : undefined;
  let lastBatchAt = 0;
  let lastEpochAt = 0;
  child.on('message', (message: TrainerMessage) => {
    const now = performance.now() - forked;
    if (message.type === 'event' && message.event.type === 'progress') {
      timeline.firstBatchMs ||= now;
      if (message.event.batch === message.event.batches) {
        lastBatchAt = now;
        if (plan && 'epoch' in plan && plan.epoch === message.event.epoch)
          timer = setTimeout(kill, plan.afterLastBatchMs);
      }
    }
    if (message.type === 'event' && message.event.type === 'epoch') {
      timeline.epochEndMs = Math.max(timeline.epochEndMs, now - lastBatchAt);
      if (lastEpochAt) timeline.epochMs = Math.max(timeline.epochMs, now - lastEpochAt);
      lastEpochAt = now;
    }
    if (message.type === 'ready') child.send({ type: 'train', settings: settings(out) });
    if (message.type === 'result') result.ended = 'result';
    if (message.type === 'error') Object.assign(result, { ended: 'error', error: message.message });
    if (message.type !== 'event') return;
    const event = message.event;
    if (event.type === 'epoch') result.epochsReported.push(event.record.epoch);
    if (event.type === 'log') result.logs.push(event.message);
    result.moment =
      event.type === 'phase'
        ? event.phase
        : event.type === 'progress'
          ? `epoch ${event.epoch} training`
          : event.type === 'epoch'
            ? `after epoch ${event.record.epoch}`
            : result.moment;
  });
  return new Promise((resolve) =>
    child.once('exit', () => {
      clearTimeout(timer);
      timeline.tailMs = performance.now() - forked - lastEpochAt;
      resolve(result);
    }),
  );
}

/** The fields that must be identical to the uninterrupted run (times are not). */
function comparable(record: EpochRecord) {
  const { seconds: _seconds, imagesPerSecond: _speed, ...rest } = record;
  return rest;
}

async function modelTensors(runDir: string) {
  return (await readSafetensors(join(runDir, MODEL_FILE))).tensors;
}

async function assertSameRun(runDir: string, reference: RunFile, referenceDir: string): Promise<void> {
  const run = await readRunFile(runDir);
  assert.equal(run.status, 'completed');
  assert.deepEqual(run.history.map(comparable), reference.history.map(comparable), 'every epoch as uninterrupted');
  assert.equal(run.bestEpoch, reference.bestEpoch);
  assert.deepEqual(run.metrics, reference.metrics);
  assert.deepEqual(run.predictions, reference.predictions);
  assert.deepEqual(
    run.explanations?.samples.map((s) => s.cam),
    reference.explanations?.samples.map((s) => s.cam),
  );
  const [mine, theirs] = [await modelTensors(runDir), await modelTensors(referenceDir)];
  assert.deepEqual([...mine.keys()], [...theirs.keys()]);
  for (const [name, tensor] of mine)
    assert.ok(Buffer.from(tensor.data.buffer).equals(Buffer.from(theirs.get(name)!.data.buffer)), `${name} differs`);
  const leftovers = (await readdir(runDir)).filter((n) => n.startsWith('.'));
  assert.deepEqual(leftovers, [], 'no lock, feature or temporary file is left after a finished run');
}

async function checkpointEpoch(runDir: string): Promise<number> {
  const file = join(runDir, CHECKPOINT_FILE);
  if (!existsSync(file)) return 0;
  return readCheckpointMetadata((await readSafetensors(file)).metadata, file).epoch;
}

/**
 * What must hold after every kill: the checkpoint (the authority) records every epoch the trainer reported
 * finished, identical to the uninterrupted run; run.json lags it by at most one epoch; model.safetensors is
 * the checkpoint's best epoch, or lags only when that best epoch is the checkpoint's own (resuming rewrites it).
 */
async function checkAfterKill(runDir: string, reported: Set<number>, reference: RunFile) {
  const lag = { runJson: false, model: false };
  if (!existsSync(join(runDir, CHECKPOINT_FILE))) {
    assert.equal(reported.size, 0, 'an epoch was reported but no checkpoint exists');
    return lag;
  }
  const file = join(runDir, CHECKPOINT_FILE);
  const { epoch, progress } = readCheckpointMetadata((await readSafetensors(file)).metadata, file);
  assert.ok(progress, 'the checkpoint carries its progress');
  for (const e of reported) assert.ok(e <= epoch, `epoch ${e} was reported, but the checkpoint is at ${epoch}`);
  assert.deepEqual(progress.history.map(comparable), reference.history.slice(0, epoch).map(comparable));
  const run = await readRunFile(runDir);
  const recorded = run.history.map((h) => h.epoch);
  assert.ok(
    recorded.length === epoch || recorded.length === epoch - 1,
    `run.json has ${recorded}, checkpoint ${epoch}`,
  );
  lag.runJson = recorded.length < epoch;
  const modelEpoch = Number((await readSafetensors(join(runDir, MODEL_FILE))).metadata.epoch);
  if (modelEpoch !== progress.bestEpoch) {
    assert.equal(progress.bestEpoch, epoch, `model.safetensors is epoch ${modelEpoch}, best ${progress.bestEpoch}`);
    lag.model = true;
  }
  return lag;
}

test(
  `${KILLS} SIGKILLs at seeded random moments, each resumed: nothing completed is lost, the end is exact`,
  { timeout: 1_200_000 },
  async () => {
    const started = performance.now();
    const referenceDir = join(work, 'reference');
    const referenceStart = performance.now();
    const uninterrupted = await attempt(referenceDir, undefined);
    const referenceMs = performance.now() - referenceStart;
    assert.equal(uninterrupted.ended, 'result', uninterrupted.error);
    const reference = await readRunFile(referenceDir);
    assert.equal(reference.history.length, 4);

    const rng = createRng(SEED);
    const { firstBatchMs, epochEndMs, epochMs, tailMs } = uninterrupted.timeline;
    /**
     * Half the kills land anywhere from the fork to a little into the final evaluation of what this attempt
     * has left to do; half in the few milliseconds around the writes that end a random remaining epoch.
     */
    const plan = (doneEpochs: number): KillPlan =>
      doneEpochs === 4
        ? { afterMs: rng.next() * (firstBatchMs + 0.5 * tailMs) }
        : rng.chance(0.5)
          ? { afterMs: rng.next() * (firstBatchMs + (4 - doneEpochs) * epochMs + 0.3 * tailMs) }
          : { epoch: doneEpochs + 1 + rng.int(4 - doneEpochs), afterLastBatchMs: rng.next() * epochEndMs * 1.2 };
    const moments = new Map<string, number>();
    let kills = 0;
    let resumes = 0;
    let rounds = 0;
    let finishedRounds = 0;
    let epochsChecked = 0;
    let runJsonLags = 0;
    let modelLags = 0;
    let leftoversRemoved = 0;
    let recoveredRecords = 0;
    while (kills < KILLS) {
      const runDir = join(work, `round-${++rounds}`);
      const reported = new Set<number>();
      let tailKills = 0;
      for (let first = true; ; first = false) {
        const done = await checkpointEpoch(runDir);
        // One kill after the last epoch per run, then it finishes: the next run spreads kills over training again.
        const last = kills >= KILLS || (done === 4 && tailKills >= 1);
        if (done === 4 && !last) tailKills++;
        const outcome = await attempt(runDir, last ? undefined : plan(done));
        if (!first) resumes++;
        leftoversRemoved += outcome.logs.filter((l) => l.startsWith('Removed ')).length;
        recoveredRecords += outcome.logs.filter((l) => l.startsWith('Recovered epoch')).length;
        assert.notEqual(outcome.ended, 'error', `attempt after ${kills} kills failed: ${outcome.error}`);
        for (const e of outcome.epochsReported) reported.add(e);
        if (outcome.ended === 'result') break;
        kills++;
        moments.set(outcome.moment, (moments.get(outcome.moment) ?? 0) + 1);
        const lag = await checkAfterKill(runDir, reported, reference);
        epochsChecked += reported.size;
        if (lag.runJson) runJsonLags++;
        if (lag.model) modelLags++;
      }
      await assertSameRun(runDir, reference, referenceDir);
      finishedRounds++;
    }
    const seconds = (performance.now() - started) / 1000;
    const where = [...moments].map(([moment, n]) => `${moment} ×${n}`).join(', ');
    reportFault(
      'SIGKILL during training, then --resume',
      `${kills} kills (seed ${SEED}), ${resumes} resumes, ${rounds} runs; ${epochsChecked} reported epochs checked present after their kill; ` +
        `run.json one epoch behind the checkpoint after ${runJsonLags} kills and model.safetensors behind after ${modelLags}, both repaired on resume ` +
        `(${recoveredRecords} records recovered from the checkpoint); leftovers removed on ${leftoversRemoved} restarts; ` +
        `${finishedRounds} finished runs identical to the uninterrupted one (history, best epoch, metrics, predictions, Grad-CAM maps, model bytes); ` +
        `reference run ${(referenceMs / 1000).toFixed(1)} s (epoch ${(epochMs / 1000).toFixed(1)} s, its validation and writes ${(epochEndMs / 1000).toFixed(2)} s), whole battery ${seconds.toFixed(0)} s. Killed during: ${where}`,
    );
  },
);
