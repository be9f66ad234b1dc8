/**
 * Finds torchvision's ResNet-18 in a state dict whatever the training script called things: the backbone
 * under any prefix (`module.`, `backbone.`, `model.net.`…), found by matching torchvision's own key set and
 * shapes, and the classifier under any name (`fc`, `classifier`, `head`, `head.1` after a Dropout…) as the
 * one `Linear(512, K)` left over. Works on names and shapes alone, so a file is judged before any of its
 * tensors is decoded.
 */
import { FEATURE_WIDTH, resnet18ParamSpecs, torchShapeOf } from '../model/resnet18.js';

export interface ResNet18Layout {
  /** What precedes torchvision's names in the file ('' when nothing does), e.g. `backbone.`. */
  prefix: string;
  /**
   * `torchvision`: `conv1.weight`, `layer1.0.conv1.weight`…; `children`: the top-level modules numbered, as in
   * `nn.Sequential(*list(resnet18().children())[:-1], …)` (`0.weight`, `4.0.conv1.weight`…).
   */
  naming: 'torchvision' | 'children';
  /** The classifier's module name in the file (`fc`, `head.1`, …), or undefined for a backbone without one. */
  head: { name: string; numClasses: number; hasBias: boolean } | undefined;
}

/** Not a ResNet-18 (or not one this product can run); the message says what was found instead. */
export class NotResNet18Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotResNet18Error';
  }
}

/** torchvision's backbone keys (everything but `fc`) with their PyTorch shapes, in state_dict order. */
export const BACKBONE_SHAPES: ReadonlyMap<string, readonly number[]> = new Map(
  resnet18ParamSpecs(1)
    .filter((spec) => !spec.name.startsWith('fc.'))
    .map((spec) => [spec.name, torchShapeOf(spec.shape)]),
);
const ANCHOR = 'conv1.weight';
/** Position of each top-level module with parameters among `resnet18().children()`. */
const CHILD_INDEX: Readonly<Record<string, number>> = { conv1: 0, bn1: 1, layer1: 4, layer2: 5, layer3: 6, layer4: 7 };

/** The name a torchvision key has in the file. */
export function fileKey(layout: Pick<ResNet18Layout, 'prefix' | 'naming'>, name: string): string {
  if (layout.naming === 'torchvision') return layout.prefix + name;
  const dot = name.indexOf('.');
  return `${layout.prefix}${CHILD_INDEX[name.slice(0, dot)]}${name.slice(dot)}`;
}
/** PyTorch tolerates a missing num_batches_tracked (old checkpoints); so do we. */
const optional = (name: string) => name.endsWith('.num_batches_tracked');
const MAX_LISTED = 6;

const sameShape = (a: readonly number[] | undefined, b: readonly number[]) =>
  a !== undefined && a.length === b.length && a.every((size, i) => size === b[i]);

function shapeText(shape: readonly number[] | undefined): string {
  return shape ? `[${shape.join(', ')}]` : '(absent)';
}

function listed(items: readonly string[]): string {
  const shown = items.slice(0, MAX_LISTED).join(', ');
  return items.length > MAX_LISTED ? `${shown} and ${items.length - MAX_LISTED} more` : shown;
}

interface Candidate {
  prefix: string;
  naming: ResNet18Layout['naming'];
  missing: string[];
  mismatched: string[];
}

function matchAt(
  prefix: string,
  naming: ResNet18Layout['naming'],
  shapes: ReadonlyMap<string, readonly number[]>,
): Candidate {
  const missing: string[] = [];
  const mismatched: string[] = [];
  for (const [name, shape] of BACKBONE_SHAPES) {
    const key = fileKey({ prefix, naming }, name);
    const found = shapes.get(key);
    if (found === undefined) {
      if (!optional(name)) missing.push(key);
    } else if (!sameShape(found, shape)) {
      mismatched.push(`${key} ${shapeText(found)} (ResNet-18: ${shapeText(shape)})`);
    }
  }
  return { prefix, naming, missing, mismatched };
}

/** Where a backbone may start: before every `conv1.weight`, and before every `0.weight` shaped like it. */
function candidatesIn(shapes: ReadonlyMap<string, readonly number[]>): Candidate[] {
  const stem = BACKBONE_SHAPES.get(ANCHOR)!;
  const starts: [string, ResNet18Layout['naming']][] = [];
  for (const [key, shape] of shapes) {
    if (key.endsWith(ANCHOR)) starts.push([key.slice(0, -ANCHOR.length), 'torchvision']);
    if (key.endsWith('0.weight') && sameShape(shape, stem)) starts.push([key.slice(0, -'0.weight'.length), 'children']);
  }
  return starts
    .filter(([prefix]) => prefix === '' || prefix.endsWith('.'))
    .map(([prefix, naming]) => matchAt(prefix, naming, shapes));
}

/**
 * The layout of a ResNet-18 among `shapes` (name → PyTorch shape), or a NotResNet18Error saying what the
 * state dict holds instead. `what` names the state dict in messages ("model.pth", "model.pth, key
 * \"model_state_dict\"").
 */
export function recogniseResNet18(shapes: ReadonlyMap<string, readonly number[]>, what: string): ResNet18Layout {
  const candidates = candidatesIn(shapes);
  const complete = candidates.filter((c) => c.missing.length === 0 && c.mismatched.length === 0);
  if (complete.length > 1) {
    throw new NotResNet18Error(
      `${what} holds ${complete.length} ResNet-18 backbones (under ${complete.map((c) => `"${c.prefix}"`).join(', ')}); ` +
        'leukemia-audit runs one ResNet-18 with one classifier',
    );
  }
  if (complete.length === 0) throw new NotResNet18Error(notResNetMessage(shapes, candidates, what));
  const { prefix, naming } = complete[0];

  const backbone = new Set([...BACKBONE_SHAPES.keys()].map((name) => fileKey({ prefix, naming }, name)));
  const rest = [...shapes.keys()].filter((key) => !backbone.has(key));
  const linears = rest
    .filter((key) => key.endsWith('.weight'))
    .map((key) => key.slice(0, -'.weight'.length))
    .filter((module) => {
      const weight = shapes.get(`${module}.weight`)!;
      const bias = shapes.get(`${module}.bias`);
      return (
        weight.length === 2 &&
        weight[1] === FEATURE_WIDTH &&
        weight[0] >= 1 &&
        (bias === undefined || sameShape(bias, [weight[0]]))
      );
    });
  if (linears.length > 1) {
    throw new NotResNet18Error(
      `${what}: besides the ResNet-18 backbone${prefix ? ` (under "${prefix}")` : ''} there are ${linears.length} ` +
        `Linear(512, K) layers (${linears.join(', ')}); leukemia-audit runs a model with one classifier`,
    );
  }
  const headName = linears[0];
  const headKeys = new Set(headName === undefined ? [] : [`${headName}.weight`, `${headName}.bias`]);
  const unexplained = rest.filter((key) => !headKeys.has(key));
  if (unexplained.length > 0) {
    throw new NotResNet18Error(
      `${what}: a ResNet-18 backbone${prefix ? ` under "${prefix}"` : ''}` +
        (headName ? ` and ${headName} Linear(512, ${shapes.get(`${headName}.weight`)![0]})` : '') +
        `, but also ${listed(unexplained.map((key) => `${key} ${shapeText(shapes.get(key))}`))}: ` +
        'layers that are not ResNet-18 followed by one Linear(512, K) (an MLP head, an extra input layer…), ' +
        'which leukemia-audit cannot run',
    );
  }
  return {
    prefix,
    naming,
    head:
      headName === undefined
        ? undefined
        : {
            name: headName,
            numClasses: shapes.get(`${headName}.weight`)![0],
            hasBias: shapes.has(`${headName}.bias`),
          },
  };
}

function notResNetMessage(
  shapes: ReadonlyMap<string, readonly number[]>,
  candidates: readonly Candidate[],
  what: string,
): string {
  const keys = [...shapes.keys()];
  const guess = architectureGuess(keys);
  const best = [...candidates].sort(
    (a, b) => a.missing.length + a.mismatched.length - (b.missing.length + b.mismatched.length),
  )[0];
  const sample = listed(keys.map((key) => `${key} ${shapeText(shapes.get(key))}`));
  if (best && !guess && best.missing.length + best.mismatched.length < BACKBONE_SHAPES.size / 2) {
    const problems = [
      best.mismatched.length > 0 ? `shapes differ: ${listed(best.mismatched)}` : '',
      best.missing.length > 0 ? `missing: ${listed(best.missing)}` : '',
    ].filter(Boolean);
    return `${what} is not torchvision's ResNet-18${best.prefix ? ` (looked under "${best.prefix}")` : ''}: ${problems.join('; ')}`;
  }
  return (
    `${what} is not a ResNet-18: this state dict has ${sample} (${keys.length} tensors)` +
    (guess
      ? ` — ${guess}?`
      : "; none of it matches torchvision's resnet18() keys (conv1.weight, layer1.0.conv1.weight, …)")
  );
}

/** A hint at what the file is instead, from torchvision's and timm's naming conventions. */
function architectureGuess(keys: readonly string[]): string | undefined {
  const has = (pattern: RegExp) => keys.some((key) => pattern.test(key));
  if (has(/(^|\.)layer\d\.\d+\.conv3\.weight$/)) return 'a ResNet-50, -101 or -152 (bottleneck blocks have conv3)';
  if (has(/(^|\.)layer1\.2\.conv1\.weight$/)) return 'a ResNet-34 (layer1 has three blocks)';
  if (has(/denseblock/)) return 'a DenseNet';
  if (has(/(^|\.)(patch_embed|class_token|cls_token|encoder\.layers)/)) return 'a Vision Transformer';
  if (has(/(_conv_stem|\.block\.\d|features\.\d+\.conv\.\d)/)) return 'an EfficientNet or MobileNet';
  if (has(/(^|\.)features\.0\.weight$/)) return 'a VGG or AlexNet';
  return undefined;
}
