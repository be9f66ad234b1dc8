// Finding dataset calls in Python source: what the editor warns about must be exactly the calls the code
// makes, with the folder the code gives them — never a call in a comment or a docstring.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findDatasetCalls, joinPath, type DatasetCall } from '../src/core/editor/pythonCalls.js';
import { encodeStringContent, isString, tokenize } from '../src/core/editor/pythonTokens.js';

const KAGGLE = '/kaggle/input/leukemia-classification/C-NMC_Leukemia';

function calls(...texts: string[]): DatasetCall[] {
  return findDatasetCalls(texts.map((text, i) => ({ id: `cell${i}`, text })));
}

describe('tokenize', () => {
  test('strings of every form are single tokens with decoded values', () => {
    const tokens = tokenize(`a = r'C:\\data' + b"x" + '''multi\nline''' + "esc\\"aped" + f'{a}'`);
    const strings = tokens.filter(isString);
    assert.deepEqual(
      strings.map((s) => s.value),
      ['C:\\data', 'x', 'multi\nline', 'esc"aped', '{a}'],
    );
    assert.deepEqual(
      strings.map((s) => [s.raw, s.bytes, s.formatted]),
      [
        [true, false, false],
        [false, true, false],
        [false, false, false],
        [false, false, false],
        [false, false, true],
      ],
    );
  });

  test('comments vanish and newlines inside brackets do not end a statement', () => {
    const tokens = tokenize('x = f(1, # note\n  2)\ny = 3');
    assert.deepEqual(
      tokens.map((t) => t.text),
      ['x', '=', 'f', '(', '1', ',', '2', ')', '\n', 'y', '=', '3'],
    );
  });

  test('encodeStringContent escapes for the literal it replaces, and refuses what a raw string cannot hold', () => {
    assert.equal(encodeStringContent('a\\b"c', { quote: '"', raw: false }), 'a\\\\b\\"c');
    assert.equal(encodeStringContent('C:\\data\\x', { quote: "'", raw: true }), 'C:\\data\\x');
    assert.equal(encodeStringContent('C:\\data\\', { quote: "'", raw: true }), undefined);
  });
});

describe('findDatasetCalls', () => {
  test('a literal argument: the warning range is the literal and its content is the path', () => {
    const text = `ds = datasets.ImageFolder('${KAGGLE}/training_data', transform=t)\n`;
    const [call] = calls(text);
    assert.equal(call.function, 'ImageFolder');
    assert.equal(call.framework, 'torch');
    assert.equal(text.slice(call.callee.start, call.callee.end), 'datasets.ImageFolder');
    assert.equal(call.path?.value, `${KAGGLE}/training_data`);
    const literal = call.path!.literal!;
    assert.equal(text.slice(literal.contentStart, literal.contentEnd), `${KAGGLE}/training_data`);
    assert.equal(text.slice(literal.start, literal.end), `'${KAGGLE}/training_data'`);
  });

  test('calls in comments, strings and definitions are not calls', () => {
    const text = [
      '# ImageFolder("a")',
      '"""ImageFolder("b")"""',
      'doc = "flow_from_directory(\'c\')"',
      'def ImageFolder(root): pass',
      'class Mine(ImageFolder): pass',
    ].join('\n');
    assert.deepEqual(calls(text), []);
  });

  test('variables, os.path.join, f-strings, Path division and keyword arguments', () => {
    const text = [
      `data_dir = '${KAGGLE}'`,
      'train_dir = os.path.join(data_dir, "training_data")',
      'a = ImageFolder(train_dir)',
      'b = ImageFolder(root=f"{data_dir}/training_data")',
      "c = tf.keras.utils.image_dataset_from_directory(pathlib.Path(data_dir) / 'training_data', labels='inferred')",
      "d = generator.flow_from_directory(directory=str(Path(data_dir).joinpath('training_data')), target_size=(64, 64))",
      'e = ImageFolder(os.environ["DATA"])',
    ].join('\n');
    const found = calls(text);
    assert.deepEqual(
      found.map((c) => c.function),
      ['ImageFolder', 'ImageFolder', 'image_dataset_from_directory', 'flow_from_directory', 'ImageFolder'],
    );
    for (const call of found.slice(0, 4)) assert.equal(call.path?.value, `${KAGGLE}/training_data`);
    assert.deepEqual(found[0].path?.via, ['train_dir', 'data_dir']);
    assert.equal(found[0].path?.literal, undefined, 'a joined path is not one literal: no path rewrite');
    assert.equal(found[4].path, undefined, 'a value known only at run time is left alone');
    assert.equal(found[2].framework, 'keras');
  });

  test('a variable holding one literal carries that literal, even from an earlier notebook cell', () => {
    const first = `DATA = "${KAGGLE}/training_data"\n`;
    const second = 'dataset = ImageFolder(DATA, transform)\nDATA = "elsewhere"\n';
    const [call] = calls(first, second);
    assert.equal(call.callee.cell, 'cell1');
    assert.equal(call.path?.value, `${KAGGLE}/training_data`, 'the assignment after the call does not count');
    assert.equal(call.path?.literal?.cell, 'cell0');
    assert.equal(
      first.slice(call.path!.literal!.contentStart, call.path!.literal!.contentEnd),
      `${KAGGLE}/training_data`,
    );
  });

  test('a later cell does not see assignments of later cells', () => {
    const [call] = calls('ds = ImageFolder(DATA)\n', 'DATA = "x"\n');
    assert.equal(call.path, undefined);
  });

  test('argument-list shape for appending a keyword argument, and the statement line', () => {
    const text = 'def load():\n    return ImageFolder(\n        root,\n    )\n';
    const [call] = calls(text);
    assert.equal(call.endsWithComma, true);
    assert.equal(call.hasArguments, true);
    assert.equal(call.indentation, '    ');
    assert.equal(text.slice(call.statementLineStart).split('\n')[0], '    return ImageFolder(');
    assert.equal(text[call.closeParen], ')');
    const [empty] = calls('x = ImageFolder()');
    assert.equal(empty.hasArguments, false);
    assert.equal(empty.argument, undefined);
  });

  test('joinPath follows os.path.join: an absolute part replaces what came before', () => {
    assert.equal(joinPath('a', 'b'), 'a/b');
    assert.equal(joinPath('a/', 'b'), 'a/b');
    assert.equal(joinPath('a', '/b'), '/b');
    assert.equal(joinPath('C:\\x', 'D:\\y'), 'D:\\y');
  });
});
