// The one CI switch of the reference helpers (`referencesRequired`): with LEUKEMIA_AUDIT_REQUIRE_REFERENCES=1
// (set by .ci/run) or a CI service's CI variable, a reference test whose PyTorch or scikit-learn cannot run
// fails — through referenceUnavailable (metrics, weights, checkpoints, the hostile .pth faults) or
// torchForTests (the PyTorch engine); without either, it skips and says what was not checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  REQUIRE_REFERENCES_VARIABLE,
  pythonUnavailable,
  referenceUnavailable,
  referencesRequired,
} from './helpers/python.js';
import { torchForTests } from './helpers/torch.js';

function recorder() {
  const calls: string[] = [];
  return { calls, skip: (m: string) => calls.push(`skip: ${m}`), diagnostic: (m: string) => calls.push(`note: ${m}`) };
}

/** Runs `body` with exactly these values of the two variables (undefined: unset), then restores them. */
async function withEnvironment(
  values: { require?: string; ci?: string },
  body: () => void | Promise<void>,
): Promise<void> {
  const names = { require: REQUIRE_REFERENCES_VARIABLE, ci: 'CI' } as const;
  const saved = { require: process.env[names.require], ci: process.env[names.ci] };
  const set = (name: string, value: string | undefined) => {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  };
  set(names.require, values.require);
  set(names.ci, values.ci);
  try {
    await body();
  } finally {
    set(names.require, saved.require);
    set(names.ci, saved.ci);
  }
}

const reason = pythonUnavailable({ stderr: "ModuleNotFoundError: No module named 'torch'" }, 'PyTorch parity')!;

test('a missing reference skips with the reason when neither variable asks for references', async () => {
  assert.equal(reason, 'PyTorch parity not checked: /usr/bin/python3 cannot import torch');
  for (const values of [{}, { ci: 'false' }, { ci: '0' }, { ci: '' }, { require: '0' }])
    await withEnvironment(values, () => {
      assert.equal(referencesRequired(), false, JSON.stringify(values));
      const t = recorder();
      referenceUnavailable(t, reason);
      assert.deepEqual(t.calls, [`note: ${reason}`, `skip: ${reason}`], JSON.stringify(values));
    });
  assert.equal(pythonUnavailable({ code: 'ENOENT' }, 'x'), 'x not checked: /usr/bin/python3 does not exist');
  assert.equal(pythonUnavailable({ stderr: 'AssertionError' }, 'x'), undefined, 'a failing script is a real failure');
});

test('LEUKEMIA_AUDIT_REQUIRE_REFERENCES=1 or CI makes a missing reference a failure, not a skip', async () => {
  for (const [values, because] of [
    [{ require: '1' }, `${REQUIRE_REFERENCES_VARIABLE}=1`],
    [{ ci: 'true' }, 'CI=true'],
    [{ ci: '1' }, 'CI=1'],
    [{ require: '1', ci: 'true' }, `${REQUIRE_REFERENCES_VARIABLE}=1`],
  ] as const)
    await withEnvironment(values, () => {
      assert.equal(referencesRequired(), true, JSON.stringify(values));
      const t = recorder();
      assert.throws(
        () => referenceUnavailable(t, reason),
        (error: Error) => error.message === `${reason} (${because}: a missing reference is a failure)`,
      );
      assert.deepEqual(t.calls, [], 'no skip');
    });
});

test('the PyTorch engine tests follow the same switch: torchForTests skips, or throws when references are required', async () => {
  const missing = '/nonexistent/python3';
  await withEnvironment({}, async () =>
    assert.deepEqual(await torchForTests(missing), { skip: `PyTorch engine not tested: ${missing} was not found` }),
  );
  for (const values of [{ require: '1' }, { ci: 'true' }])
    await withEnvironment(values, () =>
      assert.rejects(torchForTests(missing), /was not found \(.+: CI must have Debian's python3-torch/),
    );
});
