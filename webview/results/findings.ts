/** The audit's findings, as the run recorded them: severity, code, message, evidence and example paths. */
import type { Finding } from '../../src/core/audit/findings.js';
import { h, notAvailable, section } from './dom.js';
import { badge, collapsible } from './elements.js';
import { imagePath, type Host } from './host.js';
import { plural } from './format.js';
import { objectView } from './values.js';

const SEVERITIES = ['error', 'warning', 'info'] as const;

export function findingsSection(findings: Finding[] | undefined, host: Host): HTMLElement {
  if (!findings || findings.length === 0)
    return section('findings', 'Audit findings', notAvailable('The audit found nothing to report.'));
  const tally = SEVERITIES.map((s) => [s, findings.filter((f) => f.severity === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => (s === 'info' ? `${n} info` : plural(n, s)))
    .join(', ');
  return section(
    'findings',
    'Audit findings',
    h('p', { class: 'lead' }, tally),
    h('ol', { class: 'findings' }, ...findings.map((f) => findingItem(f, host))),
  );
}

function findingItem(finding: Finding, host: Host): HTMLElement {
  const paths = finding.paths ?? [];
  const hasEvidence = finding.evidence && Object.keys(finding.evidence).length > 0;
  return h(
    'li',
    { class: `finding finding-${finding.severity}` },
    h(
      'div',
      { class: 'finding-head' },
      badge(finding.severity, finding.severity),
      h('code', { class: 'finding-code' }, finding.code),
    ),
    h('p', { class: 'finding-message' }, finding.message),
    hasEvidence ? collapsible('Evidence', { class: 'evidence' }, objectView(finding.evidence)) : null,
    paths.length
      ? collapsible(
          plural(paths.length, 'example path'),
          { class: 'examples' },
          h('ul', { class: 'paths' }, ...paths.map((p) => h('li', {}, imagePath(host, p)))),
        )
      : null,
  );
}
