// The allowed values of training settings are declared once (src/core/train/settings.ts): package.json's
// setting enums, the dataset-file schema, the CLI's checks and the extension's checks all follow them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BACKENDS, DEFAULT_SETTINGS, STRATEGIES, isOneOf } from '../src/core/train/settings.js';

const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8'));
const properties = pkg.contributes.configuration.properties as Record<string, { enum?: string[]; default?: unknown }>;

test("package.json's setting enums are the allowed values of settings.ts, with the same defaults", () => {
  assert.deepEqual(properties['leukemiaAudit.strategy'].enum, [...STRATEGIES]);
  assert.deepEqual(properties['leukemiaAudit.backend'].enum, [...BACKENDS]);
  assert.equal(properties['leukemiaAudit.strategy'].default, DEFAULT_SETTINGS.strategy);
  assert.equal(properties['leukemiaAudit.backend'].default, DEFAULT_SETTINGS.backend);
  const withEnums = Object.entries(properties).filter(([, p]) => p.enum);
  assert.deepEqual(
    withEnums.map(([key]) => key).sort(),
    ['leukemiaAudit.backend', 'leukemiaAudit.strategy'],
    'a new enum setting is held to settings.ts here too',
  );
});

test('isOneOf accepts exactly the declared values', () => {
  assert.equal(isOneOf(STRATEGIES, 'finetune'), true);
  assert.equal(isOneOf(STRATEGIES, 'Finetune'), false);
  assert.equal(isOneOf(BACKENDS, undefined), false);
  assert.equal(isOneOf(BACKENDS, 'constructor'), false);
});
