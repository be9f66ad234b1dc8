// Fault battery, weights (issue 11, "Weights that blow up memory"): files crafted to cost gigabytes are
// judged by names and shapes before anything is decoded or inflated; downloads are capped and an overriding
// URL needs a full SHA-256. Each case prints one line `FAULT <name>: <what happened>`, with the peak memory
// of a child process that loads the file against one that only loads the code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, mkdtemp, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ensureImagenetWeights, WEIGHTS_SHA256_ENV, WEIGHTS_URL_ENV } from '../../src/core/weights/imagenet.js';
import { referenceUnavailable, runPythonIfAvailable, type SkippableTest } from '../helpers/python.js';

const execFileAsync = promisify(execFile);
const ROOT = resolve(__dirname, '..', '..');
let workDir = '';

before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'faults-weights-'));
});

after(async () => {
  await rm(workDir, { recursive: true, force: true });
});

function fault(name: string, what: string): void {
  console.log(`FAULT ${name}: ${what}`);
}

/**
 * Crafted with torch and the standard library: the stride-0 file (a one-element storage viewed as
 * two 4M-element tensors), a deflate bomb (twenty 64 MB records of zeros, deflated) and the same bomb with
 * every central-directory entry pointing at one shared record.
 */
const CRAFT = String.raw`
import sys, struct, zipfile, collections, torch
folder = sys.argv[1]
one = torch.zeros(1)
torch.save(collections.OrderedDict([('conv1.weight', one.expand(2048, 2048)), ('fc.weight', one.expand(2048, 2048))]), folder + '/stride0.pth')
torch.save(collections.OrderedDict([('w', one.expand(2048, 2048)), ('v', one.expand(2048, 2048))]), folder + '/stride0-any-names.pth')
torch.save(collections.OrderedDict(('t%d' % i, torch.zeros(2 ** 24)) for i in range(20)), folder + '/plain-bomb.pth')
with zipfile.ZipFile(folder + '/plain-bomb.pth') as source, zipfile.ZipFile(folder + '/bomb.pth', 'w', zipfile.ZIP_DEFLATED) as target:
    for name in source.namelist():
        target.writestr(name, source.read(name))
# Every data/N entry of the central directory now points at data/0's record.
data = bytearray(open(folder + '/bomb.pth', 'rb').read())
infos = {info.filename: info for info in zipfile.ZipFile(folder + '/bomb.pth').infolist()}
first = infos['plain-bomb/data/0'].header_offset
at = data.find(b'PK\x01\x02')
while at >= 0:
    name_length, = struct.unpack_from('<H', data, at + 28)
    name = bytes(data[at + 46:at + 46 + name_length]).decode()
    if name.startswith('plain-bomb/data/'):
        struct.pack_into('<I', data, at + 42, first)
    at = data.find(b'PK\x01\x02', at + 4)
open(folder + '/shared-bomb.pth', 'wb').write(bytes(data))
`;

let crafted: Promise<string> | undefined;

async function craftedFolder(t: SkippableTest): Promise<string | undefined> {
  crafted ??= (async () => {
    const folder = await mkdtemp(join(workDir, 'crafted-'));
    const run = await runPythonIfAvailable(CRAFT, [folder], {
      timeoutMs: 120_000,
      purpose: 'Crafting hostile .pth files',
    });
    return 'unavailable' in run ? `!${run.unavailable}` : folder;
  })();
  const folder = await crafted;
  if (folder.startsWith('!')) {
    referenceUnavailable(t, folder.slice(1));
    return undefined;
  }
  return folder;
}

/** Loads `file` with `reader` in a fresh Node process and reports its outcome and peak RSS (MB). */
async function loadInChild(
  reader: 'loadCheckpoint' | 'decodePth' | 'none',
  file: string,
): Promise<{ outcome: string; peakMb: number }> {
  const script = `
    const { readFileSync } = require('node:fs');
    const { loadCheckpoint } = require(${JSON.stringify(join(ROOT, 'src/core/weights/checkpoint.ts'))});
    const { decodePth } = require(${JSON.stringify(join(ROOT, 'src/core/weights/pth.ts'))});
    (async () => {
      let outcome = 'loaded';
      try {
        if (${JSON.stringify(reader)} === 'loadCheckpoint') await loadCheckpoint(${JSON.stringify(file)});
        if (${JSON.stringify(reader)} === 'decodePth') {
          const dict = decodePth(readFileSync(${JSON.stringify(file)}), ${JSON.stringify(file)});
          outcome = 'decoded ' + [...dict.values()].reduce((n, t) => n + t.data.length, 0) + ' elements';
        }
      } catch (error) { outcome = 'refused: ' + error.message; }
      process.stdout.write(JSON.stringify({ outcome, peakMb: process.resourceUsage().maxRSS / 1024 }));
    })();`;
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: ROOT,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout);
}

let baselineMb: number | undefined;
async function extraMb(reader: 'loadCheckpoint' | 'decodePth', file: string) {
  baselineMb ??= (await loadInChild('none', file)).peakMb;
  const result = await loadInChild(reader, file);
  return { ...result, extra: Math.max(0, result.peakMb - baselineMb) };
}

test('stride-0 views over a one-element storage are judged by name and shape before decoding', async (t) => {
  const folder = await craftedFolder(t);
  if (!folder) return;
  for (const name of ['stride0.pth', 'stride0-any-names.pth']) {
    const file = join(folder, name);
    const size = (await stat(file)).size;
    const loader = await extraMb('loadCheckpoint', file);
    assert.match(loader.outcome, /^refused: .*(not torchvision's ResNet-18|is not a ResNet-18)/, loader.outcome);
    assert.ok(loader.extra < 64, `the loader refused without decoding (${loader.extra.toFixed(0)} MB)`);
    // The plain reader decodes any tensor dict (tests need it), but within the file's element budget.
    const plain = await extraMb('decodePth', file);
    fault(
      `stride-0-pth (${name}, ${size} bytes, 2 × 4.2M-element views of 1 element)`,
      `checkpoint loader ${loader.outcome.split(':').slice(0, 3).join(':')}… peak +${loader.extra.toFixed(0)} MB; ` +
        `generic decodePth ${plain.outcome.slice(0, 60)} peak +${plain.extra.toFixed(0)} MB (issue: 596 MB before)`,
    );
  }
});

test('a deflate bomb is never inflated for a file that is not a ResNet-18, and inflates within the budget otherwise', async (t) => {
  const folder = await craftedFolder(t);
  if (!folder) return;
  for (const name of ['bomb.pth', 'shared-bomb.pth']) {
    const file = join(folder, name);
    const size = (await stat(file)).size;
    const loader = await extraMb('loadCheckpoint', file);
    assert.match(loader.outcome, /^refused: .*is not a ResNet-18/);
    assert.ok(loader.extra < 64, `nothing inflated for a non-ResNet (${loader.extra.toFixed(0)} MB)`);
    const plain = await extraMb('decodePth', file);
    assert.match(plain.outcome, /^refused: .*beyond the 24000000 \(about twice ResNet-18\)/, plain.outcome);
    fault(
      `zip-bomb (${name}, ${(size / 1e6).toFixed(1)} MB declaring 20 × 64 MB)`,
      `checkpoint loader refused before inflating (peak +${loader.extra.toFixed(0)} MB); generic decodePth stopped at ` +
        `the element budget (peak +${plain.extra.toFixed(0)} MB, 1.3 GB before)`,
    );
  }
});

async function server(handler: http.RequestListener): Promise<{ origin: string; close: () => Promise<void> }> {
  const instance = http.createServer(handler);
  await new Promise<void>((done) => instance.listen(0, '127.0.0.1', done));
  return {
    origin: `http://127.0.0.1:${(instance.address() as AddressInfo).port}`,
    close: () => {
      instance.closeAllConnections();
      return new Promise((done) => instance.close(() => done()));
    },
  };
}

test('the ImageNet download is capped, and a URL override needs the full SHA-256', async () => {
  const cacheDir = await mkdtemp(join(workDir, 'cache-'));
  const body = Buffer.alloc(4096, 7);
  const digest = createHash('sha256').update(body).digest('hex');
  const name = `resnet18-${digest.slice(0, 8)}.pth`;
  let requests = 0;
  const endless = await server((request, response) => {
    requests++;
    if (request.url?.includes('declared')) {
      response.writeHead(200, { 'content-length': String(10 * 2 ** 30) });
      response.write(body);
      return;
    }
    response.writeHead(200); // no length: stream until the client gives up
    const pump = () => {
      while (response.write(body));
    };
    response.on('drain', pump);
    pump();
  });
  try {
    const env = { TORCH_HOME: join(cacheDir, 'torch') };
    await assert.rejects(
      ensureImagenetWeights({ cacheDir, env: { ...env, [WEIGHTS_URL_ENV]: `${endless.origin}/${name}` } }),
      (error: Error) => {
        assert.match(error.message, new RegExp(`set ${WEIGHTS_SHA256_ENV} to its 64 hex digits`));
        fault('weights-url-without-sha256', `refused before connecting: ${error.message.slice(0, 140)}…`);
        return true;
      },
    );
    assert.equal(requests, 0);
    await assert.rejects(
      ensureImagenetWeights({
        cacheDir,
        env: { ...env, [WEIGHTS_URL_ENV]: `${endless.origin}/${name}`, [WEIGHTS_SHA256_ENV]: digest.slice(0, 16) },
      }),
      /its 64 hex digits \(got/,
    );
    for (const route of ['declared', 'streamed']) {
      await assert.rejects(
        ensureImagenetWeights({
          url: `${endless.origin}/${route}/${name}`,
          sha256: digest,
          cacheDir,
          env,
          maxBytes: 1 << 20,
        }),
        (error: Error) => {
          assert.match(error.message, /beyond the 1048576 a ResNet-18 file can have/);
          fault(`weights-download-${route}-too-large`, `stopped: ${error.message.split('\n')[0]}`);
          return true;
        },
      );
    }
    assert.deepEqual(
      (await readdir(cacheDir)).filter((f) => f !== 'torch'),
      [],
      'nothing partial is left in the cache',
    );
  } finally {
    await endless.close();
  }
});
