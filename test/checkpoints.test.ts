// The one checkpoint loader against PyTorch: every way a notebook or training script saves a ResNet-18 —
// generated at test time with Debian's torch — must load and give PyTorch's logits on the same images; a
// hostile whole-model pickle is refused and nothing in it runs; non-ResNet-18 files are refused saying what
// they are.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { loadModel } from '../src/core/explain/predict.js';
import { createResNet18, disposeModel, forward } from '../src/core/model/resnet18.js';
import { loadStateDict } from '../src/core/model/stateDict.js';
import { CheckpointError, describeCheckpoint, loadCheckpoint } from '../src/core/weights/checkpoint.js';
import { resolveWeights } from '../src/core/weights/resolveWeights.js';
import {
  RANDOMISE_BATCHNORM_PY,
  SAFETENSORS_PY,
  referenceUnavailable,
  runPythonIfAvailable,
  type SkippableTest,
} from './helpers/python.js';

let workDir = '';

before(async () => {
  await tf.setBackend('wasm');
  workDir = await mkdtemp(join(tmpdir(), 'checkpoints-test-'));
});

after(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** Save patterns: file → what the loader must recognise (prefix, head name, outputs, class names). */
const PATTERNS: Record<string, { prefix: string; head: string; k: number; classes?: string[]; container: RegExp }> = {
  'plain.pth': { prefix: '', head: 'fc', k: 2, container: /^state dict$/ },
  'dataparallel.pth': { prefix: 'module.', head: 'module.fc', k: 2, container: /^state dict$/ },
  'notebook-identity-head.pth': { prefix: 'backbone.', head: 'head.1', k: 2, container: /^state dict$/ },
  'classifier-name.pth': { prefix: 'features.', head: 'classifier', k: 3, container: /^state dict$/ },
  'sequential-fc.pth': { prefix: '', head: 'fc.1', k: 2, container: /^state dict$/ },
  'training-checkpoint.pth': {
    prefix: 'backbone.',
    head: 'head.1',
    k: 2,
    classes: ['all', 'hem'],
    container: /training checkpoint, state dict under key "model_state_dict"/,
  },
  'net-idx-to-class.pth': {
    prefix: '_orig_mod.',
    head: '_orig_mod.fc',
    k: 2,
    classes: ['hem', 'all'],
    container: /key "net"/,
  },
  'whole-model.pth': {
    prefix: 'backbone.',
    head: 'head.1',
    k: 2,
    classes: ['all', 'hem'],
    container: /^whole model __main__\.LeukemiaNet$/,
  },
  'whole-model-legacy.pth': {
    prefix: 'backbone.',
    head: 'head.1',
    k: 2,
    classes: ['all', 'hem'],
    container: /^whole model __main__\.LeukemiaNet$/,
  },
  'whole-torchvision.pth': {
    prefix: '',
    head: 'fc',
    k: 3,
    container: /whole model torchvision\.models\.resnet\.ResNet/,
  },
  'children-sequential.pth': { prefix: '', head: '10', k: 2, container: /^state dict$/ },
  'wrapper.safetensors': { prefix: 'backbone.', head: 'head.1', k: 2, container: /^state dict$/ },
};

const SCRIPT = String.raw`
import collections, json, os, sys
import torch, torchvision
from torch import nn
${SAFETENSORS_PY}
${RANDOMISE_BATCHNORM_PY}
folder, marker = sys.argv[1], sys.argv[2]
torch.manual_seed(0)

class LeukemiaNet(nn.Module):
    """The notebook's model: torchvision's ResNet-18 with fc = Identity and its own Dropout + Linear head."""
    def __init__(self):
        super().__init__()
        self.backbone = torchvision.models.resnet18()
        self.backbone.fc = nn.Identity()
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(512, 2))
        self.classes = ['all', 'hem']
    def forward(self, x):
        return self.head(self.backbone(x))

class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torchvision.models.resnet18()
        self.features.fc = nn.Identity()
        self.classifier = nn.Linear(512, 3)
    def forward(self, x):
        return self.classifier(self.features(x))

class Evil:
    def __reduce__(self):
        return (os.system, ('touch ' + marker,))

images = torch.randn(2, 3, 64, 64)
logits = {}
def keep(name, model):
    model.eval()
    with torch.no_grad():
        logits[name] = model(images).tolist()

plain = randomise_batchnorm(torchvision.models.resnet18(num_classes=2), 7).eval()
torch.save(plain.state_dict(), folder + '/plain.pth'); keep('plain.pth', plain)
torch.save(nn.DataParallel(plain).state_dict(), folder + '/dataparallel.pth'); keep('dataparallel.pth', plain)

net = LeukemiaNet(); randomise_batchnorm(net, 3).eval()
torch.save(net.state_dict(), folder + '/notebook-identity-head.pth'); keep('notebook-identity-head.pth', net)
optimizer = torch.optim.Adam(net.parameters())
net.train(); optimizer.zero_grad(); net(images).sum().backward(); optimizer.step(); net.eval()
torch.save({'epoch': 7, 'model_state_dict': net.state_dict(), 'optimizer_state_dict': optimizer.state_dict(),
            'class_to_idx': {'all': 0, 'hem': 1}, 'best_acc': 0.91}, folder + '/training-checkpoint.pth')
keep('training-checkpoint.pth', net)
torch.save(net, folder + '/whole-model.pth'); keep('whole-model.pth', net)
torch.save(net, folder + '/whole-model-legacy.pth', _use_new_zipfile_serialization=False); keep('whole-model-legacy.pth', net)
save(folder + '/wrapper.safetensors', net.state_dict()); keep('wrapper.safetensors', net)

features = randomise_batchnorm(Features()).eval()
torch.save(features.state_dict(), folder + '/classifier-name.pth'); keep('classifier-name.pth', features)

seq = torchvision.models.resnet18(); seq.fc = nn.Sequential(nn.Dropout(0.5), nn.Linear(512, 2)); randomise_batchnorm(seq).eval()
torch.save(seq.state_dict(), folder + '/sequential-fc.pth'); keep('sequential-fc.pth', seq)

children = nn.Sequential(*list(randomise_batchnorm(torchvision.models.resnet18()).children())[:-1], nn.Flatten(), nn.Linear(512, 2)).eval()
torch.save(children.state_dict(), folder + '/children-sequential.pth'); keep('children-sequential.pth', children)

compiled = randomise_batchnorm(torchvision.models.resnet18(num_classes=2)).eval()
prefixed = collections.OrderedDict(('_orig_mod.' + k, v) for k, v in compiled.state_dict().items())
torch.save({'net': prefixed, 'idx_to_class': {0: 'hem', 1: 'all'}, 'args': {'lr': 0.01}}, folder + '/net-idx-to-class.pth')
keep('net-idx-to-class.pth', compiled)

whole = randomise_batchnorm(torchvision.models.resnet18(num_classes=3)).eval()
torch.save(whole, folder + '/whole-torchvision.pth'); keep('whole-torchvision.pth', whole)

# Not ResNet-18, or not one we can run.
torch.save(collections.OrderedDict([('features.0.weight', torch.randn(64, 3, 3, 3)), ('features.0.bias', torch.randn(64)),
    ('classifier.0.weight', torch.randn(10, 64)), ('classifier.0.bias', torch.randn(10))]), folder + '/vgg-like.pth')
mlp = torchvision.models.resnet18(); mlp.fc = nn.Sequential(nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 2))
torch.save(mlp.state_dict(), folder + '/mlp-head.pth')
headless = torchvision.models.resnet18(); headless.fc = nn.Identity()
torch.save(headless.state_dict(), folder + '/headless.pth')

# Hostile: PyTorch itself would run the command (checked on a second marker), we must not.
torch.save({'model_state_dict': plain.state_dict(), 'extra': Evil()}, folder + '/hostile.pth')
class EvilNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torchvision.models.resnet18()
        self.payload = Evil()
torch.save(EvilNet(), folder + '/hostile-whole.pth')
class Probe:
    def __reduce__(self):
        return (os.system, ('touch ' + marker + '.torch',))
torch.save({'x': Probe()}, folder + '/probe.pth')
torch.load(folder + '/probe.pth')
assert os.path.exists(marker + '.torch'), 'torch.load runs the payload: the file is live'
import pickle
with open(folder + '/probe.pkl', 'wb') as f:
    pickle.dump({'x': Evil()}, f)

json.dump({'images': images.permute(0, 2, 3, 1).reshape(-1).tolist(), 'logits': logits}, open(folder + '/reference.json', 'w'))
`;

interface Reference {
  images: number[];
  logits: Record<string, number[][]>;
}

let generated: Promise<{ folder: string; marker: string; reference: Reference } | string> | undefined;

function generate() {
  generated ??= (async () => {
    const folder = await mkdtemp(join(workDir, 'torch-'));
    const marker = join(folder, 'MARKER-hostile-code-ran');
    const run = await runPythonIfAvailable(SCRIPT, [folder, marker], {
      timeoutMs: 180_000,
      purpose: 'Checkpoint loader parity with PyTorch',
    });
    if ('unavailable' in run) return run.unavailable;
    const reference = JSON.parse(await readFile(join(folder, 'reference.json'), 'utf8')) as Reference;
    return { folder, marker, reference };
  })();
  return generated;
}

/** In CI a missing PyTorch is a failure; here it is a skip that says why (referenceUnavailable). */
async function filesOrSkip(t: SkippableTest) {
  const files = await generate();
  if (typeof files === 'string') {
    referenceUnavailable(t, files);
    return undefined;
  }
  return files;
}

test('every save pattern loads through the one loader and gives PyTorch logits within 1e-4', async (t) => {
  const files = await filesOrSkip(t);
  if (!files) return;
  const input = tf.tensor4d(files.reference.images, [2, 64, 64, 3]);
  try {
    for (const [name, expected] of Object.entries(PATTERNS)) {
      const { dict, info } = await loadCheckpoint(join(files.folder, name));
      assert.equal(info.prefix, expected.prefix, `${name}: prefix`);
      assert.equal(info.head, expected.head, `${name}: head`);
      assert.equal(info.numClasses, expected.k, `${name}: outputs`);
      assert.match(info.container, expected.container, `${name}: container`);
      assert.deepEqual(info.classes, expected.classes ?? null, `${name}: class names`);
      const params = createResNet18(expected.k, 42);
      try {
        loadStateDict(params, dict);
        const logits = tf.tidy(() => forward(params, input, { training: false }).logits);
        const ours = logits.dataSync();
        logits.dispose();
        const theirs = files.reference.logits[name].flat();
        const difference = Math.max(...theirs.map((value, i) => Math.abs(value - ours[i])));
        console.log(`PARITY ${name}: max |Δ logits| = ${difference.toExponential(2)} — ${describeCheckpoint(info)}`);
        assert.ok(difference <= 1e-4, `${name}: logits differ from PyTorch by ${difference}`);
      } finally {
        disposeModel(params);
      }
    }
  } finally {
    input.dispose();
  }
  // Training checkpoints: the optimizer state is never decoded, its keys are reported as ignored.
  const { info } = await loadCheckpoint(join(files.folder, 'training-checkpoint.pth'));
  assert.deepEqual(info.ignored, ['epoch', 'optimizer_state_dict', 'class_to_idx', 'best_acc']);
  assert.equal(info.classesSource, 'class_to_idx');
});

test('predict, explain and train --weights read the same files (a notebook .pth, not only safetensors)', async (t) => {
  const files = await filesOrSkip(t);
  if (!files) return;
  const model = await loadModel(join(files.folder, 'whole-model.pth'), { imageSize: 64 });
  try {
    assert.deepEqual(model.classes, ['all', 'hem']);
    assert.equal(model.imageSize, 64);
    assert.equal(model.checkpoint.head, 'head.1');
  } finally {
    disposeModel(model.params);
  }
  const defaultSize = await loadModel(join(files.folder, 'plain.pth'));
  try {
    assert.equal(defaultSize.imageSize, 224, "a checkpoint that does not say its size is run at torchvision's 224");
    assert.deepEqual(defaultSize.classes, ['0', '1']);
  } finally {
    disposeModel(defaultSize.params);
  }
  const forTraining = await resolveWeights(join(files.folder, 'headless.pth'), { numClasses: 2 });
  assert.equal(forTraining!.headMismatch, true, 'a backbone without classifier initialises training');
  assert.equal(forTraining!.checkpoint.head, null);
  const params = createResNet18(2, 1);
  try {
    assert.equal(loadStateDict(params, forTraining!.dict, { allowHeadMismatch: true }).headReinitialised, true);
  } finally {
    disposeModel(params);
  }
  await assert.rejects(
    loadModel(join(files.folder, 'headless.pth')),
    /headless\.pth: a ResNet-18 backbone without a classifier/,
  );
});

test('a hostile whole-model pickle is refused and nothing in it runs', async (t) => {
  const files = await filesOrSkip(t);
  if (!files) return;
  for (const name of ['hostile.pth', 'hostile-whole.pth', 'probe.pth']) {
    await assert.rejects(loadCheckpoint(join(files.folder, name)), (error: Error) => {
      assert.match(error.message, new RegExp(`${name.replace('.', '\\.')}.*: it references (os|posix)\\.system`));
      assert.match(error.message, /Nothing in it was executed/);
      console.log(`HOSTILE ${name}: refused — ${error.message}`);
      return true;
    });
  }
  await assert.rejects(
    loadCheckpoint(join(files.folder, 'probe.pkl')),
    /plain pickle, not a file written by torch\.save/,
  );
  assert.equal(existsSync(files.marker), false, 'the payload never ran');
  assert.equal(existsSync(`${files.marker}.torch`), true, 'the same payload is live under torch.load');
});

test('files that are not ResNet-18 followed by one Linear(512, K) are refused saying what they hold', async (t) => {
  const files = await filesOrSkip(t);
  if (!files) return;
  await assert.rejects(loadCheckpoint(join(files.folder, 'vgg-like.pth')), (error: unknown) => {
    assert.ok(error instanceof CheckpointError);
    assert.match(
      error.message,
      /is not a ResNet-18: this state dict has features\.0\.weight \[64, 3, 3, 3\].* — a VGG or AlexNet\?/,
    );
    return true;
  });
  await assert.rejects(
    loadCheckpoint(join(files.folder, 'mlp-head.pth')),
    /a ResNet-18 backbone and fc\.0 Linear\(512, 64\), but also fc\.2\.weight \[2, 64\]/,
  );
});
