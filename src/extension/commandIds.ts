/**
 * Every id the extension shares with package.json, menus, `when` clauses, tests and other extensions,
 * declared once: commands, the context key, the webview panel types.
 */
export const COMMANDS = {
  train: 'leukemiaAudit.train',
  audit: 'leukemiaAudit.audit',
  openResults: 'leukemiaAudit.openResults',
  createDemoDataset: 'leukemiaAudit.createDemoDataset',
  exportReport: 'leukemiaAudit.exportReport',
  cancelTraining: 'leukemiaAudit.cancelTraining',
  showDashboard: 'leukemiaAudit.showDashboard',
  showLog: 'leukemiaAudit.showLog',
  evaluate: 'leukemiaAudit.evaluate',
  compareRuns: 'leukemiaAudit.compareRuns',
  probe: 'leukemiaAudit.probe',
} as const;

/** True while a trainer runs: enables Cancel Training in the command palette. */
export const TRAINING_CONTEXT_KEY = 'leukemiaAudit.training';

export const VIEW_TYPES = {
  results: 'leukemiaAudit.results',
  dashboard: 'leukemiaAudit.dashboard',
  comparison: 'leukemiaAudit.comparison',
} as const;
