// The VS Code extension arrives with its own issue; the build already bundles this entry so the layout is fixed.
export function activate(): void {}
export function deactivate(): void {}
