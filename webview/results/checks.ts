/** The two checks that say whether the Grad-CAM maps can be trusted, and whether the model looks off the cell. */
import type { RunExplanations } from '../../src/core/run/runFile.js';
import { h } from './dom.js';
import { badge } from './elements.js';
import { fixed, percent } from './format.js';

export function checks(explanations: RunExplanations): HTMLElement {
  return h(
    'div',
    { class: 'side-by-side checks' },
    sanityCheck(explanations.sanity),
    shortcutCheck(explanations.shortcut),
  );
}

/** A horizontal bar for a value in [0, 1]; the number beside it is the exact value. */
function bar(value: number, threshold?: number): HTMLElement {
  const element = h(
    'span',
    { class: 'bar', 'aria-hidden': 'true' },
    h('span', { class: 'bar-fill' }),
    threshold === undefined ? null : h('span', { class: 'bar-threshold' }),
  );
  element.style.setProperty('--value', String(Math.max(0, Math.min(1, value))));
  if (threshold !== undefined) element.style.setProperty('--threshold', String(threshold));
  return element;
}

function sanityCheck(sanity: RunExplanations['sanity']): HTMLElement {
  return h(
    'div',
    { class: 'check', id: 'sanity-check' },
    h('h3', {}, 'Sanity check ', badge(sanity.passed ? 'passed' : 'failed', sanity.passed ? 'pass' : 'fail')),
    h('p', {}, sanity.message),
    sanity.steps.length === 0
      ? h('p', { class: 'not-available' }, 'No randomisation steps recorded.')
      : h(
          'table',
          { class: 'grid' },
          h(
            'caption',
            {},
            'Layers re-initialised top down; maps of a trustworthy method change, so the rank correlation with the trained maps falls.',
          ),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'randomised up to'),
              h('th', { scope: 'col', class: 'num' }, 'Spearman ρ'),
              h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'bar')),
            ),
          ),
          h(
            'tbody',
            {},
            ...sanity.steps.map((s) =>
              h(
                'tr',
                {},
                h('th', { scope: 'row' }, h('code', {}, s.randomisedUpTo)),
                h('td', { class: 'num' }, fixed(s.spearman, 2)),
                h('td', {}, bar(Math.abs(s.spearman))),
              ),
            ),
          ),
        ),
  );
}

function shortcutCheck(shortcut: RunExplanations['shortcut']): HTMLElement {
  const entries = Object.entries(shortcut.perClass);
  return h(
    'div',
    { class: 'check', id: 'shortcut-check' },
    h(
      'h3',
      {},
      'Shortcut check ',
      badge(shortcut.flagged ? 'flagged' : 'not flagged', shortcut.flagged ? 'fail' : 'pass'),
    ),
    h('p', {}, shortcut.message),
    entries.length === 0
      ? h('p', { class: 'not-available' }, 'No per-class background energy recorded.')
      : h(
          'table',
          { class: 'grid' },
          h(
            'caption',
            {},
            `Share of the map's energy on the background outside the cell, mean per predicted class; flagged above ${percent(shortcut.threshold, 0)}.`,
          ),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'class'),
              h('th', { scope: 'col', class: 'num' }, 'background'),
              h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'bar')),
            ),
          ),
          h(
            'tbody',
            {},
            ...entries.map(([name, energy]) =>
              h(
                'tr',
                { class: energy > shortcut.threshold ? 'over' : '' },
                h('th', { scope: 'row' }, name),
                h('td', { class: 'num' }, percent(energy)),
                h('td', {}, bar(energy, shortcut.threshold)),
              ),
            ),
          ),
        ),
  );
}
