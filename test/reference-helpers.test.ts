// The CI switch of the reference helpers: with LEUKEMIA_AUDIT_REQUIRE_REFERENCES=1 (set by .ci/run) a
// reference test whose PyTorch or scikit-learn cannot run fails; without it, it skips and says what was not
// checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REQUIRE_REFERENCES_VARIABLE, pythonUnavailable, referenceUnavailable } from './helpers/python.js';

function recorder() {
  const calls: string[] = [];
  return { calls, skip: (m: string) => calls.push(`skip: ${m}`), diagnostic: (m: string) => calls.push(`note: ${m}`) };
}

function withVariable(value: string | undefined, body: () => void): void {
  const saved = process.env[REQUIRE_REFERENCES_VARIABLE];
  if (value === undefined) delete process.env[REQUIRE_REFERENCES_VARIABLE];
  else process.env[REQUIRE_REFERENCES_VARIABLE] = value;
  try {
    body();
  } finally {
    if (saved === undefined) delete process.env[REQUIRE_REFERENCES_VARIABLE];
    else process.env[REQUIRE_REFERENCES_VARIABLE] = saved;
  }
}

test('a missing reference skips with the reason, or fails when references are required', () => {
  const reason = pythonUnavailable({ stderr: "ModuleNotFoundError: No module named 'torch'" }, 'PyTorch parity');
  assert.equal(reason, 'PyTorch parity not checked: /usr/bin/python3 cannot import torch');
  withVariable(undefined, () => {
    const t = recorder();
    referenceUnavailable(t, reason!);
    assert.deepEqual(t.calls, [`note: ${reason}`, `skip: ${reason}`]);
  });
  withVariable('1', () => {
    const t = recorder();
    assert.throws(() => referenceUnavailable(t, reason!), /cannot import torch.*a missing reference is a failure/);
    assert.deepEqual(t.calls, [], 'no skip');
  });
  assert.equal(pythonUnavailable({ code: 'ENOENT' }, 'x'), 'x not checked: /usr/bin/python3 does not exist');
  assert.equal(pythonUnavailable({ stderr: 'AssertionError' }, 'x'), undefined, 'a failing script is a real failure');
});
